"""`python -m evaluation make-tiny` and the locally built tokenizer."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.__main__ import main
from evaluation.tiny import build_tiny_tokenizer

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def test_cli_writes_a_small_safetensors_checkpoint(tmp_path):
    out = tmp_path / "tiny"
    completed = subprocess.run(
        [sys.executable, "-m", "evaluation", "make-tiny", "--out", str(out)]
        + ["--compressor", "prumerge", "--tokens", "36"],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=True,
    )
    assert completed.stdout.strip() == str(out)
    files = {path.name for path in out.iterdir()}
    assert files == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
    }
    assert sum(path.stat().st_size for path in out.iterdir()) < 5 * 1024 * 1024
    config = json.loads((out / "config.json").read_text())
    assert (config["compressor_method"], config["visual_tokens"]) == ("prumerge", 36)


def test_same_seed_gives_identical_weights_and_another_seed_does_not(tmp_path):
    options = ["--compressor", "tokenpacker", "--tokens", "4", "--llm-hidden", "32", "--llm-layers", "1"]
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        main(["make-tiny", "--out", str(tmp_path / name), "--seed", seed, *options])
    weights = {name: (tmp_path / name / "model.safetensors").read_bytes() for name in "abc"}
    assert weights["a"] == weights["b"]
    assert weights["a"] != weights["c"]


def test_llm_options_shape_the_text_config(tmp_path):
    main(["make-tiny", "--out", str(tmp_path), "--compressor", "mqt", "--tokens", "9",
          "--llm-family", "llama", "--llm-hidden", "48", "--llm-layers", "1"])  # fmt: skip
    text_config = json.loads((tmp_path / "config.json").read_text())["text_config"]
    assert (text_config["model_type"], text_config["hidden_size"], text_config["num_hidden_layers"]) == ("llama", 48, 1)
    assert text_config["vocab_size"] == len(build_tiny_tokenizer())


def test_unsupported_tokens_exit_with_the_reason(tmp_path):
    with pytest.raises(SystemExit, match=r"error: compressor 'avgpool' does not support V=5 .*allowed values"):
        main(["make-tiny", "--out", str(tmp_path), "--compressor", "avgpool", "--tokens", "5"])
    assert not any(tmp_path.iterdir())


def test_tokenizer_covers_plain_lowercase_text_without_unknowns():
    tokenizer = build_tiny_tokenizer()
    text = "<image>\nQuestion: How many red squares are in the picture, 12 or 3? Answer: zyx!"
    ids = tokenizer(text).input_ids
    assert tokenizer.unk_token_id not in ids
    assert ids.count(tokenizer.convert_tokens_to_ids("<image>")) == 1
    assert tokenizer.convert_ids_to_tokens(ids)[:3] == ["<image>", "question", ":"]
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded.replace(" ", "") == text.lower().replace("<image>", "").replace(" ", "").replace("\n", "")


def test_tokenizer_is_small_deterministic_and_left_padding():
    first, second = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert first.get_vocab() == second.get_vocab()
    assert 100 < len(first) < 300
    assert first.padding_side == "left"
    assert {first.pad_token, first.eos_token, first.bos_token, first.unk_token} == {"<pad>", "</s>", "<s>", "<unk>"}


def test_library_imports_no_web_or_worker_code():
    forbidden = {"django", "celery", "webapp", "workers"}
    for source in (REPOSITORY_ROOT / "evaluation").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            assert not {module.split(".")[0] for module in modules} & forbidden, f"{source.name} imports {modules}"


@pytest.mark.parametrize("hidden", [8, 32, 64])
def test_tiny_llm_and_compressor_start_at_the_relative_scale_of_real_ones(hidden):
    """Real LLMs' 0.02 is 0.6 / sqrt(width) at ~900 wide, TokenPacker's 0.02 is for a 1024-wide tower:
    tiny ones get the same scale relative to their widths, not the absolute 0.02 (which left them at
    the answer prior for hundreds of steps)."""
    from evaluation.modeling import COMPRESSOR_INIT_STD, REFERENCE_VISION_WIDTH
    from evaluation.tiny import TINY_INIT_SCALE, build_tiny_vlm

    model, _ = build_tiny_vlm(compressor="quecc", tokens=16, llm_hidden=hidden)
    assert model.config.text_config.initializer_range == pytest.approx(TINY_INIT_SCALE / hidden**0.5)
    attention = model.language_model.model.layers[0].self_attn.q_proj.weight
    assert attention.std().item() == pytest.approx(TINY_INIT_SCALE / hidden**0.5, rel=0.15)
    vision_width = model.config.vision_config.hidden_size
    expected = COMPRESSOR_INIT_STD * (REFERENCE_VISION_WIDTH / vision_width) ** 0.5  # 0.113 at 32 wide
    for layer in (model.compressor.projector[0], model.compressor.downsample, model.compressor.query_proj[0]):
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.15), layer
    assert REFERENCE_VISION_WIDTH == 1024 and COMPRESSOR_INIT_STD == 0.02  # a real tower keeps the recipe
