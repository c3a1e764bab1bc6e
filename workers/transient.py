"""Which failures of a job are worth another attempt.

Transient: what the infrastructure does for a moment, whoever started the job (an upload, a
training sweep, a rerun) — the database busy or its connection dropped (``database_unavailable``),
object storage unreachable while fetching a checkpoint (``storage_error``, see
``workers.evaluate.fetch_checkpoint``), a full disk or an I/O error (``storage_error``: ENOSPC, EDQUOT, EIO) and a device out of memory (``out_of_memory``, retried
with a smaller batch). They become ``TransientJobError``, which the runner retries with backoff
up to the job's ``max_attempts``.

Not transient: the checkpoint's or the task's fault (``load_error``, ``harness_error``,
``dataset_unavailable``), the worker's environment (``environment_error``: another try on the
same worker fails the same way) and Frontier's own bugs (``internal_error``); those fail at once.
"""

import errno
import functools

from django.db import InterfaceError, OperationalError, connection

from webapp.jobs.models import FailureClass
from workers.runner import TransientJobError

DATABASE_UNAVAILABLE = FailureClass.DATABASE_UNAVAILABLE
STORAGE_ERROR = FailureClass.STORAGE_ERROR

# Storage failures that another attempt may not meet: a full disk or quota, an I/O error.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})
# SQLite reports a missing table as an OperationalError too: a schema problem, not a moment's.
SCHEMA_PROBLEMS = ("no such table", "no such column", "has no column")


def database_transient(error: BaseException) -> bool:
    if isinstance(error, InterfaceError):
        return True
    return isinstance(error, OperationalError) and not any(text in str(error) for text in SCHEMA_PROBLEMS)


def _drop_if_broken() -> None:
    """Close a broken connection, so that the runner records the attempt on a new one."""
    try:
        usable = connection.is_usable()
    except Exception:  # noqa: BLE001 (any failure of the check means the connection is gone)
        usable = False
    if not usable:
        connection.close()


def retry_transient_failures(handler):
    """Decorate a job handler so that a database that is busy or unreachable, or storage that is full or
    failing, retries the job (the handlers resume: training from its last saved state, evaluation results
    are upserts, validation starts over in a fresh folder)."""

    @functools.wraps(handler)
    def run(ctx):
        try:
            return handler(ctx)
        except (OperationalError, InterfaceError) as error:
            if not database_transient(error):
                raise
            _drop_if_broken()
            raise TransientJobError(
                f"the database was unavailable ({type(error).__name__}: {error}); the job will be retried",
                failure_class=DATABASE_UNAVAILABLE,
            ) from error
        except OSError as error:
            if error.errno not in STORAGE_ERRNOS:
                raise
            raise TransientJobError(
                f"storage failed ({type(error).__name__}: {error}); the job will be retried",
                failure_class=STORAGE_ERROR,
            ) from error

    return run
