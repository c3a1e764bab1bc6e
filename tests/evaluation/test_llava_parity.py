"""A llava-hf checkpoint is scored exactly as transformers' own pipeline runs it: ``AutoProcessor`` with the
checkpoint's chat template, ``LlavaForConditionalGeneration.generate`` (greedy), and the summed
log-probability of an answer. The reference is transformers' code; Frontier's runner renders, tokenizes,
expands the image token, preprocesses and pads on its own."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

from evaluation.loading import load_vlm
from evaluation.prompts import CHAT_TEMPLATE, PLAIN
from evaluation.tiny import build_tiny_tokenizer, tiny_image_processor, tiny_text_config
from evaluation.validation import validate_checkpoint_dir
from evaluation.vlm_spec import TINY_VISION

# A LLaVA-1.5-style conversation (the tiny tokenizer is lowercase): the image and the question in the user
# turn, then the assistant's turn opened.
TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}user: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% else %}{{ item['text'] }}"
    "{% endif %}{% endfor %} {% else %}assistant: {{ message['content'][0]['text'] }} {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
QUESTIONS = ["what shape is this?", "is the square red?", "how many circles are there?", "name the color",
             "what is in the image? answer with one word.", "is it a triangle or a circle?", "count the spots",
             "which side is the shape on?"]
SIZES = [(96, 96), (40, 60), (150, 100), (64, 200), (300, 300), (97, 33), (120, 121), (10, 250)]


def build(folder, with_template: bool = True):
    tokenizer = build_tiny_tokenizer()
    config = LlavaConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config("llama", len(tokenizer), 32, 2, {"pad_token_id": tokenizer.pad_token_id,
                                                                   "eos_token_id": tokenizer.eos_token_id}),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor = LlavaProcessor(
        image_processor=tiny_image_processor(), tokenizer=tokenizer, patch_size=TINY_VISION["patch_size"],
        vision_feature_select_strategy=config.vision_feature_select_strategy, num_additional_image_tokens=1,
        chat_template=TEMPLATE if with_template else None,
    )
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llava_folder(tmp_path_factory):
    return build(tmp_path_factory.mktemp("llava-hf"))


def items(count: int = 32):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in
              (SIZES[index % len(SIZES)] for index in range(count))]
    return images, [QUESTIONS[index % len(QUESTIONS)] for index in range(count)]


def reference_processor(folder):
    processor = AutoProcessor.from_pretrained(folder)
    processor.tokenizer.padding_side = "left"
    return processor


def rendered(processor, question: str) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def test_generation_equals_transformers_greedy_generate_token_for_token(llava_folder):
    runner = load_vlm(llava_folder)
    assert runner.prompt_format.name == CHAT_TEMPLATE
    processor = reference_processor(llava_folder)
    model = LlavaForConditionalGeneration.from_pretrained(llava_folder).eval()
    images, questions = items()
    compared, first = 0, 0
    for size in (1, 3, 8, 20):  # mixed batch sizes over 32 items of mixed image sizes
        batch_images, batch_questions = images[first:first + size], questions[first:first + size]
        first += size
        inputs = processor(text=[rendered(processor, q) for q in batch_questions], images=batch_images,
                           padding=True, return_tensors="pt")
        with torch.no_grad():
            reference = model.generate(**inputs, do_sample=False, max_new_tokens=6, min_new_tokens=6,
                                       pad_token_id=processor.tokenizer.pad_token_id,
                                       eos_token_id=processor.tokenizer.eos_token_id)
        reference = reference[:, inputs["input_ids"].shape[1]:]
        ours = runner.generate_ids(batch_images, batch_questions, max_new_tokens=6, min_new_tokens=6)
        assert ours.tolist() == reference.tolist()
        compared += size
    assert compared == 32


def test_answer_log_probabilities_equal_the_references_summed_log_probabilities(llava_folder):
    runner = load_vlm(llava_folder)
    processor = reference_processor(llava_folder)
    model = LlavaForConditionalGeneration.from_pretrained(llava_folder).eval()
    images, questions = items(12)
    answers = [" yes", " red square", " 3", " a circle"] * 3
    ours = runner.continuation_scores(images, questions, answers)  # one batch: mixed lengths, right padding
    for image, question, answer, (log_probability, _) in zip(images, questions, answers, ours, strict=True):
        context = processor(text=[rendered(processor, question)], images=[image], return_tensors="pt")
        full = processor(text=[rendered(processor, question) + answer], images=[image], return_tensors="pt")
        start = context["input_ids"].shape[1]
        with torch.no_grad():
            log_probs = model(**full).logits.float().log_softmax(dim=-1)[0]
        targets = full["input_ids"][0, start:]
        expected = log_probs[start - 1:-1].gather(-1, targets[:, None]).sum().item()
        assert len(targets) > 0 and log_probability == pytest.approx(expected, abs=1e-4)


def test_the_format_is_stamped_and_a_checkpoint_without_a_template_is_warned_at_validation(llava_folder, tmp_path):
    runner = load_vlm(llava_folder)
    stamp = runner.prompt_format.stamp()
    assert stamp["name"] == CHAT_TEMPLATE and stamp["source"] == "chat_template.jinja"
    assert len(stamp["template_sha256"]) == 64
    assert runner.render("what shape is this?") == "user: <image>\nwhat shape is this? assistant:"
    assert not any("chat template" in warning for warning in validate_checkpoint_dir(llava_folder).warnings)

    bare = build(tmp_path / "bare", with_template=False)
    assert load_vlm(bare).prompt_format.name == PLAIN
    warnings = validate_checkpoint_dir(bare).warnings
    assert any("no chat template" in warning and "processor.save_pretrained" in warning for warning in warnings)
