"""What every registry service shares: its errors and task names."""



from webapp.core.errors import ServiceError
from webapp.jobs.task_names import EVALUATE, VALIDATE

EVALUATE_TASK = EVALUATE.name
VALIDATE_TASK = VALIDATE.name
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
HASH_CHUNK = 1 << 20


class RegistryError(ServiceError):
    """Input the registry cannot accept; the message says what to fix."""


class QuotaExceeded(RegistryError):
    """A per-user limit was reached; the message says which and how to get under it."""

    http_status = 429
