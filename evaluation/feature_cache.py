"""A folder of frozen-encoder features that training runs share, across processes and runs.

Every run of a sweep trains a fresh compressor and LLM on top of the same frozen vision tower and
the same images, so the encoder's output is the same for all of them: the first run computes it, the
others read it. An entry is one safetensors file named by the SHA-256 of everything the features
depend on (``FeatureCache.key``): the tower's weights, the encoder settings the model reads features
with, the device type and precision, and the exact preprocessed pixels. Change any of them and the
key changes, so a stale entry is never read.

Writes go to a temporary name and are renamed into place, so a killed process leaves no half entry;
an exclusive ``flock`` per key makes a second process wait for the first one's result instead of
encoding the same images again. When the folder passes ``max_bytes`` the least recently used entries
are removed. The cache is an optimisation only: a failed read is a miss (the bad file is removed),
a failed write (disk full, read-only folder) is logged and training goes on with the features it
computed.
"""

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

ENTRY_SUFFIX = ".safetensors"
KEY_VERSION = 1  # bump when what an entry holds changes meaning

Features = dict[str, torch.Tensor]


def _hash_tensors(hasher, tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
    for name, tensor in tensors:
        tensor = tensor.detach().cpu().contiguous()
        hasher.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        hasher.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


class FeatureCache:
    """``get_or_compute(key, compute)`` returns cached features or computes, stores and returns them."""

    def __init__(self, folder: str | Path, max_bytes: int):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.hits = self.misses = 0

    @staticmethod
    def tower_digest(model) -> str:
        """SHA-256 of the frozen tower's weights and the encoder settings; computed once per model
        object (the tower never trains: every recipe here freezes it)."""
        digest = getattr(model, "_feature_cache_tower_digest", None)
        if digest is None:
            hasher = hashlib.sha256()
            settings = {
                "version": KEY_VERSION,
                "vision_config": model.config.vision_config.to_dict(),
                "vision_feature_layer": model.config.vision_feature_layer,
                "multi_level_layers": list(model.config.multi_level_layers),
                "cls_attention": bool(model.compressor.uses_cls_attention),
            }
            hasher.update(json.dumps(settings, sort_keys=True, default=str).encode())
            _hash_tensors(hasher, sorted(model.vision_tower.state_dict().items()))
            digest = hasher.hexdigest()
            model._feature_cache_tower_digest = digest
        return digest

    @classmethod
    def key(cls, model, pixel_chunks: Iterable[torch.Tensor], device_type: str, precision: str) -> str:
        """SHA-256 over what a FrontierVLM's ``encode_images`` output depends on, for these pixels."""
        hasher = hashlib.sha256(f"{cls.tower_digest(model)}|{device_type}|{precision}|".encode())
        _hash_tensors(hasher, ((f"pixels{index}", chunk) for index, chunk in enumerate(pixel_chunks)))
        return hasher.hexdigest()

    def entry(self, key: str) -> Path:
        return self.folder / f"{key}{ENTRY_SUFFIX}"

    def _lock(self, key: str):
        """An open lock file holding this key's exclusive ``flock`` (closing it lets the next one in)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = open(self.folder / f".{key}.lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            lock.close()
            raise
        return lock

    def get(self, key: str) -> Features | None:
        path = self.entry(key)
        try:
            features = load_file(path)
        except FileNotFoundError:
            return None
        except (OSError, SafetensorError) as error:
            log.warning("Feature cache entry %s is unreadable (%s); removing it and encoding again", path, error)
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)  # least recently used goes first
        except OSError:
            pass
        return features

    def get_or_compute(self, key: str, compute: Callable[[], Features]) -> tuple[Features, bool]:
        """(features, whether they came from the cache)."""
        features, hit = self._get_or_compute(key, compute)
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        return features, hit

    def _get_or_compute(self, key: str, compute: Callable[[], Features]) -> tuple[Features, bool]:
        features = self.get(key)
        if features is not None:
            return features, True
        try:
            lock = self._lock(key)
        except OSError as error:
            log.warning("Feature cache folder %s is unusable (%s); encoding without it", self.folder, error)
            return compute(), False
        with lock:
            features = self.get(key)  # another process may have written it while we waited
            if features is not None:
                return features, True
            features = compute()
            self._put(key, features)
            return features, False

    def _put(self, key: str, features: Features) -> None:
        size = sum(tensor.nbytes for tensor in features.values())
        if size > self.max_bytes:
            log.info("Features of %s bytes exceed the feature cache's %s bytes; not stored", size, self.max_bytes)
            return
        final = self.entry(key)
        temporary = self.folder / f".{key}.{os.getpid()}.tmp"
        try:
            self._evict(room_for=size)
            save_file({name: tensor.contiguous() for name, tensor in features.items()}, temporary)
            os.replace(temporary, final)
        except (OSError, SafetensorError) as error:  # safetensors reports I/O errors (disk full) as its own
            log.warning("Could not store features in %s (%s); training goes on without the cache", self.folder, error)
            temporary.unlink(missing_ok=True)

    def entries(self) -> list[Path]:
        return sorted(self.folder.glob(f"*{ENTRY_SUFFIX}")) if self.folder.is_dir() else []

    def _evict(self, room_for: int) -> None:
        """Remove least recently used entries until ``room_for`` more bytes fit under ``max_bytes``."""
        sized = []
        for path in self.entries():
            try:
                status = path.stat()
            except FileNotFoundError:
                continue
            sized.append((status.st_mtime, status.st_size, path))
        total = sum(size for _, size, _ in sized)
        for _, size, path in sorted(sized):
            if total + room_for <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
