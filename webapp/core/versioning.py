"""The data version: one counter that moves whenever anything leaderboards show changes (``data_version_bump``,
in the transaction of the write), the version readers see (``data_version``, remembered per process) and the
caches keyed by it (``versioned_cache``: responses, counts, frontiers)."""

import hashlib
import threading
import time
import uuid
from collections import OrderedDict

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


_memo: OrderedDict = OrderedDict()  # key -> (stored at, value, bytes)
_memo_lock = threading.Lock()
MEMO_BYTES = 256 * 2**20
MEMO_GENERATION_KEY = "leaderboard:memo-generation"


def _nbytes(value) -> int:
    """Roughly what a memoised value holds: arrays' bytes, text's length, containers and dataclasses looked
    into, 32 bytes for anything else."""
    if hasattr(value, "nbytes"):
        return int(value.nbytes)
    if isinstance(value, (str, bytes)):
        return 48 + len(value)
    if hasattr(value, "__dataclass_fields__"):
        return sum(_nbytes(getattr(value, name)) for name in value.__dataclass_fields__)
    if isinstance(value, dict):
        return 64 + sum(_nbytes(key) + _nbytes(item) for key, item in value.items())
    if isinstance(value, (tuple, list, frozenset, set)):
        return 56 + sum(_nbytes(item) for item in value)
    return 32


def versioned_memo(parts: tuple, compute, version: str | None = None):
    """compute() once per data version and `parts` in this process, kept as the object itself (no pickling):
    for the large NumPy columns the leaderboard sorts and frontiers are computed from. The most recently
    used values up to MEMO_BYTES in all, each for at most CACHE_SECONDS; two threads may both compute a
    missing value. Clearing the cache clears it too (its generation is kept in the cache)."""
    version = data_version() if version is None else version
    generation = cache.get(MEMO_GENERATION_KEY)
    if generation is None:
        generation = uuid.uuid4().hex
        cache.set(MEMO_GENERATION_KEY, generation, None)
    key, now = (version, generation, *parts), time.monotonic()
    with _memo_lock:
        found = _memo.get(key)
        if found is not None and now - found[0] < CACHE_SECONDS:
            _memo.move_to_end(key)
            return found[1]
    value = compute()
    with _memo_lock:
        _memo[key] = (now, value, _nbytes(value))
        _memo.move_to_end(key)
        while len(_memo) > 1 and sum(entry[2] for entry in _memo.values()) > MEMO_BYTES:
            _memo.popitem(last=False)
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
