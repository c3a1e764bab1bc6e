"""Validate an uploaded checkpoint folder before any GPU time is spent on it, without loading it.

Runs on CPU workers: no torch, no transformers, nothing unpickled. ``config.json`` is read as JSON
and the weights as safetensors *headers*, parsed here per the format spec (8-byte little-endian
header length, JSON header, tensor data offsets) so that a lying header is reported instead of
trusted; tensor data is only ever read to hash it. The checks mirror what ``evaluation.loading``
would load: a ``frontier_vlm`` (CLIP -> compressor -> LLM) or a llava-hf ``llava`` checkpoint.

The report carries what the leaderboard needs without loading the model: N (LLM parameters,
embeddings and LM head included, tied ones once, as ``evaluation.flops.count_parameters``
counts them), V, the compressor's and vision encoder's own parameter counts, and content hashes.

Here: the folder's files (links, pickles, config, weights, shards, tokenizer) and the report;
``evaluation.safetensors_check`` reads the headers, ``evaluation.model_check`` checks them against the config.
"""

import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .archives import extract_archive
from .model_check import ModelCheck
from .prompts import prompt_format_of, template_of
from .safetensors_check import (
    PICKLE_SUFFIXES,
    SAFE_SAVE,
    SafetensorsInvalid,
    TensorInfo,
    combined_sha256,
    nonfinite_counts,
    pickle_kind,
    pickle_refusal,
    read_safetensors_header,
    reject_duplicate_keys,
    sha256_file,
)

CONFIG_FILE = "config.json"
SINGLE_WEIGHTS_FILE = "model.safetensors"
SHARD_INDEX_FILE = "model.safetensors.index.json"
SHARD_FILE = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


class CheckpointInvalid(ValueError):
    """The checkpoint cannot be evaluated; ``problems`` are short sentences saying what to fix."""

    def __init__(self, path: str | Path, problems: list[str], warnings: list[str]):
        self.problems = problems
        self.warnings = warnings
        super().__init__(f"checkpoint {path} is invalid:\n" + "\n".join(f"- {problem}" for problem in problems))


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
    prompt_format: dict = field(default_factory=dict)  # evaluation.prompts: name, source, template SHA-256

    def to_dict(self) -> dict:
        return asdict(self)


class CheckpointValidation(ModelCheck):
    """Collects every problem and warning of one checkpoint folder: its files here, its config and weight
    headers in ``ModelCheck``."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root
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

    def refuse_nonfinite(self, weight_files: list[str], tensors: dict[str, TensorInfo]) -> None:
        """A model with NaN or infinite weights gives meaningless scores: it is refused, naming the tensors."""
        for relative in weight_files:
            mine = {name: tensor for name, tensor in tensors.items() if tensor.file == Path(relative).name}
            for name, count in sorted(nonfinite_counts(self.root / relative, mine).items()):
                self.problems.append(
                    f"{relative}: tensor {name!r} holds {count} NaN or infinite value(s) of "
                    f"{mine[name].numel}; a model with non-finite weights cannot be scored (did its training "
                    f"diverge?)"
                )

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
    if spec is not None and spec.model_type == "llava" and template_of(root) is None:
        check.warnings.append(
            "no chat template: prompts are fed as '<image>\\n' + question, not in the conversation the model was "
            "trained on, and a llava-hf model scores far below its model card that way; save the processor with "
            "processor.save_pretrained(dir) (it writes chat_template.jinja) and upload again"
        )
    if spec is not None and tensors is not None:
        check.check_shapes(spec, tensors)
        llm_params, compressor_params, vision_params = check.count_parameters(spec, tensors)
    if not check.problems:
        check.refuse_nonfinite(weight_files, tensors)
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
        prompt_format=prompt_format_of(root, spec.model_type).stamp(),
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
