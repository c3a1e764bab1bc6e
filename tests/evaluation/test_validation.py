"""Checkpoint validation from config.json and safetensors headers: every bad input gets a precise,
actionable problem, and the counts of a good checkpoint equal those of the loaded model."""

import ast
import hashlib
import json
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, LlavaConfig, LlavaForConditionalGeneration

from evaluation.compressors import check_tokens
from evaluation.model_check import visual_tokens_problem
from evaluation.modeling import FrontierVLM
from evaluation.safetensors_check import SafetensorsInvalid, read_safetensors_header
from evaluation.tiny import TINY_VISION, build_tiny_tokenizer, tiny_text_config
from evaluation.validation import (
    CheckpointInvalid,
    validate_checkpoint_archive,
    validate_checkpoint_dir,
)
from evaluation.vlm_spec import COMPRESSOR_METHODS

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
ARCHIVE_LIMITS = {"max_total_bytes": 50_000_000, "max_files": 100, "max_ratio": 20}
SAFE_SAVE = "model.save_pretrained(dir, safe_serialization=True)"


def copy_checkpoint(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "checkpoint"))


def edit_config(checkpoint: Path, edit) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    edit(config)
    (checkpoint / "config.json").write_text(json.dumps(config))


def edit_weights(weights: Path, edit) -> None:
    tensors = load_file(weights)
    edit(tensors)
    save_file(tensors, weights, metadata={"format": "pt"})


def problems_of(checkpoint: Path) -> list[str]:
    with pytest.raises(CheckpointInvalid) as caught:
        validate_checkpoint_dir(checkpoint)
    assert caught.value.problems
    return caught.value.problems


def write_safetensors(path: Path, header: dict | bytes, data: bytes = b"", header_length: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_length is None else header_length) + raw + data)
    return path


def header_problems(path: Path) -> list[str]:
    with pytest.raises(SafetensorsInvalid) as caught:
        read_safetensors_header(path)
    return caught.value.problems


def f32(offsets: list[int], shape: list[int]) -> dict:
    return {"dtype": "F32", "shape": shape, "data_offsets": offsets}


@pytest.fixture(scope="module")
def llava_checkpoint(tmp_path_factory) -> Path:
    """A tiny llava-hf checkpoint, built as in test_vlm_model.py."""
    out = tmp_path_factory.mktemp("llava")
    tokenizer = build_tiny_tokenizer()
    token_ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    config = LlavaConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config("llama", len(tokenizer), 32, 1, token_ids),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def sharded_checkpoint(tmp_path_factory, quecc_checkpoint) -> Path:
    out = tmp_path_factory.mktemp("sharded")
    FrontierVLM.from_pretrained(quecc_checkpoint, use_safetensors=True).save_pretrained(out, max_shard_size="200KB")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(quecc_checkpoint / name, out / name)
    return out


# --- good checkpoints ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["quecc_checkpoint", "pooling_checkpoint"])
def test_counts_from_headers_equal_the_loaded_model(request, fixture):
    """quecc: qwen2 with tied embeddings (no lm_head stored); avgpool: llama with its own lm_head."""
    checkpoint = request.getfixturevalue(fixture)
    report = validate_checkpoint_dir(checkpoint)
    model = FrontierVLM.from_pretrained(checkpoint, use_safetensors=True)
    assert report.llm_params == model.llm_param_count
    assert report.compressor_params == model.compressor_param_count
    assert report.vision_params == sum(parameter.numel() for parameter in model.vision_tower.parameters())
    assert (report.compressor_method, report.visual_tokens) == (model.config.compressor_method, model.visual_tokens)
    assert report.warnings == []


