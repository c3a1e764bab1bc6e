"""The data version: one counter that moves whenever anything leaderboards show changes (``data_version_bump``,
in the transaction of the write), the version readers see (``data_version``, remembered per process) and the
caches keyed by it (``versioned_cache``: responses, counts, frontiers)."""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp.core.models import DataVersion

# Cached values outlive their version only until this many seconds (a backstop for writes
# that do not move the version, e.g. an admin renaming an LLM).
CACHE_SECONDS = 60

_version_memo: tuple[float, str] = (0.0, "")


def data_version() -> str:
    """Changes whenever anything leaderboards show changes: one primary-key read, remembered in
    this process for FRONTIER_DATA_VERSION_MAX_AGE_SECONDS (a write in this process forgets it at
    once, see data_version_forget; one in another process is seen within that time).

    The change time is part of it, so a database recreated from scratch never repeats a version
    that is still cached."""
    global _version_memo
    now = time.monotonic()
    expires, version = _version_memo
    if now < expires:
        return version
    row = DataVersion.objects.filter(pk=1).values_list("counter", "changed_at").first()
    version = "0" if row is None else f"{row[0]}.{int(row[1].timestamp() * 1_000_000)}"
    _version_memo = (now + settings.FRONTIER_DATA_VERSION_MAX_AGE_SECONDS, version)
    return version


def data_version_forget() -> None:
    global _version_memo
    _version_memo = (0.0, "")


def versioned_cache(parts: tuple, compute, version: str | None = None):
    """compute() once per data version and `parts` (anything with a stable repr)."""
    version = data_version() if version is None else version
    key = "leaderboard:" + hashlib.sha1(repr((version, *parts)).encode()).hexdigest()
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, CACHE_SECONDS)
    return value


def data_version_bump() -> None:
    """Move the data version; call it inside the transaction of the write it announces, so the
    new version and the new data become visible together. This process stops using its
    remembered version now and again once the write commits."""
    now = timezone.now()
    if not DataVersion.objects.filter(pk=1).update(counter=F("counter") + 1, changed_at=now):
        _, created = DataVersion.objects.get_or_create(pk=1, defaults={"counter": 1, "changed_at": now})
        if not created:  # another transaction created it first
            DataVersion.objects.filter(pk=1).update(counter=F("counter") + 1, changed_at=now)
    data_version_forget()
    transaction.on_commit(data_version_forget)
