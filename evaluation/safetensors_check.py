"""Safetensors files read as the format specifies, trusting nothing: the 8-byte little-endian header
length, the JSON header (duplicate keys refused), each tensor's dtype, shape and data offsets checked against
the file's data region; pickles recognised by their first bytes and refused, never loaded. Content hashes, and
NaN or infinite values found in the data of floating-point tensors (by their bit patterns, with NumPy).
No torch: CPU workers run it on untrusted uploads (evaluation.validation).
"""

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HASH_CHUNK_BYTES = 1 << 20
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFE_SAVE = "model.save_pretrained(dir, safe_serialization=True)"
# The safetensors format's dtypes and their element sizes in bits (F4 and F6 are packed sub-byte types).
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
    "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}  # fmt: skip
MAX_HEADER_BYTES = 100_000_000  # the limit of the reference implementation


class SafetensorsInvalid(ValueError):
    """A file that should be safetensors is not, or its header contradicts the file.

    ``pickle_content`` says what pickle-based content the file holds instead, when it does.
    """

    def __init__(self, problems: list[str], pickle_content: str | None = None):
        self.problems = problems
        self.pickle_content = pickle_content
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]
    file: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def pickle_kind(head: bytes) -> str | None:
    """What pickle-based content the first bytes announce, if any."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a pickle"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive, the torch.save format, which holds a pickle"
    return None


def pickle_refusal(relative: str, content: str) -> str:
    return (
        f"{relative} holds {content}; pickles can execute code when loaded, so they are refused. "
        f"Upload the weights as safetensors ({SAFE_SAVE}) and leave other pickled files out"
    )


def is_count_list(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) and item >= 0 for item in value
    )


def reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys {duplicates}")
    return dict(pairs)


def read_safetensors_header(path: str | Path) -> dict[str, TensorInfo]:
    """Parse a safetensors header and check it against the file; raise ``SafetensorsInvalid`` listing
    every problem. Offsets must tile the data region exactly (no overlap, no hole, no trailing bytes),
    as the format requires, and each tensor's span must equal its shape times its dtype size."""
    path = Path(path)
    file_size = path.stat().st_size
    with path.open("rb") as file:
        prefix = file.read(9)
        if len(prefix) < 8:
            raise SafetensorsInvalid([f"only {file_size} bytes: too short for the 8-byte header length"])
        header_length = struct.unpack("<Q", prefix[:8])[0]
        if prefix[8:9] != b"{" or header_length > file_size - 8:
            content = pickle_kind(prefix)
            if content:
                raise SafetensorsInvalid([f"not safetensors: it holds {content}"], pickle_content=content)
        if header_length > MAX_HEADER_BYTES:
            raise SafetensorsInvalid([f"huge header: {header_length} bytes declared, the limit is {MAX_HEADER_BYTES}"])
        if header_length > file_size - 8:
            data_bytes = file_size - 8
            raise SafetensorsInvalid(
                [f"header length {header_length} is larger than the file ({data_bytes} bytes after the length field)"]
            )
        if prefix[8:9] != b"{":
            raise SafetensorsInvalid(["the header does not start with '{'"])
        file.seek(8)
        raw_header = file.read(header_length)
    try:
        header = json.loads(raw_header.decode("utf-8"), object_pairs_hook=reject_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as error:
        raise SafetensorsInvalid([f"the {header_length}-byte header is not valid JSON: {error}"]) from None
    tensors, problems = parse_tensor_entries(header, path.name)
    problems = problems or data_region_problems(tensors, file_size - 8 - header_length)
    if problems:
        raise SafetensorsInvalid(problems)
    return tensors


def parse_tensor_entries(header: dict, file_name: str) -> tuple[dict[str, TensorInfo], list[str]]:
    tensors, problems = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            if not (isinstance(entry, dict) and all(isinstance(value, str) for value in entry.values())):
                problems.append("__metadata__ must map strings to strings")
            continue
        if not isinstance(entry, dict):
            problems.append(f"tensor {name!r}: the entry is not a JSON object")
            continue
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_BITS:
            problems.append(f"tensor {name!r}: unknown dtype {dtype!r}; allowed: {', '.join(DTYPE_BITS)}")
            continue
        if not is_count_list(shape):
            problems.append(f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}")
            continue
        if not (is_count_list(offsets) and len(offsets) == 2 and offsets[0] <= offsets[1]):
            problems.append(f"tensor {name!r}: data_offsets must be [begin, end] with begin <= end, got {offsets!r}")
            continue
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        span = offsets[1] - offsets[0]
        if bits % 8 or bits // 8 != span:
            problems.append(
                f"tensor {name!r}: shape {shape} of {dtype} needs {bits / 8:g} bytes "
                f"but data_offsets {offsets} span {span}"
            )
            continue
        tensors[name] = TensorInfo(name, dtype, tuple(shape), tuple(offsets), file_name)
    return tensors, problems


def data_region_problems(tensors: dict[str, TensorInfo], data_bytes: int) -> list[str]:
    spans = sorted((tensor.data_offsets, name) for name, tensor in tensors.items())
    if not spans:
        return [f"{data_bytes} bytes of data but no tensor describes them"] if data_bytes else []
    expected = max(end for (_, end), _ in spans)
    if expected > data_bytes:
        return [f"truncated: expected {expected} bytes of tensor data, found {data_bytes}"]
    problems, covered_to, previous = [], 0, None
    for (begin, end), name in spans:
        if begin < covered_to:
            problems.append(f"tensors {previous!r} and {name!r} overlap (bytes {begin}..{covered_to})")
        elif begin > covered_to:
            problems.append(f"bytes {covered_to}..{begin} before tensor {name!r} belong to no tensor")
        covered_to, previous = max(covered_to, end), name
    if covered_to < data_bytes:
        problems.append(f"{data_bytes - covered_to} bytes after the last tensor belong to no tensor")
    return problems


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def combined_sha256(file_digests: dict[str, str]) -> str:
    """One digest of the whole checkpoint: sha256 of ``"<digest>  <relative path>\\n"`` lines sorted by path."""
    lines = "".join(f"{file_digests[relative]}  {relative}\n" for relative in sorted(file_digests))
    return hashlib.sha256(lines.encode()).hexdigest()




# How to find NaN and infinite elements of each floating-point dtype: a NumPy float type (np.isfinite), or
# the element's bits as an unsigned integer with (mask, value): non-finite when bits & mask == value.
# Integer, boolean and 4/6-bit dtypes have no non-finite values.
NONFINITE_BITS = {
    "F16": "<f2", "F32": "<f4", "F64": "<f8", "C64": "<f4",
    "BF16": ("<u2", 0x7F80, 0x7F80),  # exponent all ones: inf or NaN
    "F8_E5M2": ("u1", 0x7C, 0x7C),  # exponent all ones: inf or NaN
    "F8_E4M3": ("u1", 0x7F, 0x7F),  # E4M3FN: only S.1111.111 is NaN, no infinities
    "F8_E8M0": ("u1", 0xFF, 0xFF),  # 0xFF is NaN
    "F8_E4M3FNUZ": ("u1", 0xFF, 0x80), "F8_E5M2FNUZ": ("u1", 0xFF, 0x80),  # negative zero's pattern is NaN
}  # fmt: skip
SCAN_ELEMENTS = 1 << 24  # elements checked at once: bounds the scan's memory to ~tens of MB


def nonfinite_counts(path: str | Path, tensors: dict[str, TensorInfo]) -> dict[str, int]:
    """Number of NaN or infinite elements per tensor of ``path`` that has any (tensors from its header,
    already checked by ``read_safetensors_header``), read through a memory map in bounded chunks."""
    path = Path(path)
    with path.open("rb") as file:
        data_start = 8 + struct.unpack("<Q", file.read(8))[0]
    if path.stat().st_size == data_start:
        return {}
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start)
    counts = {}
    for name, tensor in tensors.items():
        kind = NONFINITE_BITS.get(tensor.dtype)
        if kind is None:
            continue
        dtype, mask, value = (kind, None, None) if isinstance(kind, str) else kind
        values = data[tensor.data_offsets[0]:tensor.data_offsets[1]].view(dtype)
        bad = 0
        for start in range(0, values.size, SCAN_ELEMENTS):
            block = values[start:start + SCAN_ELEMENTS]
            bad += int(block.size - np.count_nonzero(np.isfinite(block)) if mask is None
                       else np.count_nonzero((block & mask) == value))
        if bad:
            counts[name] = bad
    return counts