def test_report_of_a_good_checkpoint(quecc_checkpoint, tmp_path):
    report = validate_checkpoint_dir(quecc_checkpoint)
    assert (report.model_type, report.compressor_method, report.visual_tokens) == ("frontier_vlm", "quecc", 16)
    assert report.dtypes == ["F32"] and report.weight_files == ["model.safetensors"]
    files = sorted(path.name for path in quecc_checkpoint.iterdir())
    assert sorted(report.file_sha256) == files
    weights = (quecc_checkpoint / "model.safetensors").read_bytes()
    assert report.file_sha256["model.safetensors"] == hashlib.sha256(weights).hexdigest()
    assert report.total_bytes == sum(path.stat().st_size for path in quecc_checkpoint.iterdir())
    assert json.loads(json.dumps(report.to_dict())) == report.to_dict()

    copy = copy_checkpoint(quecc_checkpoint, tmp_path)
    assert validate_checkpoint_dir(copy).checkpoint_sha256 == report.checkpoint_sha256
    (copy / "tokenizer_config.json").write_text((copy / "tokenizer_config.json").read_text() + " ")
    assert validate_checkpoint_dir(copy).checkpoint_sha256 != report.checkpoint_sha256


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archived_checkpoint_validates_like_the_folder(quecc_checkpoint, tmp_path, kind):
    archive = tmp_path / f"upload.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(quecc_checkpoint.iterdir()):
                out.write(path, f"my-vlm/{path.name}")
    else:
        with tarfile.open(archive, "w:gz") as out:
            out.add(quecc_checkpoint, arcname="my-vlm")
    report = validate_checkpoint_archive(archive, tmp_path / "extracted", **ARCHIVE_LIMITS)
    folder_report = validate_checkpoint_dir(quecc_checkpoint)
    assert report.path == str(tmp_path / "extracted" / "my-vlm")
    assert report.checkpoint_sha256 == folder_report.checkpoint_sha256
    assert (report.llm_params, report.visual_tokens, report.compressor_params) == (
        folder_report.llm_params,
        16,
        folder_report.compressor_params,
    )


def test_archive_without_a_checkpoint_folder_is_refused(tmp_path):
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("a/config.json", "{}")
        out.writestr("b/config.json", "{}")
    with pytest.raises(
        CheckpointInvalid, match="must hold config.json at its top level or inside one top-level folder"
    ):
        validate_checkpoint_archive(archive, tmp_path / "extracted", **ARCHIVE_LIMITS)


def test_llava_checkpoint_validates_with_576_visual_tokens(llava_checkpoint):
    report = validate_checkpoint_dir(llava_checkpoint)
    assert (report.model_type, report.compressor_method, report.visual_tokens) == ("llava", "mlp", 576)
    model = LlavaForConditionalGeneration.from_pretrained(llava_checkpoint, use_safetensors=True)
    standalone_llm = AutoModelForCausalLM.from_config(model.config.text_config)
    assert report.llm_params == sum(parameter.numel() for parameter in standalone_llm.parameters())
    assert report.compressor_params == (32 + 1) * 32 + (32 + 1) * 32
    assert report.vision_params == sum(parameter.numel() for parameter in model.model.vision_tower.parameters())


