"""Validate an uploaded checkpoint folder before any GPU time is spent on it, without loading it.

Runs on CPU workers: no torch, no transformers, nothing unpickled. ``config.json`` is read as JSON
and the weights as safetensors *headers*, parsed here per the format spec (8-byte little-endian
header length, JSON header, tensor data offsets) so that a lying header is reported instead of
trusted; tensor data is only ever read to hash it. The checks mirror what ``evaluation.loading``
would load: a ``frontier_vlm`` (CLIP -> compressor -> LLM) or a llava-hf ``llava`` checkpoint.

The report carries what the leaderboard needs without loading the model: N (LLM parameters,
embeddings and LM head included, tied ones once, as ``evaluation.flops.count_parameters``
counts them), V, the compressor's and vision encoder's own parameter counts, and content hashes.
"""

import hashlib
import json
import math
import os
import re
import stat
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .archives import extract_archive
from .vlm_spec import (
    COMPRESSOR_METHODS,
    KEY_VALUE_PROJECTIONS,
    LLAVA_PROJECTOR_METHOD,
    LEGACY_QUECC_KEY_VALUE,
    MQT_DEFAULT_MAX_QUERIES,
    MULTI_LEVEL_LAYERS_VIT_L,
    REGION_COMPRESSORS,
    square_region_token_counts,
)

SAFE_SAVE = "model.save_pretrained(dir, safe_serialization=True)"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
CONFIG_FILE = "config.json"
SINGLE_WEIGHTS_FILE = "model.safetensors"
SHARD_INDEX_FILE = "model.safetensors.index.json"
SHARD_FILE = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
HASH_CHUNK_BYTES = 1 << 20

# The safetensors format's dtypes and their element sizes in bits (F4 and F6 are packed sub-byte types).
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
    "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}  # fmt: skip
MAX_HEADER_BYTES = 100_000_000  # the limit of the reference implementation


