"""Images prepared as the model was trained: a FrontierVLM whose config says ``image_aspect_ratio: pad`` gets
each image padded to a square in the processor's mean colour before CLIP's resize and crop (LLaVA-1.5's
``expand2square``), in evaluation and in training from it; the stamp says which preprocessing ran."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.loading import load_vlm, preprocessing_stamp
from evaluation.modeling import FrontierVLMConfig
from evaluation.tiny import make_tiny_checkpoint, tiny_image_processor
from evaluation.training import TrainingConfig, build_model


def expand_to_square(image: Image.Image, background) -> Image.Image:
    """LLaVA-1.5's padding, as its code states it: a square of the longer side in the background colour, the
    image pasted at the centre (offsets rounded down)."""
    width, height = image.size
    side = max(width, height)
    square = Image.new(image.mode, (side, side), background)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


@pytest.fixture(scope="module")
def padded_checkpoint(tmp_path_factory):
    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("pad") / "ckpt", compressor="avgpool", tokens=4)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "image_aspect_ratio": "pad"}))
    return folder


def pixels(runner, image):
    return runner._model_inputs([image], ["what shape is this?"])["pixel_values"][0]


@pytest.mark.parametrize("size", [(120, 48), (40, 130), (96, 96), (97, 10)])
def test_pad_pads_to_a_square_in_the_mean_colour_before_clip_preprocessing(padded_checkpoint, size):
    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    runner = load_vlm(padded_checkpoint)
    clip = tiny_image_processor()
    background = tuple(int(value * 255) for value in clip.image_mean)
    expected = clip(images=[expand_to_square(image, background)], return_tensors="pt")["pixel_values"][0]
    assert torch.allclose(pixels(runner, image), expected, atol=1e-6)
    if size[0] != size[1]:  # cropping the same image gives other pixels
        cropped = clip(images=[image], return_tensors="pt")["pixel_values"][0]
        assert not torch.allclose(pixels(runner, image), cropped, atol=1e-3)
    assert preprocessing_stamp(runner.image_processor)["aspect_ratio"] == "pad"


def test_crop_stays_the_default_and_a_bad_value_is_refused(tmp_path):
    runner = load_vlm(make_tiny_checkpoint(tmp_path / "crop", compressor="avgpool", tokens=4))
    image = Image.new("RGB", (120, 48), (200, 10, 10))
    expected = tiny_image_processor()(images=[image], return_tensors="pt")["pixel_values"][0]
    assert torch.allclose(pixels(runner, image), expected) and preprocessing_stamp(runner.image_processor) == {
        "aspect_ratio": "crop", "processor": "CLIPImageProcessorPil", "size": {"shortest_edge": 96},
        "crop_size": {"height": 96, "width": 96}, "image_mean": list(tiny_image_processor().image_mean)}
    with pytest.raises(ValueError, match="image_aspect_ratio must be one of crop, pad, got 'square'"):
        FrontierVLMConfig(image_aspect_ratio="square")


def test_training_from_a_padded_base_prepares_images_as_its_evaluation_does(padded_checkpoint):
    config = TrainingConfig(compressor="avgpool", tokens=4, stage=1, base_checkpoint=str(padded_checkpoint),
                            max_steps=1)
    _, _, image_processor = build_model(config)
    image = Image.new("RGB", (120, 48), (10, 200, 10))
    trained = image_processor(images=[image], return_tensors="pt")["pixel_values"][0]
    assert torch.allclose(trained, pixels(load_vlm(padded_checkpoint), image), atol=1e-6)


def test_validation_accepts_pad_and_refuses_an_unknown_aspect_ratio(padded_checkpoint, tmp_path):
    import shutil

    from evaluation.validation import CheckpointInvalid, validate_checkpoint_dir

    assert validate_checkpoint_dir(padded_checkpoint).model_type == "frontier_vlm"
    bad = shutil.copytree(padded_checkpoint, tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "image_aspect_ratio": "square"}))
    with pytest.raises(CheckpointInvalid) as refused:
        validate_checkpoint_dir(bad)
    assert "image_aspect_ratio must be one of crop, pad, got 'square'" in refused.value.problems