def test_llava_checkpoint_with_unreadable_weights_reports_only_that(llava_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(llava_checkpoint, tmp_path)
    (checkpoint / "model.safetensors").write_bytes(b"\x00" * 4)
    assert problems_of(checkpoint) == ["model.safetensors: only 4 bytes: too short for the 8-byte header length"]


def test_llava_full_feature_strategy_keeps_the_cls_token(llava_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(llava_checkpoint, tmp_path)
    edit_config(checkpoint, lambda config: config.update(vision_feature_select_strategy="full"))
    assert validate_checkpoint_dir(checkpoint).visual_tokens == 577


def test_llava_checkpoint_in_the_transformers_4_layout_validates_identically(llava_checkpoint, tmp_path):
    """transformers 4.52+ saved llava as model.language_model.* / lm_head.weight / model.vision_tower.*."""
    checkpoint = copy_checkpoint(llava_checkpoint, tmp_path)
    renames = {
        "language_model.model.": "model.language_model.",
        "language_model.lm_head.": "lm_head.",
        "vision_tower.": "model.vision_tower.",
        "multi_modal_projector.": "model.multi_modal_projector.",
    }

    def rename(tensors):
        for name in list(tensors):
            old_prefix = next(prefix for prefix in renames if name.startswith(prefix))
            tensors[renames[old_prefix] + name.removeprefix(old_prefix)] = tensors.pop(name)

    edit_weights(checkpoint / "model.safetensors", rename)
    original, renamed = validate_checkpoint_dir(llava_checkpoint), validate_checkpoint_dir(checkpoint)
    assert (renamed.llm_params, renamed.compressor_params, renamed.vision_params) == (
        original.llm_params,
        original.compressor_params,
        original.vision_params,
    )


def test_sharded_checkpoint_validates_like_the_single_file(sharded_checkpoint, quecc_checkpoint):
    report = validate_checkpoint_dir(sharded_checkpoint)
    assert len(report.weight_files) > 1
    assert report.llm_params == validate_checkpoint_dir(quecc_checkpoint).llm_params


# --- weights: pickles and broken safetensors --------------------------------------------------------------


def test_pickle_files_are_refused_with_what_to_upload_instead(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    torch.save({"w": torch.zeros(2)}, checkpoint / "pytorch_model.bin")
    (checkpoint / "extra.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    (checkpoint / "notes.ckpt").write_bytes(b"plain text")
    problems = problems_of(checkpoint)
    assert problems == [
        "extra.pkl holds a pickle; pickles can execute code when loaded, so they are refused. "
        f"Upload the weights as safetensors ({SAFE_SAVE}) and leave other pickled files out",
        "notes.ckpt holds pickle-based data (.ckpt file); pickles can execute code when loaded, so they are refused. "
        f"Upload the weights as safetensors ({SAFE_SAVE}) and leave other pickled files out",
        "pytorch_model.bin holds a zip archive, the torch.save format, which holds a pickle; pickles can execute "
        f"code when loaded, so they are refused. Upload the weights as safetensors ({SAFE_SAVE}) and leave other "
        "pickled files out",
    ]


@pytest.mark.parametrize(
    ("write_pickle", "content"),
    [
        (lambda path: torch.save({"w": torch.zeros(2)}, path), "a zip archive, the torch.save format"),
        (lambda path: path.write_bytes(pickle.dumps({"w": [0.0] * 4}, protocol=2)), "a pickle;"),
    ],
)
def test_a_pickle_named_safetensors_is_refused(quecc_checkpoint, tmp_path, write_pickle, content):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    write_pickle(checkpoint / "model.safetensors")
    [problem] = problems_of(checkpoint)
    assert problem.startswith(f"model.safetensors holds {content}")
    assert "pickles can execute code when loaded" in problem and SAFE_SAVE in problem


def test_truncated_weights_say_how_much_data_is_missing(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    weights = checkpoint / "model.safetensors"
    raw = weights.read_bytes()
    header_length = struct.unpack("<Q", raw[:8])[0]
    expected_data = len(raw) - 8 - header_length
    weights.write_bytes(raw[:-1000])
    assert problems_of(checkpoint) == [
        f"model.safetensors: truncated: expected {expected_data} bytes of tensor data, found {expected_data - 1000}"
    ]


def test_file_shorter_than_the_length_field(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"\x10\x00\x00")
    assert header_problems(tmp_path / "w.safetensors") == ["only 3 bytes: too short for the 8-byte header length"]


def test_header_length_larger_than_the_file(tmp_path):
    path = write_safetensors(tmp_path / "w.safetensors", {"w": f32([0, 4], [1])}, bytes(4), header_length=5000)
    size = path.stat().st_size
    assert header_problems(path) == [
        f"header length 5000 is larger than the file ({size - 8} bytes after the length field)"
    ]


def test_header_length_shorter_than_the_header(tmp_path):
    path = write_safetensors(tmp_path / "w.safetensors", {"w": f32([0, 4], [1])}, bytes(4), header_length=20)
    [problem] = header_problems(path)
    assert problem.startswith("the 20-byte header is not valid JSON")


def test_huge_header_is_refused_without_reading_it(tmp_path):
    path = write_safetensors(tmp_path / "w.safetensors", b"{}", header_length=2**40)
    assert header_problems(path) == [f"huge header: {2**40} bytes declared, the limit is 100000000"]


def test_header_must_start_like_a_json_object(tmp_path):
    path = write_safetensors(tmp_path / "w.safetensors", b'[{"w": 1}]')
    assert header_problems(path) == ["the header does not start with '{'"]


@pytest.mark.parametrize(
    ("header", "data", "problem"),
    [
        (
            {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
            16,
            "tensor 'w': unknown dtype 'F128'; allowed: BOOL, F4",
        ),
        (
            {"w": f32([0, 8], [2, 2])},
            8,
            "tensor 'w': shape [2, 2] of F32 needs 16 bytes but data_offsets [0, 8] span 8",
        ),
        ({"w": f32([0, 4], [-1])}, 4, "tensor 'w': shape must be a list of non-negative integers, got [-1]"),
        ({"w": f32([8, 0], [2])}, 8, "tensor 'w': data_offsets must be [begin, end] with begin <= end, got [8, 0]"),
        ({"a": f32([0, 8], [2]), "b": f32([4, 12], [2])}, 12, "tensors 'a' and 'b' overlap (bytes 4..8)"),
        ({"a": f32([0, 8], [2]), "b": f32([12, 20], [2])}, 20, "bytes 8..12 before tensor 'b' belong to no tensor"),
        ({"a": f32([0, 8], [2])}, 12, "4 bytes after the last tensor belong to no tensor"),
        ({"__metadata__": {"format": 1}}, 0, "__metadata__ must map strings to strings"),
    ],
)
def test_header_entries_must_describe_the_data_exactly(tmp_path, header, data, problem):
    path = write_safetensors(tmp_path / "w.safetensors", header, bytes(data))
    [found] = header_problems(path)
    assert found.startswith(problem)


def test_duplicate_tensor_names_in_the_header_are_refused(tmp_path):
    entry = b'{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    raw = b'{"w": ' + entry + b', "w": ' + entry + b"}"
    [problem] = header_problems(write_safetensors(tmp_path / "w.safetensors", raw, bytes(4)))
    assert "duplicate keys ['w']" in problem


def test_sub_byte_dtypes_are_sized_in_bits(tmp_path):
    header = {"packed": {"dtype": "F4", "shape": [2, 4], "data_offsets": [0, 4]}, "__metadata__": {"format": "pt"}}
    tensors = read_safetensors_header(write_safetensors(tmp_path / "w.safetensors", header, bytes(4)))
    assert tensors["packed"].numel == 8


def test_missing_weights_config_and_tokenizer_say_what_to_upload(tmp_path):
    (tmp_path / "README.md").write_text("hello")
    assert problems_of(tmp_path) == [
        f"config.json is missing; upload the config written by {SAFE_SAVE}",
        "no weights: upload model.safetensors, or the shards with model.safetensors.index.json, "
        f"as written by {SAFE_SAVE}",
        "no tokenizer: upload tokenizer.json (written by tokenizer.save_pretrained(dir)) or tokenizer.model",
    ]


def test_symlinks_in_the_checkpoint_are_refused_and_never_read(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    (checkpoint / "secrets").symlink_to("/etc/passwd")
    (checkpoint / "config.json").unlink()
    (checkpoint / "config.json").symlink_to("/dev/zero")  # reading it would never end
    assert problems_of(checkpoint) == [
        "config.json is a symbolic link; upload the file itself",
        "secrets is a symbolic link; upload the file itself",
    ]


# --- sharded weights --------------------------------------------------------------------------------------


def shard_copy(sharded_checkpoint: Path, tmp_path: Path) -> tuple[Path, dict]:
    checkpoint = copy_checkpoint(sharded_checkpoint, tmp_path)
    return checkpoint, json.loads((checkpoint / "model.safetensors.index.json").read_text())


def save_index(checkpoint: Path, index: dict) -> None:
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps(index))


def test_index_referencing_a_missing_shard(sharded_checkpoint, tmp_path):
    checkpoint, index = shard_copy(sharded_checkpoint, tmp_path)
    last_shard = sorted(set(index["weight_map"].values()))[-1]
    (checkpoint / last_shard).unlink()
    assert problems_of(checkpoint) == [
        f"model.safetensors.index.json references {last_shard}, which is not a safetensors file of the upload"
    ]


def test_index_and_shards_must_agree_on_every_tensor(sharded_checkpoint, tmp_path):
    checkpoint, index = shard_copy(sharded_checkpoint, tmp_path)
    first, second = sorted(set(index["weight_map"].values()))[:2]
    moved = next(name for name, shard in index["weight_map"].items() if shard == first)
    unlisted = next(name for name, shard in index["weight_map"].items() if shard == second)
    index["weight_map"][moved] = second
    del index["weight_map"][unlisted]
    save_index(checkpoint, index)
    assert sorted(problems_of(checkpoint)) == sorted([
        f"tensor {moved!r} is stored in {first} but the index maps it to {second}",
        f"tensor {unlisted!r} is stored in {second} but the index does not list it",
        f"model.safetensors.index.json maps tensor {moved!r} to {second}, which does not hold it",
    ])  # fmt: skip


def test_a_tensor_listed_twice_in_the_index_is_refused(sharded_checkpoint, tmp_path):
    checkpoint, index = shard_copy(sharded_checkpoint, tmp_path)
    name, shard = next(iter(index["weight_map"].items()))
    raw = json.dumps(index).replace('"weight_map": {', f'"weight_map": {{"{name}": "{shard}", ', 1)
    (checkpoint / "model.safetensors.index.json").write_text(raw)
    [problem] = problems_of(checkpoint)
    assert problem.startswith(f"model.safetensors.index.json is not valid JSON (duplicate keys ['{name}'])")


def test_a_tensor_stored_in_two_shards_is_refused(sharded_checkpoint, tmp_path):
    checkpoint, index = shard_copy(sharded_checkpoint, tmp_path)
    first, second = sorted(set(index["weight_map"].values()))[:2]
    copied = next(name for name, shard in index["weight_map"].items() if shard == first)
    edit_weights(checkpoint / second, lambda tensors: tensors.update({copied: load_file(checkpoint / first)[copied]}))
    assert f"tensor {copied!r} is stored twice: in {first} and in {second}" in problems_of(checkpoint)


def test_shards_without_their_index(sharded_checkpoint, tmp_path):
    checkpoint, index = shard_copy(sharded_checkpoint, tmp_path)
    (checkpoint / "model.safetensors.index.json").unlink()
    shards = len(set(index["weight_map"].values()))
    assert problems_of(checkpoint)[0].startswith(
        f"no weights ({shards} shard files but no model.safetensors.index.json): upload model.safetensors"
    )


def test_single_file_and_shards_together_are_ambiguous(sharded_checkpoint, quecc_checkpoint, tmp_path):
    checkpoint, _ = shard_copy(sharded_checkpoint, tmp_path)
    shutil.copy(quecc_checkpoint / "model.safetensors", checkpoint)
    assert problems_of(checkpoint) == [
        "both model.safetensors and model.safetensors.index.json are present; upload one set of weights, not both"
    ]


# --- config -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            {"visual_tokens": 10},
            "V=10 is not a square number; quecc makes one token per square region: "
            "use one of 1, 4, 9, 16, 36, 64, 144, 576",
        ),
        (
            {"visual_tokens": 25},
            "V=25: a 5x5 token grid does not tile the 24x24 patch grid (5 does not divide 24); "
            "quecc supports V in 1, 4, 9, 16, 36, 64, 144, 576",
        ),
        (
            {"compressor_method": "perceiver"},
            "unknown compressor 'perceiver'; known compressors: avgpool, tokenpacker, quecc, prumerge, mqt",
        ),
        ({"visual_tokens": "16"}, "visual_tokens must be a positive integer, got '16'"),
        ({"model_type": "bert"}, "config.json: model_type 'bert' is not supported; expected 'frontier_vlm' or 'llava'"),
        (
            {"vision_config": {"model_type": "siglip_vision_model"}},
            "vision_config.model_type must be 'clip_vision_model', got 'siglip_vision_model'",
        ),
        ({"text_config": None}, f"config.json has no text_config object; upload the config written by {SAFE_SAVE}"),
        (
            {"vision_config": {**TINY_VISION, "image_size": 2}},
            "vision_config.image_size 2 is smaller than patch_size 4",
        ),
    ],
)
def test_config_problems(quecc_checkpoint, tmp_path, edit, problem):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    edit_config(checkpoint, lambda config: config.update(edit))
    assert problems_of(checkpoint) == [problem]


def test_config_that_is_not_json(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    (checkpoint / "config.json").write_text('{"model_type": "frontier_vlm",')
    [problem] = problems_of(checkpoint)
    assert problem.startswith("config.json is not valid JSON (Expecting property name") and SAFE_SAVE in problem


@pytest.mark.parametrize("method", COMPRESSOR_METHODS)
def test_visual_token_rules_agree_with_the_compressors(method):
    """The rules are re-derived here (evaluation.compressors imports torch); they must not drift."""
    for tokens in range(1, 600):
        try:
            check_tokens(method, tokens, 24, **({"max_queries": 100} if method == "mqt" else {}))
            supported = True
        except ValueError:
            supported = False
        assert (visual_tokens_problem(method, tokens, 24, max_queries=100) is None) == supported, (method, tokens)


def test_v_inconsistent_with_the_quecc_kernel(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    edit_config(checkpoint, lambda config: config.update(visual_tokens=4))
    assert problems_of(checkpoint) == [
        "tensor compressor.downsample.weight: expected shape [32, 1, 12, 12] = a depth-wise 12x12 kernel: the region "
        "side for V=4 on the 24x24 grid, found [32, 1, 6, 6]"
    ]


# --- tensors vs config ------------------------------------------------------------------------------------


def test_layer_count_must_match_the_text_config(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    edit_config(checkpoint, lambda config: config["text_config"].update(num_hidden_layers=3))
    assert problems_of(checkpoint) == [
        "text_config.num_hidden_layers is 3 but the weights hold 2 layers under language_model.model.layers.N; "
        "missing layers [2]"
    ]


def test_vocabulary_size_must_match_the_embeddings(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    edit_config(checkpoint, lambda config: config["text_config"].update(vocab_size=300))
    assert problems_of(checkpoint) == [
        "tensor language_model.model.embed_tokens.weight: expected shape [300, 64] = [text vocab_size, "
        "text hidden_size], found [217, 64]"
    ]


def test_vision_width_must_match_the_vision_tensors(pooling_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(pooling_checkpoint, tmp_path)
    edit_config(checkpoint, lambda config: config["vision_config"].update(hidden_size=48, num_hidden_layers=4))
    problems = problems_of(checkpoint)
    assert (
        "tensor compressor.projector.0.weight: expected shape [64, 48] = [text hidden_size, vision hidden_size], "
        "found [64, 32]" in problems
    )
    assert (
        "tensor vision_tower.embeddings.class_embedding: expected shape [48] = [vision hidden_size], found [32]"
        in problems
    )
    assert (
        "vision_config.num_hidden_layers is 4 but the weights hold 5 layers under vision_tower.encoder.layers.N"
        in problems
    )


def test_missing_tensors_are_named(pooling_checkpoint, tmp_path):
    """llama does not tie its embeddings, so its LM head must be stored."""
    checkpoint = copy_checkpoint(pooling_checkpoint, tmp_path)

    def drop(tensors):
        del tensors["language_model.model.embed_tokens.weight"], tensors["language_model.lm_head.weight"]

    edit_weights(checkpoint / "model.safetensors", drop)
    assert problems_of(checkpoint) == [
        "missing tensor language_model.model.embed_tokens.weight "
        "(shape [217, 64] = [text vocab_size, text hidden_size])",
        "missing tensor language_model.lm_head.weight: the embeddings are not tied (tie_word_embeddings is false), "
        "so the LM head must be stored",
    ]


def test_ignored_tensors_are_warnings_and_do_not_count(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    extra = {
        "language_model.lm_head.weight": torch.zeros(217, 64),  # tied to the embeddings: not a second matrix
        "language_model.model.layers.0.self_attn.rotary_emb.inv_freq": torch.zeros(8),
        "adapter.weight": torch.zeros(3),
    }
    edit_weights(checkpoint / "model.safetensors", lambda tensors: tensors.update(extra))
    report = validate_checkpoint_dir(checkpoint)
    assert report.llm_params == validate_checkpoint_dir(quecc_checkpoint).llm_params
    assert report.warnings == [
        "language_model.lm_head.weight is stored but the embeddings are tied; the loader ignores it",
        "tensor language_model.model.layers.0.self_attn.rotary_emb.inv_freq is a buffer, not a parameter; "
        "the loader ignores it",
        "1 tensors belong to no part of a frontier_vlm model and are ignored: adapter.weight",
    ]


def test_llava_text_config_keys_left_out_take_transformers_defaults(llava_checkpoint, tmp_path):
    """llava-hf configs omit keys at their default; llama's hidden_size default is 4096."""
    checkpoint = copy_checkpoint(llava_checkpoint, tmp_path)
    edit_config(checkpoint, lambda config: config["text_config"].pop("hidden_size"))
    assert (
        "tensor language_model.model.embed_tokens.weight: expected shape [217, 4096] = [text vocab_size, "
        "text hidden_size], found [217, 32]" in problems_of(checkpoint)
    )


def test_every_problem_is_reported_at_once(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    (checkpoint / "tokenizer.json").unlink()
    (checkpoint / "optimizer.pt").write_bytes(b"\x80\x04junk")
    edit_config(checkpoint, lambda config: config.update(visual_tokens=10))
    with pytest.raises(CheckpointInvalid) as caught:
        validate_checkpoint_dir(checkpoint)
    assert [problem.split(" ")[0] for problem in caught.value.problems] == ["optimizer.pt", "no", "V=10"]
    assert str(caught.value).startswith(f"checkpoint {checkpoint} is invalid:\n- optimizer.pt holds a pickle")


# --- no torch on the validation path ----------------------------------------------------------------------


def test_validation_imports_only_the_standard_library():
    for module in ("validation", "archives"):
        source = (REPOSITORY_ROOT / "evaluation" / f"{module}.py").read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module.split(".")[0]]
            else:
                continue
            assert set(names) <= sys.stdlib_module_names, f"{module}.py imports {names}"


def test_validating_loads_neither_torch_nor_transformers(quecc_checkpoint):
    """Run without the package __init__ (which registers the models with transformers)."""
    script = (
        "import sys, types\n"
        "package = types.ModuleType('evaluation'); package.__path__ = ['evaluation']\n"
        "sys.modules['evaluation'] = package\n"
        "from evaluation.validation import validate_checkpoint_dir\n"
        f"report = validate_checkpoint_dir({str(quecc_checkpoint)!r})\n"
        "print(report.llm_params, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=True
    )
    assert completed.stdout.split() == [str(validate_checkpoint_dir(quecc_checkpoint).llm_params), "False", "False"]


# --- non-finite weights (issue #15 row 9) ---------------------------------------------------------------


def test_weights_with_nan_or_infinity_are_refused_naming_the_tensor(quecc_checkpoint, tmp_path):
    checkpoint = copy_checkpoint(quecc_checkpoint, tmp_path)
    name = "language_model.model.layers.0.mlp.up_proj.weight"

    def poison(tensors):
        tensors[name] = tensors[name].clone()
        tensors[name][0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])

    edit_weights(checkpoint / "model.safetensors", poison)
    with pytest.raises(CheckpointInvalid) as raised:
        validate_checkpoint_dir(checkpoint)
    numel = load_file(checkpoint / "model.safetensors")[name].numel()
    assert raised.value.problems == [
        f"model.safetensors: tensor {name!r} holds 3 NaN or infinite value(s) of {numel}; a model with non-finite "
        f"weights cannot be scored (did its training diverge?)"
    ]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                   torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz,
                                   torch.float8_e5m2fnuz, torch.complex64])
def test_non_finite_elements_are_counted_as_torch_counts_them_for_every_bit_pattern(tmp_path, dtype):
    """Every bit pattern of the element size (all 2^8 or 2^16), and random words for wider types, stored as
    safetensors and counted by their bits with NumPy; torch's isfinite is the reference."""
    from evaluation.safetensors_check import nonfinite_counts

    generator = torch.Generator().manual_seed(0)
    size = torch.empty((), dtype=dtype).element_size()
    if size <= 2:
        words = torch.arange(2 ** (8 * size), dtype=torch.int32).to(torch.int16 if size == 2 else torch.uint8)
    else:
        words = torch.randint(-2**31, 2**31 - 1, (4096 * size // 4,), dtype=torch.int32, generator=generator)
        words[:4] = torch.tensor([0x7F800000, 0x7FC00000, -8388608, 0], dtype=torch.int32)  # inf, nan, -inf, 0
    values = words.view(dtype)
    path = tmp_path / "w.safetensors"
    save_file({"t": values}, str(path))
    reference = torch.view_as_real(values) if values.is_complex() else values.to(torch.float64)
    expected = int((~torch.isfinite(reference)).sum())
    counts = nonfinite_counts(path, read_safetensors_header(path))
    assert expected > 0 and counts.get("t", 0) == expected
