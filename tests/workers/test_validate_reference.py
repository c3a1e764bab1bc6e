"""How the validation worker reads a checkpoint registered by path: on the worker's own filesystem,
where links resolve and files exist (the web host checked only the form of the path)."""

import os
import tarfile

import pytest

from evaluation.validation import CheckpointInvalid
from webapp.registry.services import RegistryError
from workers.validate import ReferenceUnavailable, _path_reference


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from evaluation.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny", compressor="avgpool", tokens=4, seed=0)


@pytest.fixture
def root(settings, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    settings.FRONTIER_REFERENCE_ROOTS = [str(shared)]
    settings.FRONTIER_ARCHIVE_MAX_FILES = 100
    return shared


@pytest.fixture
def work(tmp_path):
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


def copy_of(tiny, dest):
    dest.mkdir()
    for path in tiny.iterdir():
        (dest / path.name).write_bytes(path.read_bytes())
    return dest


def test_a_folder_is_copied_and_validated_away_from_the_shared_storage(tiny, root, work):
    folder = copy_of(tiny, root / "tiny")
    checkpoint_dir, report = _path_reference(str(folder), work)
    assert checkpoint_dir.is_relative_to(work)
    assert sorted(p.name for p in checkpoint_dir.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert report.compressor_method == "avgpool" and report.visual_tokens == 4


def test_an_archive_is_extracted_and_validated(tiny, root, work):
    archive = root / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny, arcname="tiny")
    checkpoint_dir, report = _path_reference(str(archive), work)
    assert (checkpoint_dir / "config.json").is_file() and report.visual_tokens == 4


def test_links_and_special_files_in_a_folder_are_refused_not_followed(tiny, root, work, tmp_path):
    folder = copy_of(tiny, root / "tiny")
    (tmp_path / "secret").write_text("outside the roots")
    (folder / "notes.txt").symlink_to(tmp_path / "secret")
    os.mkfifo(folder / "pipe")
    with pytest.raises(CheckpointInvalid) as refused:
        _path_reference(str(folder), work)
    assert refused.value.problems == [
        "notes.txt is a symbolic link; put the file itself in the folder",
        "pipe is not a regular file (device, FIFO or socket)",
    ]


def test_a_link_out_of_the_roots_is_refused_where_it_resolves(root, work, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (root / "escape").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RegistryError, match="symbolic link leads it to"):
        _path_reference(str(root / "escape"), work)


def test_a_worker_without_roots_refuses_path_references(settings, root, work):
    settings.FRONTIER_REFERENCE_ROOTS = []
    with pytest.raises(RegistryError, match="FRONTIER_REFERENCE_ROOTS"):
        _path_reference(str(root), work)


def test_a_fifo_is_neither_folder_nor_archive(root, work):
    os.mkfifo(root / "pipe")
    with pytest.raises(ReferenceUnavailable, match="neither a checkpoint folder nor an archive"):
        _path_reference(str(root / "pipe"), work)


def test_a_folder_over_the_file_limit_is_refused(tiny, settings, root, work):
    folder = copy_of(tiny, root / "tiny")
    settings.FRONTIER_ARCHIVE_MAX_FILES = 2
    with pytest.raises(CheckpointInvalid, match="more than 2 files"):
        _path_reference(str(folder), work)
