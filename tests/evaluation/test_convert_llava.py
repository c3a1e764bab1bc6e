"""``python -m evaluation convert-llava``: a QueCC checkpoint in the paper's code layout becomes a FrontierVLM.

The source folder is written as LLaVA's train.py leaves it: the LLM's config plus the mm_* keys, the LLM's
weights in two safetensors shards, QueCC + mlp2x_gelu under ``model.mm_projector.`` in ``mm_projector.bin``
(a torch pickle), a ``training_args.bin`` pickle that is not weights, and a tokenizer without ``<image>``.
The CLIP tower is a separate folder, as LLaVA downloads it. The converted checkpoint must validate as
QueCC, compute the reference's features, text feature and compressed tokens (tests/llava_reference.py),
and evaluate with the v1 conversation stamped.
"""

import json

import pytest
import torch
from llava_reference import LLM, write_llava_quecc

from evaluation.__main__ import main
from evaluation.loading import load_vlm
from evaluation.validation import validate_checkpoint_dir
from evaluation.vlm_spec import TINY_IMAGE_SIZE


@pytest.fixture(scope="module")
def llava_folders(tmp_path_factory):
    return write_llava_quecc(tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="module")
def converted(llava_folders):
    out = llava_folders["root"] / "frontier"
    main(["convert-llava", str(llava_folders["src"]), "--out", str(out), "--vision-tower",
          str(llava_folders["tower_dir"]), "--conversation", "v1"])
    return out


def test_the_converted_checkpoint_validates_as_quecc_with_its_conversation(converted):
    report = validate_checkpoint_dir(converted)
    assert (report.model_type, report.compressor_method, report.visual_tokens) == ("frontier_vlm", "quecc", 36)
    assert report.prompt_format["name"] == "llava_v1"
    config = json.loads((converted / "config.json").read_text())
    assert config["image_aspect_ratio"] == "pad" and config["compressor_layout"] == 2
    assert config["multi_level_layers"] == [12, 16, 22, 23] and config["conversation"] == "v1"


@torch.no_grad()
def test_features_text_feature_and_compressed_tokens_equal_the_reference_computation(llava_folders, converted):
    runner = load_vlm(converted)
    model, tower, llm = runner.model, llava_folders["tower"], llava_folders["llm"]
    pixels = torch.randn(2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, generator=torch.Generator().manual_seed(5))
    # The reference's feature_select: layer -2 and the concatenation of layers 12, 16, 22, 23, CLS dropped.
    hidden = tower(pixels, output_hidden_states=True).hidden_states
    patches = hidden[-2][:, 1:]
    multi = torch.cat([hidden[index] for index in (12, 16, 22, 23)], dim=2)[:, 1:]
    features = model.encode_images(pixels)
    assert torch.allclose(features.patch_feats, patches, atol=1e-6)
    assert torch.allclose(features.multi_level_feats, multi, atol=1e-6)
    # The reference's text feature: the LLM's last hidden state at the last token of the question.
    tokenizer = llava_folders["tokenizer"]
    question = tokenizer(["what color", "what color is it"], padding=False).input_ids
    texts = []
    for ids in question:
        out = llm.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1]
        texts.append(out[:, -1:])
    text = torch.cat(texts)
    query = torch.stack([model.query_embedding(torch.tensor([ids]))[0] for ids in question])
    assert torch.allclose(query, text, atol=1e-5)
    expected = llava_folders["projector"]((multi, text, patches))
    actual = model.compressor.compress(patches, multi, text)
    assert actual.shape == (2, 36, LLM)
    assert (actual - expected).abs().max().item() <= 1e-5


def test_prompts_are_the_v1_conversation(converted):
    runner = load_vlm(converted)
    assert runner.render("what color?") == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: <image>\nwhat color? ASSISTANT:"
    )
    assert runner.tokenizer.convert_tokens_to_ids("<image>") >= runner.model.config.text_config.vocab_size


def test_the_converted_checkpoint_evaluates_with_its_conversation_stamped(converted, synthetic_root):
    from evaluation.harness import evaluate_checkpoint

    outcome = evaluate_checkpoint(converted, ["shapes"], limit=4, synthetic_dir=synthetic_root, latency_samples=1)
    assert outcome.rows and all(0.0 <= row.value <= 1.0 for row in outcome.rows)
    assert outcome.stamp["prompt_format"]["name"] == "llava_v1"
    assert outcome.stamp["model_args"]["compressor"] == "quecc" and outcome.stamp["visual_tokens"] == 36
    assert outcome.stamp["image_preprocessing"]["aspect_ratio"] == "pad"


@pytest.mark.parametrize(
    ("change", "options", "message"),
    [
        ({}, ["--conversation", "v1"], "LLaVA does not save its frozen vision tower"),
        ({"mm_vision_token_compression_stride": 2}, ["--conversation", "v1", "--tower"], "kernel 4 and stride 2"),
        ({}, ["--tower"], "pass --conversation"),
        ({"mm_vision_token_compression_type": "pool"}, ["--tower", "--conversation", "v1"], "is not a layout"),
        ({"model_type": "llava_mpt"}, ["--tower", "--conversation", "v1"], "model_type 'llava_mpt'"),
    ],
)
def test_what_cannot_be_converted_is_named(llava_folders, tmp_path, capsys, change, options, message):
    src = tmp_path / "src"
    src.mkdir()
    for file in llava_folders["src"].iterdir():
        (src / file.name).symlink_to(file)
    config = json.loads((llava_folders["src"] / "config.json").read_text())
    (src / "config.json").unlink()
    (src / "config.json").write_text(json.dumps({**config, **change}))
    argv = ["convert-llava", str(src), "--out", str(tmp_path / "out")]
    for option in options:
        argv += ["--vision-tower", str(llava_folders["tower_dir"])] if option == "--tower" else [option]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert message in str(exit_info.value)
    assert not (tmp_path / "out").exists()