# transformers' defaults for keys a saved sub-config may leave out (llava-hf configs omit some).
CLIP_VISION_DEFAULTS = {
    "hidden_size": 768,
    "image_size": 224,
    "patch_size": 32,
    "num_hidden_layers": 12,
    "num_channels": 3,
}
TEXT_CONFIG_DEFAULTS = {
    "llama": {"vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32, "tie_word_embeddings": False},
    "mistral": {"vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32, "tie_word_embeddings": False},
    "qwen2": {"vocab_size": 151936, "hidden_size": 4096, "num_hidden_layers": 32, "tie_word_embeddings": False},
}
# Buffers older checkpoints persisted; they are not parameters and the loader drops them.
BUFFER_SUFFIXES = (".rotary_emb.inv_freq", ".position_ids")


class SafetensorsInvalid(ValueError):
    """A file that should be safetensors is not, or its header contradicts the file.

    ``pickle_content`` says what pickle-based content the file holds instead, when it does.
    """

    def __init__(self, problems: list[str], pickle_content: str | None = None):
        self.problems = problems
        self.pickle_content = pickle_content
        super().__init__("; ".join(problems))


class CheckpointInvalid(ValueError):
    """The checkpoint cannot be evaluated; ``problems`` are short sentences saying what to fix."""

    def __init__(self, path: str | Path, problems: list[str], warnings: list[str]):
        self.problems = problems
        self.warnings = warnings
        super().__init__(f"checkpoint {path} is invalid:\n" + "\n".join(f"- {problem}" for problem in problems))


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


@dataclass
class CheckpointReport:
    """What a valid checkpoint holds, counted from its headers. ``compressor_method`` is
    ``"mlp"`` (``vlm_spec.LLAVA_PROJECTOR_METHOD``) for llava checkpoints (every patch token kept)."""

    path: str
    model_type: str
    compressor_method: str
    visual_tokens: int
    llm_params: int
    compressor_params: int
    vision_params: int
    tensor_count: int
    dtypes: list[str]
    weight_files: list[str]
    total_bytes: int
    file_sha256: dict[str, str]
    checkpoint_sha256: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


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


def visual_tokens_problem(method: str, tokens: int, grid_side: int, max_queries: int) -> str | None:
    """Why V is unsupported by the compressor (the rules of ``evaluation.compressors``), or None."""
    if method in REGION_COMPRESSORS:
        allowed = ", ".join(map(str, square_region_token_counts(grid_side)))
        side = math.isqrt(tokens)
        if side * side != tokens:
            return (
                f"V={tokens} is not a square number; {method} makes one token per square region: use one of {allowed}"
            )
        if grid_side % side:
            return (
                f"V={tokens}: a {side}x{side} token grid does not tile the {grid_side}x{grid_side} patch grid "
                f"({side} does not divide {grid_side}); {method} supports V in {allowed}"
            )
        return None
    limit = grid_side**2 if method == "prumerge" else max_queries
    if tokens > limit:
        reason = f"the {grid_side}x{grid_side} patch grid" if method == "prumerge" else f"max_queries={max_queries}"
        return f"V={tokens} is more than {method} can keep: V must be 1..{limit} ({reason})"
    return None


@dataclass
class TensorLayout:
    """Where the parts of a model live in the checkpoint's tensor names."""

    llm_body: str
    lm_head: str
    vision: str
    compressor: str


FRONTIER_LAYOUT = TensorLayout("language_model.model.", "language_model.lm_head.weight", "vision_tower.", "compressor.")
LLAVA_LEGACY_LAYOUT = TensorLayout(
    "language_model.model.", "language_model.lm_head.weight", "vision_tower.", "multi_modal_projector."
)
LLAVA_LAYOUT = TensorLayout(
    "model.language_model.", "lm_head.weight", "model.vision_tower.", "model.multi_modal_projector."
)


@dataclass
class ModelSpec:
    """What config.json says the weights must look like."""

    model_type: str
    compressor_method: str
    visual_tokens: int
    tied_embeddings: bool
    text: dict
    vision: dict
    layout: TensorLayout
    expected_shapes: list[tuple[str, tuple[int, ...], str]]  # (tensor, shape, where the shape comes from)


class CheckpointValidation:
    """Collects every problem and warning of one checkpoint folder."""

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.files: list[str] = []

    def regular_files(self) -> list[str]:
        """Relative paths of the regular files; links and special files are problems (never followed)."""
        files = []
        for folder, subfolders, names in os.walk(self.root):
            for name in sorted(subfolders + names):
                path = Path(folder, name)
                relative = path.relative_to(self.root).as_posix()
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode):
                    self.problems.append(f"{relative} is a symbolic link; upload the file itself")
                elif stat.S_ISREG(mode):
                    files.append(relative)
                elif not stat.S_ISDIR(mode):
                    self.problems.append(f"{relative} is not a regular file (device, FIFO or socket)")
        self.files = sorted(files)
        return self.files

    def refuse_pickles(self, files: list[str]) -> None:
        for relative in files:
            if relative.lower().endswith(PICKLE_SUFFIXES):
                with (self.root / relative).open("rb") as file:
                    content = pickle_kind(file.read(4))
                suffix = Path(relative).suffix
                self.problems.append(pickle_refusal(relative, content or f"pickle-based data ({suffix} file)"))

    def read_json(self, relative: str, what_to_upload: str) -> dict | None:
        """Only regular files are read: a link or special file was reported by ``regular_files``."""
        path = self.root / relative
        if relative not in self.files:
            if not os.path.lexists(path):
                self.problems.append(f"{relative} is missing; upload {what_to_upload}")
            return None
        try:
            value = json.loads(path.read_bytes(), object_pairs_hook=reject_duplicate_keys)
        except (UnicodeDecodeError, ValueError) as error:
            self.problems.append(f"{relative} is not valid JSON ({error}); upload {what_to_upload}")
            return None
        if not isinstance(value, dict):
            self.problems.append(f"{relative} must hold a JSON object; upload {what_to_upload}")
            return None
        return value

    def read_safetensors(self, relative: str) -> dict[str, TensorInfo] | None:
        try:
            return read_safetensors_header(self.root / relative)
        except SafetensorsInvalid as error:
            if error.pickle_content:
                self.problems.append(pickle_refusal(relative, error.pickle_content))
            else:
                self.problems += [f"{relative}: {problem}" for problem in error.problems]
            return None

    def read_weights(self, files: list[str]) -> tuple[dict[str, TensorInfo] | None, list[str]]:
        """Tensors of the weights transformers would load (one file, or the shards of the index), and
        those files; None for the tensors when the weights cannot be read (problems say why)."""
        safetensors_files = [relative for relative in files if relative.endswith(".safetensors")]
        headers = {relative: self.read_safetensors(relative) for relative in safetensors_files}
        shards = [relative for relative in safetensors_files if SHARD_FILE.fullmatch(relative)]
        has_index = SHARD_INDEX_FILE in files
        if SINGLE_WEIGHTS_FILE in files and has_index:
            self.problems.append(
                f"both {SINGLE_WEIGHTS_FILE} and {SHARD_INDEX_FILE} are present; upload one set of weights, not both"
            )
            return None, []
        if SINGLE_WEIGHTS_FILE in files:
            weight_files = [SINGLE_WEIGHTS_FILE]
            tensors = headers[SINGLE_WEIGHTS_FILE]
        elif has_index:
            weight_files, tensors = self.read_sharded_weights(headers)
        else:
            detail = f" ({len(shards)} shard files but no {SHARD_INDEX_FILE})" if shards else ""
            self.problems.append(
                f"no weights{detail}: upload {SINGLE_WEIGHTS_FILE}, or the shards with {SHARD_INDEX_FILE}, "
                f"as written by {SAFE_SAVE}"
            )
            return None, []
        for relative in safetensors_files:
            if relative not in weight_files:
                self.warnings.append(f"{relative} is not part of the model's weights and is ignored")
        return tensors, weight_files

    def read_sharded_weights(
        self, headers: dict[str, dict[str, TensorInfo] | None]
    ) -> tuple[list[str], dict[str, TensorInfo] | None]:
        """Every tensor must be listed once in the index and stored in the one shard the index names."""
        index = self.read_json(SHARD_INDEX_FILE, f"the index written by {SAFE_SAVE}")
        weight_map = index.get("weight_map") if index is not None else None
        if not (isinstance(weight_map, dict) and all(isinstance(shard, str) for shard in weight_map.values())):
            if index is not None:
                self.problems.append(
                    f'{SHARD_INDEX_FILE} needs a "weight_map" object mapping tensor names to shard files'
                )
            return [], None
        weight_files = sorted(set(weight_map.values()))
        missing = [shard for shard in weight_files if shard not in headers]
        for shard in missing:
            self.problems.append(
                f"{SHARD_INDEX_FILE} references {shard}, which is not a safetensors file of the upload"
            )
        if missing or any(headers[shard] is None for shard in weight_files):
            return weight_files, None
        tensors: dict[str, TensorInfo] = {}
        for shard in weight_files:
            for name, tensor in headers[shard].items():
                if name in tensors:
                    self.problems.append(f"tensor {name!r} is stored twice: in {tensors[name].file} and in {shard}")
                elif weight_map.get(name) != shard:
                    listed = (
                        f"the index maps it to {weight_map[name]}"
                        if name in weight_map
                        else "the index does not list it"
                    )
                    self.problems.append(f"tensor {name!r} is stored in {shard} but {listed}")
                tensors.setdefault(name, tensor)
        for name, shard in weight_map.items():
            if name not in headers[shard]:
                self.problems.append(f"{SHARD_INDEX_FILE} maps tensor {name!r} to {shard}, which does not hold it")
        return weight_files, tensors

    def check_tokenizer(self, files: list[str]) -> None:
        if not any(name in files for name in TOKENIZER_FILES):
            self.problems.append(
                "no tokenizer: upload tokenizer.json (written by tokenizer.save_pretrained(dir)) or tokenizer.model"
            )
        elif "tokenizer.json" in files:
            self.read_json("tokenizer.json", "the file written by tokenizer.save_pretrained(dir)")

    def positive_int(self, config: dict, key: str, where: str, defaults: dict) -> int | None:
        value = config.get(key, defaults.get(key))
        if value is None:
            self.problems.append(f"{where}.{key} is missing and has no known default; add it to config.json")
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.problems.append(f"{where}.{key} must be a positive integer, got {value!r}")
        else:
            return value
        return None

    def sub_config(self, config: dict, key: str) -> dict | None:
        value = config.get(key)
        if not isinstance(value, dict):
            self.problems.append(f"config.json has no {key} object; upload the config written by {SAFE_SAVE}")
            return None
        return value

    def model_spec(self, config: dict, tensors: dict[str, TensorInfo]) -> ModelSpec | None:
        model_type = config.get("model_type")
        if model_type not in ("frontier_vlm", "llava"):
            self.problems.append(
                f"config.json: model_type {model_type!r} is not supported; expected 'frontier_vlm' or 'llava'"
            )
            return None
        text_config, vision_config = self.sub_config(config, "text_config"), self.sub_config(config, "vision_config")
        if text_config is None or vision_config is None:
            return None
        if vision_config.get("model_type") != "clip_vision_model":
            self.problems.append(
                f"vision_config.model_type must be 'clip_vision_model', got {vision_config.get('model_type')!r}"
            )
            return None
        text_defaults = TEXT_CONFIG_DEFAULTS.get(text_config.get("model_type"), {})
        text = {
            key: self.positive_int(text_config, key, "text_config", text_defaults)
            for key in ("vocab_size", "hidden_size", "num_hidden_layers")
        }
        vision = {
            key: self.positive_int(vision_config, key, "vision_config", CLIP_VISION_DEFAULTS)
            for key in ("hidden_size", "image_size", "patch_size", "num_hidden_layers", "num_channels")
        }
        text_tied = text_config.get("tie_word_embeddings", text_defaults.get("tie_word_embeddings"))
        if text_tied is None:
            self.problems.append("text_config.tie_word_embeddings is missing and has no known default; add it")
        if None in text.values() or None in vision.values() or text_tied is None:
            return None
        if vision["image_size"] < vision["patch_size"]:
            self.problems.append(
                f"vision_config.image_size {vision['image_size']} is smaller than patch_size {vision['patch_size']}"
            )
            return None
        if model_type == "llava":
            return self.llava_spec(config, text, vision, bool(text_tied), tensors)
        return self.frontier_spec(config, text, vision, bool(text_tied))

    def frontier_spec(self, config: dict, text: dict, vision: dict, tied: bool) -> ModelSpec | None:
        method, tokens = config.get("compressor_method"), config.get("visual_tokens")
        params = config.get("compressor_params") or {}
        if not isinstance(params, dict):
            self.problems.append(f"compressor_params must be a JSON object, got {params!r}")
            return None
        if method not in COMPRESSOR_METHODS:
            self.problems.append(f"unknown compressor {method!r}; known compressors: {', '.join(COMPRESSOR_METHODS)}")
            return None
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            self.problems.append(f"visual_tokens must be a positive integer, got {tokens!r}")
            return None
        grid_side = vision["image_size"] // vision["patch_size"]
        max_queries = self.positive_int(
            params, "max_queries", "compressor_params", {"max_queries": MQT_DEFAULT_MAX_QUERIES}
        )
        if max_queries is None:
            return None
        problem = visual_tokens_problem(method, tokens, grid_side, max_queries)
        if problem:
            self.problems.append(problem)
            return None
        vision_width, llm_width = vision["hidden_size"], text["hidden_size"]
        levels = len(config.get("multi_level_layers") or MULTI_LEVEL_LAYERS_VIT_L)
        expected = [
            ("compressor.projector.0.weight", (llm_width, vision_width), "[text hidden_size, vision hidden_size]"),
            ("compressor.projector.2.weight", (llm_width, llm_width), "[text hidden_size, text hidden_size]"),
        ]
        key_value_source = "[vision hidden_size, vision hidden_size x len(multi_level_layers)]"
        for name in KEY_VALUE_PROJECTIONS.get(method, ()):
            expected.append((f"compressor.{name}.0.weight", (vision_width, vision_width * levels), key_value_source))
        if method == "quecc":
            side = grid_side // math.isqrt(tokens)
            kernel_source = (
                f"a depth-wise {side}x{side} kernel: the region side for V={tokens} on the {grid_side}x{grid_side} grid"
            )
            expected.append(("compressor.downsample.weight", (vision_width, 1, side, side), kernel_source))
        if method == "mqt":
            expected.append(("compressor.queries", (max_queries, vision_width), "[max_queries, vision hidden_size]"))
        return ModelSpec("frontier_vlm", method, tokens, tied, text, vision, FRONTIER_LAYOUT, expected)

    def llava_spec(self, config: dict, text: dict, vision: dict, text_tied: bool, tensors: dict) -> ModelSpec:
        """V is every CLIP patch token (+ CLS with the "full" strategy), as ``LlavaRunner`` computes it."""
        patches = (vision["image_size"] // vision["patch_size"]) ** 2
        tokens = patches + 1 if config.get("vision_feature_select_strategy") == "full" else patches
        feature_layer = config.get("vision_feature_layer", -2)
        levels = len(feature_layer) if isinstance(feature_layer, list) else 1
        # LlavaConfig: the top-level flag, or the text config's one that older checkpoints saved.
        tied = bool(config.get("tie_word_embeddings")) or text_tied
        layout = (
            LLAVA_LAYOUT if any(name.startswith(LLAVA_LAYOUT.llm_body) for name in tensors) else LLAVA_LEGACY_LAYOUT
        )
        vision_width, llm_width = vision["hidden_size"], text["hidden_size"]
        expected = [
            (
                f"{layout.compressor}linear_1.weight",
                (llm_width, vision_width * levels),
                "[text hidden_size, vision hidden_size]",
            ),
            (f"{layout.compressor}linear_2.weight", (llm_width, llm_width), "[text hidden_size, text hidden_size]"),
        ]
        return ModelSpec("llava", LLAVA_PROJECTOR_METHOD, tokens, tied, text, vision, layout, expected)

    def check_shapes(self, spec: ModelSpec, tensors: dict[str, TensorInfo]) -> None:
        text, vision, layout = spec.text, spec.vision, spec.layout
        vision_prefix = layout.vision + (
            "vision_model." if any(n.startswith(layout.vision + "vision_model.") for n in tensors) else ""
        )
        grid_side = vision["image_size"] // vision["patch_size"]
        embedding_shape = (text["vocab_size"], text["hidden_size"])
        required = [
            *spec.expected_shapes,
            (f"{layout.llm_body}embed_tokens.weight", embedding_shape, "[text vocab_size, text hidden_size]"),
            (f"{vision_prefix}embeddings.class_embedding", (vision["hidden_size"],), "[vision hidden_size]"),
            (
                f"{vision_prefix}embeddings.patch_embedding.weight",
                (vision["hidden_size"], vision["num_channels"], vision["patch_size"], vision["patch_size"]),
                "[vision hidden_size, num_channels, patch_size, patch_size]",
            ),
            (
                f"{vision_prefix}embeddings.position_embedding.weight",
                (grid_side**2 + 1, vision["hidden_size"]),
                "[(image_size / patch_size)^2 + 1, vision hidden_size]",
            ),
        ]
        optional = [
            (layout.lm_head, embedding_shape, "[text vocab_size, text hidden_size]"),
            (f"{layout.llm_body}norm.weight", (text["hidden_size"],), "[text hidden_size]"),
        ]
        for name, shape, source in required:
            if name not in tensors:
                self.problems.append(f"missing tensor {name} (shape {list(shape)} = {source})")
        if spec.compressor_method == "quecc" and LEGACY_QUECC_KEY_VALUE in tensors:
            self.problems.append(
                f"{LEGACY_QUECC_KEY_VALUE} is QueCC's shared key/value MLP, which Frontier used until 2026-12; "
                "QueCC now has separate key_proj and value_proj MLPs, as the paper's code: train it again "
                "(POST /api/v1/trainings/ or the training form) with this version and upload that checkpoint"
            )
        for name, shape, source in required + optional:
            if name in tensors and tensors[name].shape != shape:
                self.problems.append(
                    f"tensor {name}: expected shape {list(shape)} = {source}, found {list(tensors[name].shape)}"
                )
        self.check_layer_count(tensors, f"{layout.llm_body}layers.", text["num_hidden_layers"], "text_config")
        self.check_layer_count(tensors, f"{vision_prefix}encoder.layers.", vision["num_hidden_layers"], "vision_config")

    def check_layer_count(self, tensors: dict[str, TensorInfo], prefix: str, expected: int, where: str) -> None:
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        found = {int(match.group(1)) for name in tensors if (match := pattern.match(name))}
        if found != set(range(expected)):
            missing = sorted(set(range(expected)) - found)
            detail = f"; missing layers {missing}" if missing and found else ""
            self.problems.append(
                f"{where}.num_hidden_layers is {expected} but the weights hold {len(found)} layers "
                f"under {prefix}N{detail}"
            )

    def count_parameters(self, spec: ModelSpec, tensors: dict[str, TensorInfo]) -> tuple[int, int, int]:
        """(LLM, compressor, vision) parameters; a tied LM head is the embedding matrix, counted once."""
        layout = spec.layout
        llm = compressor = vision = 0
        unexpected = []
        for name, tensor in tensors.items():
            if name.endswith(BUFFER_SUFFIXES):
                self.warnings.append(f"tensor {name} is a buffer, not a parameter; the loader ignores it")
            elif name == layout.lm_head:
                if spec.tied_embeddings:
                    self.warnings.append(f"{name} is stored but the embeddings are tied; the loader ignores it")
                else:
                    llm += tensor.numel
            elif name.startswith(layout.llm_body):
                llm += tensor.numel
            elif name.startswith(layout.compressor):
                compressor += tensor.numel
            elif name.startswith(layout.vision):
                vision += tensor.numel
            else:
                unexpected.append(name)
        if layout.lm_head not in tensors and not spec.tied_embeddings:
            self.problems.append(
                f"missing tensor {layout.lm_head}: the embeddings are not tied (tie_word_embeddings is false), "
                "so the LM head must be stored"
            )
        if unexpected:
            shown = ", ".join(unexpected[:5]) + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else "")
            self.warnings.append(
                f"{len(unexpected)} tensors belong to no part of a {spec.model_type} model and are ignored: {shown}"
            )
        return llm, compressor, vision


def validate_checkpoint_dir(path: str | Path) -> CheckpointReport:
    """Check a checkpoint folder as uploaded; raise ``CheckpointInvalid`` listing every problem found."""
    root = Path(path)
    if not root.is_dir():
        raise CheckpointInvalid(root, [f"{root} is not a folder"], [])
    check = CheckpointValidation(root)
    files = check.regular_files()
    check.refuse_pickles(files)
    config = check.read_json(CONFIG_FILE, f"the config written by {SAFE_SAVE}")
    tensors, weight_files = check.read_weights(files)
    check.check_tokenizer(files)
    spec = check.model_spec(config, tensors or {}) if config is not None else None
    if spec is not None and tensors is not None:
        check.check_shapes(spec, tensors)
        llm_params, compressor_params, vision_params = check.count_parameters(spec, tensors)
    if check.problems:  # every path that leaves spec or tensors unset has recorded a problem
        raise CheckpointInvalid(root, check.problems, check.warnings)
    digests = {relative: sha256_file(root / relative) for relative in files}
    return CheckpointReport(
        path=str(root),
        model_type=spec.model_type,
        compressor_method=spec.compressor_method,
        visual_tokens=spec.visual_tokens,
        llm_params=llm_params,
        compressor_params=compressor_params,
        vision_params=vision_params,
        tensor_count=len(tensors),
        dtypes=sorted({tensor.dtype for tensor in tensors.values()}),
        weight_files=weight_files,
        total_bytes=sum((root / relative).stat().st_size for relative in files),
        file_sha256=digests,
        checkpoint_sha256=combined_sha256(digests),
        warnings=check.warnings,
    )


def checkpoint_root(extracted_dir: Path) -> Path:
    """The folder holding config.json: the archive's top level or its single top-level folder."""
    if (extracted_dir / CONFIG_FILE).exists():
        return extracted_dir
    entries = list(extracted_dir.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    raise CheckpointInvalid(
        extracted_dir, [f"the archive must hold {CONFIG_FILE} at its top level or inside one top-level folder"], []
    )


def validate_checkpoint_archive(
    archive_path: str | Path, dest_dir: str | Path, *, max_total_bytes: int, max_files: int, max_ratio: float
) -> CheckpointReport:
    """Extract an uploaded archive safely (see ``evaluation.archives``) and validate the checkpoint in it.

    Raises ``ArchiveError`` for a refused archive (nothing is left in ``dest_dir``), ``CheckpointInvalid``
    for a refused checkpoint (the extracted files stay for the caller to inspect or delete).
    """
    extract_archive(archive_path, dest_dir, max_total_bytes=max_total_bytes, max_files=max_files, max_ratio=max_ratio)
    return validate_checkpoint_dir(checkpoint_root(Path(dest_dir)))
