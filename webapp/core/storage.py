"""Walking and deleting folders in the default storage, local disk or S3 alike."""

import shutil

from django.core.files.storage import default_storage


def storage_files(prefix: str):
    """Every file name under `prefix`."""
    directories, files = default_storage.listdir(prefix)
    for name in files:
        yield f"{prefix}/{name}"
    for directory in directories:
        yield from storage_files(f"{prefix}/{directory}")


def storage_delete_tree(prefix: str) -> None:
    """Delete every stored file under `prefix` (and, on local disk, the folders)."""
    try:
        shutil.rmtree(default_storage.path(prefix), ignore_errors=True)
        return
    except NotImplementedError:  # object storage: no local path
        pass
    for name in list(storage_files(prefix)):
        default_storage.delete(name)
