"""Tiny random-init FrontierVLM checkpoints for tests and the demo (no download, < 5 MB).

The tiny CLIP keeps the 24 x 24 patch grid of ViT-L/14-336 (96-px images, 4-px patches), so every
V and region size of the real models holds; widths are small. Its random weights are calibrated on a
few synthetic images (``calibrate_vision_tower``) so that its features carry the image, not a constant
offset. The tokenizer is a WordPiece model
built in code: whole common words, single characters with ``##`` continuations (so any lowercase
text encodes without <unk>), digits, punctuation and the special tokens incl. ``<image>``.
Prompts are plain text (no chat template): ``"<image>\\nquestion: ... answer:"``.

The tiny LLM is initialised at the scale real LLMs are, relative to their width: transformers' default
``initializer_range`` 0.02 is 0.6 / sqrt(width) at Qwen2-0.5B's 896 (GPT-2's 768: 0.55), so a d-wide tiny
LLM gets 0.6 / sqrt(d) (``TINY_INIT_SCALE``). At 0.02 a 16-64-wide LLM starts with almost no signal from
its inputs to its logits and sits at the answer prior for hundreds of steps, so what a short run
learns is luck (README, "Initial scale": runs ending at chance, accuracy not ordered by N or V).
"""

import string
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import CLIPImageProcessorPil, CLIPVisionModel, PreTrainedTokenizerFast

from .modeling import IMAGE_TOKEN, FrontierVLM, FrontierVLMConfig
from .synthetic import synthetic_examples
from .vlm_spec import LLM_FAMILIES, TINY_IMAGE_SIZE, TINY_MULTI_LEVEL_LAYERS, TINY_VISION

PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN)
COMMON_WORDS = """
the a an is are was be of and or not no yes to in on at by for with from as it this that these those there
what which who where when how why many much does do can image picture photo shown show question answer
left right top bottom middle center above below behind front next number count total text word letter
color shape size object objects person people man woman dog cat car bus tree sky red green blue yellow
black white orange purple brown gray pink large small big one two three four five six seven eight nine ten
zero square circle triangle line dot
""".split()

CALIBRATION_IMAGES_PER_TASK = 16  # from a "calibration" split, disjoint from train and test
CALIBRATION_TASKS = ("shapes", "glyphs")  # the tasks the tower was first calibrated on: the same tower since
TINY_INIT_SCALE = 0.6  # initializer_range = TINY_INIT_SCALE / sqrt(hidden), the relative scale of real LLMs


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A deterministic ~200-token WordPiece tokenizer that can encode any lowercase ASCII text."""
    characters = string.ascii_lowercase + string.digits
    pieces = [*SPECIAL_TOKENS, *string.punctuation, *characters, *(f"##{c}" for c in characters), *COMMON_WORDS]
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token=UNK_TOKEN, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        extra_special_tokens=[IMAGE_TOKEN],
        padding_side="left",
    )


def tiny_text_config(family: str, vocab_size: int, hidden: int, layers: int, token_ids: dict) -> dict:
    if family not in LLM_FAMILIES:
        raise ValueError(f"unknown LLM family {family!r}; choose one of {', '.join(LLM_FAMILIES)}")
    return {
        "model_type": family,
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": family == "qwen2",  # small Qwen models tie their embeddings
        "initializer_range": TINY_INIT_SCALE / hidden**0.5,
        **token_ids,
    }


def tiny_image_processor() -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil(
        size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    )


@torch.no_grad()
def calibrate_vision_tower(tower: CLIPVisionModel, pixel_values: torch.Tensor) -> None:
    """Data-dependent init of a random CLIP (as LSUV does for CNNs), in one forward pass over ``pixel_values``.

    Random CLIP weights send every plain-background patch to almost the same vector, so the patch
    features share an offset several times larger than anything that differs between patches or
    images; a compressor trained on them learns the answer prior but not the image. Here the
    pre-encoder LayerNorm is rescaled so the embeddings have zero mean and unit variance per channel
    over the images' patches, and each encoder layer's last bias is shifted so its output has zero
    mean. Only existing weights change: the tower stays an ordinary ``CLIPVisionModel``.
    """

    def standardize(norm, inputs, output):
        patches = output[:, 1:].flatten(0, 1)
        mean, std = patches.mean(0), patches.std(0)
        norm.weight.div_(std)
        norm.bias.sub_(mean).div_(std)
        return (output - mean) / std  # what the rescaled LayerNorm gives, so later layers see it

    def centre(layer, inputs, output):
        mean = output[:, 1:].flatten(0, 1).mean(0)
        layer.mlp.fc2.bias.sub_(mean)  # the bias is added to every token: the output moves by -mean
        return output - mean

    hooks = [tower.pre_layrnorm.register_forward_hook(standardize)]
    hooks += [layer.register_forward_hook(centre) for layer in tower.encoder.layers]
    try:
        tower(pixel_values.to(tower.dtype))
    finally:
        for hook in hooks:
            hook.remove()


def calibration_pixels() -> torch.Tensor:
    """Preprocessed images of every synthetic task's calibration split (the same for every model)."""
    images = [
        example.image
        for task in CALIBRATION_TASKS
        for example in synthetic_examples(task, "calibration", count=CALIBRATION_IMAGES_PER_TASK)
    ]
    return tiny_image_processor()(images=images, return_tensors="pt")["pixel_values"]


def build_tiny_vlm(
    compressor: str = "quecc",
    tokens: int = 16,
    llm_hidden: int = 64,
    llm_layers: int = 2,
    llm_family: str = "qwen2",
    seed: int = 0,
) -> tuple[FrontierVLM, PreTrainedTokenizerFast]:
    """A random-init tiny FrontierVLM (calibrated vision tower) and its tokenizer; same seed, same weights."""
    tokenizer = build_tiny_tokenizer()
    token_ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    config = FrontierVLMConfig(
        vision_config=TINY_VISION,
        text_config=tiny_text_config(llm_family, len(tokenizer), llm_hidden, llm_layers, token_ids),
        compressor_method=compressor,
        visual_tokens=tokens,
        multi_level_layers=TINY_MULTI_LEVEL_LAYERS,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
    )
    torch.manual_seed(seed)
    model = FrontierVLM(config)
    calibrate_vision_tower(model.vision_tower, calibration_pixels())
    return model, tokenizer


def make_tiny_checkpoint(out: str | Path, **tiny_options) -> Path:
    """Write a tiny checkpoint folder: config, safetensors weights, tokenizer, image processor.

    ``tiny_options`` are those of ``build_tiny_vlm`` (compressor, tokens, llm_hidden, ...).
    """
    model, tokenizer = build_tiny_vlm(**tiny_options)
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tiny_image_processor().save_pretrained(out)
    return out
