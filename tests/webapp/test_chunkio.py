"""A chunk written into its part file: aligned blocks with O_DIRECT, the unaligned head and tail
with ordinary writes, the same bytes either way, and a short stream reported, not padded."""

import io
import os

import pytest

from webapp.registry import chunkio


def direct_supported(path) -> bool:
    fd = chunkio._open_direct(path)
    if fd is None:
        return False
    os.close(fd)
    return True


@pytest.fixture(params=["direct", "buffered"])
def part(request, tmp_path, monkeypatch):
    path = tmp_path / "upload.part"
    path.write_bytes(b"")
    if request.param == "direct" and not direct_supported(path):
        pytest.skip(f"{tmp_path} does not support O_DIRECT")
    if request.param == "buffered":  # what tmpfs and other filesystems without O_DIRECT get
        monkeypatch.setattr(chunkio, "_open_direct", lambda path: None)
    return path


def append(path, stream, start: int, length: int) -> int:
    fd = os.open(path, os.O_RDWR)
    try:
        return chunkio.write_stream_at(fd, path, stream, start, length)
    finally:
        os.close(fd)


@pytest.mark.parametrize("sizes", [
    [3 * chunkio.BLOCK + 5],                        # aligned start, unaligned tail
    [1000, 3 * chunkio.BLOCK, 777, 4096, 1],        # unaligned starts: a head first, then aligned blocks
    [chunkio.ALIGN * 3, chunkio.BLOCK * 2],         # every write aligned
])
def test_chunks_land_at_their_offsets_byte_for_byte(part, sizes):
    payload = os.urandom(sum(sizes))
    start = 0
    for size in sizes:
        assert append(part, io.BytesIO(payload[start:start + size]), start, size) == size
        start += size
    assert part.read_bytes() == payload


class Trickle(io.RawIOBase):
    """A socket-like stream: readinto hands out at most a few KiB at a time."""

    def __init__(self, data: bytes, step: int = 3000):
        super().__init__()
        self.data, self.step = memoryview(data), step

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.step, len(self.data))
        buffer[:count] = self.data[:count]
        self.data = self.data[count:]
        return count


def test_a_stream_that_ends_early_returns_what_came(part):
    payload = os.urandom(chunkio.BLOCK + 12345)
    assert append(part, Trickle(payload), 0, len(payload) + 999) == len(payload)
    assert part.read_bytes() == payload


def test_a_write_error_reaches_the_caller(part, monkeypatch):
    def full_disk(fd, view, position):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(chunkio.os, "pwrite", full_disk)
    with pytest.raises(OSError, match="No space left"):
        append(part, io.BytesIO(os.urandom(3 * chunkio.BLOCK)), 0, 3 * chunkio.BLOCK)
