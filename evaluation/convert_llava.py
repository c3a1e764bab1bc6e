"""Checkpoints of the LLaVA code base (the paper's QueCC, TokenPacker, LLaVA-1.5) as Frontier checkpoints.

``python -m evaluation convert-llava SRC --out DST [--vision-tower DIR] [--llm DIR] [--conversation NAME]``

SRC is a folder saved by LLaVA's ``train.py``: ``config.json`` (the LLM's config plus ``mm_projector_type``,
``mm_vision_tower``, ``mm_vision_select_layer``, ``mm_vision_token_compression_type`` with its
``..._kernel_size`` / ``..._stride`` (QueCC), ``scale_factor`` (TokenPacker), ``image_aspect_ratio``), the
weights as safetensors or ``.bin`` files and/or the pretraining stage's ``mm_projector.bin``, and the
tokenizer. ``.bin`` files are pickles: they are read here, on the machine of whoever converts, with
``torch.load(weights_only=True)``, and never by the web side, which accepts safetensors only. LLaVA
does not save the frozen CLIP tower: ``--vision-tower`` is its local folder (e.g. a download of
openai/clip-vit-large-patch14-336); ``--llm`` the base LLM's folder when SRC holds only the projector.
DST is an ordinary FrontierVLM folder (compressor layout 2, the reference's tensor names renamed by
``evaluation.reference_keys``) that uploads and evaluates like any other.
"""

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer, CLIPVisionModel

from .modeling import FrontierVLMConfig
from .reference_keys import LLAVA_PROJECTOR_PREFIX, from_reference_keys
from .vlm_spec import (
    COMPRESSOR_LAYOUT,
    CONVERSATIONS,
    IMAGE_TOKEN,
    MULTI_LEVEL_LAYERS_VIT_L,
)

LLM_MODEL_TYPES = {"llava_llama": "llama", "llava_qwen": "qwen2", "llava_qwen2": "qwen2", "llama": "llama",
                   "qwen2": "qwen2"}
# LLaVA's --version names (conv_templates keys) for the conversations Frontier renders.
CONVERSATION_ALIASES = {"v1": "v1", "vicuna_v1": "v1", "llava_v1": "v1", "qwen_1_5": "qwen_1_5", "qwen": "qwen_1_5",
                        "plain": "plain", "v0_plain": "plain"}
VISION_TOWER_PREFIX = "model.vision_tower.vision_tower."
REFERENCE_HEADS = 8  # both reference modules: nn.MultiheadAttention(1024, 8)


class ConversionError(ValueError):
    """SRC cannot become a Frontier checkpoint; the message says why and what to do."""


WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin", "mm_projector.bin")  # not training_args.bin


def read_tensors(folder: Path, names: tuple[str, ...] = WEIGHT_FILES) -> dict[str, torch.Tensor]:
    """Every tensor in the folder's weight files (.bin ones through torch.load(weights_only=True))."""
    tensors = {}
    for pattern in names:
        for file in sorted(folder.glob(pattern)):
            if file.suffix == ".safetensors":
                tensors.update(load_file(file))
            else:
                try:
                    loaded = torch.load(file, map_location="cpu", weights_only=True)
                except Exception as error:  # noqa: BLE001  (an unsafe or broken pickle: say which file)
                    raise ConversionError(f"{file}: not a plain tensor file ({error})") from error
                tensors.update({name: t for name, t in loaded.items() if isinstance(t, torch.Tensor)})
    return tensors


def read_json(file: Path, what: str) -> dict:
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise ConversionError(f"{file} is missing: {what}") from None
    except ValueError as error:
        raise ConversionError(f"{file} is not valid JSON ({error})") from None


def compressor_of(config: dict, grid_side: int) -> tuple[str, int]:
    """(Frontier method, V) of a LLaVA config."""
    kind = config.get("mm_vision_token_compression_type")
    projector = config.get("mm_projector_type", "linear")
    if kind == "quecc":
        kernel = config.get("mm_vision_token_compression_kernel_size", 4)
        stride = config.get("mm_vision_token_compression_stride", 4)
        if kernel != stride or grid_side % stride:
            raise ConversionError(
                f"QueCC with kernel {kernel} and stride {stride} on a {grid_side}x{grid_side} grid: Frontier's "
                "QueCC covers the grid with non-overlapping regions (kernel = stride, dividing the grid side)"
            )
        method, side = "quecc", stride
    elif kind is None and (projector == "tokenpacker" or "scale_factor" in config):
        method, side = "tokenpacker", config.get("scale_factor", 2)
    elif kind is None and projector == "mlp2x_gelu":
        method, side = "avgpool", 1  # LLaVA-1.5: every patch token, the MLP projector
    else:
        raise ConversionError(
            f"mm_vision_token_compression_type {kind!r} with mm_projector_type {projector!r} is not a layout Frontier "
            "converts: quecc (with mlp2x_gelu), TokenPacker (scale_factor) or LLaVA-1.5's mlp2x_gelu"
        )
    if method != "tokenpacker" and projector != "mlp2x_gelu":
        raise ConversionError(f"mm_projector_type {projector!r}: Frontier's projector is mlp2x_gelu")
    if grid_side % side:
        raise ConversionError(f"a {side}x{side} region does not tile the {grid_side}x{grid_side} patch grid")
    return method, (grid_side // side) ** 2


def conversation_of(config: dict, given: str | None) -> str:
    name = given or config.get("conversation") or config.get("conv_mode") or config.get("version")
    if name is None:
        raise ConversionError(
            "config.json does not say which conversation the model was trained with: pass --conversation "
            f"({', '.join(CONVERSATIONS)}; LLaVA's train.py --version argument)"
        )
    if name not in CONVERSATION_ALIASES:
        raise ConversionError(f"conversation {name!r} is not one Frontier renders; known: "
                              f"{', '.join(sorted(CONVERSATION_ALIASES))}")
    return CONVERSATION_ALIASES[name]


def vision_of(src: Path, tower: Path | None, tensors: dict) -> tuple[dict, dict, Path | None]:
    """(CLIP vision config, its weights named as CLIPVisionModel's, folder with preprocessor_config.json)."""
    if tower is None:
        raise ConversionError(
            "LLaVA does not save its frozen vision tower: download it (the config's mm_vision_tower, e.g. "
            "openai/clip-vit-large-patch14-336) and pass its folder with --vision-tower"
        )
    config = read_json(tower / "config.json", "--vision-tower must be a CLIP model folder saved by transformers")
    vision = config.get("vision_config", {}) if config.get("model_type") == "clip" else config
    if config.get("model_type") not in ("clip", "clip_vision_model"):
        raise ConversionError(f"{tower}: model_type {config.get('model_type')!r}; the vision tower must be CLIP")
    vision = AutoConfig.for_model("clip_vision_model", **{k: v for k, v in vision.items() if k != "model_type"})
    model = CLIPVisionModel(vision)
    own = set(model.state_dict())
    found = {
        name.removeprefix(VISION_TOWER_PREFIX): t for name, t in tensors.items() if name.startswith(VISION_TOWER_PREFIX)
    }
    # CLIPModel and older transformers name them vision_model.*; transformers 5's CLIPVisionModel without it.
    weights = {name.removeprefix("vision_model."): t for name, t in (found or read_tensors(tower)).items()}
    weights = {name: t for name, t in weights.items() if name in own}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise ConversionError(f"the vision tower's weights do not fit its config.json: {error}") from None
    processor = tower if (tower / "preprocessor_config.json").is_file() else None
    if processor is None and (src / "preprocessor_config.json").is_file():
        processor = src
    return vision.to_dict(), weights, processor


def text_config_of(config: dict) -> dict:
    family = LLM_MODEL_TYPES.get(config.get("model_type"))
    if family is None:
        raise ConversionError(f"model_type {config.get('model_type')!r}: Frontier converts LLaVA checkpoints "
                              f"of {', '.join(sorted(LLM_MODEL_TYPES))}")
    known = set(AutoConfig.for_model(family).to_dict()) - {"architectures", "_name_or_path", "transformers_version"}
    return {**{key: value for key, value in config.items() if key in known}, "model_type": family}


def llm_tensors(tensors: dict) -> dict:
    """The LLM's tensors (LLaVA keeps the causal LM's own names) under FrontierVLM's language_model."""
    multimodal = (LLAVA_PROJECTOR_PREFIX, "model.vision_tower.")
    return {
        f"language_model.{name}": tensor for name, tensor in tensors.items()
        if name.startswith(("model.", "lm_head.")) and not name.startswith(multimodal)
    }


def convert_llava(src, out, vision_tower=None, llm=None, conversation: str | None = None) -> Path:
    """Write the Frontier checkpoint of SRC into ``out`` and return its path."""
    src, out = Path(src), Path(out)
    config = read_json(src / "config.json", "SRC must be a folder saved by LLaVA's train.py")
    if out.exists() and any(out.iterdir()):
        raise ConversionError(f"{out} exists and is not empty: choose a new --out folder")
    if config.get("mm_vision_select_feature", "patch") != "patch":
        raise ConversionError("mm_vision_select_feature must be 'patch' (the CLS token dropped), as Frontier reads it")
    aspect = config.get("image_aspect_ratio") or "crop"
    if aspect not in ("pad", "crop", "square", "resize"):
        raise ConversionError(f"image_aspect_ratio {aspect!r}: Frontier evaluates 'pad' or CLIP's resize and crop")
    name = conversation_of(config, conversation)
    tensors = read_tensors(src)
    vision, vision_weights, processor = vision_of(src, Path(vision_tower) if vision_tower else None, tensors)
    grid_side = vision["image_size"] // vision["patch_size"]
    method, tokens = compressor_of(config, grid_side)
    if method != "avgpool" and vision["num_hidden_layers"] < max(MULTI_LEVEL_LAYERS_VIT_L):
        raise ConversionError(f"the reference {method} reads CLIP layers {MULTI_LEVEL_LAYERS_VIT_L}; the vision "
                              f"tower has {vision['num_hidden_layers']}")
    language = llm_tensors(tensors)
    if not language:
        if llm is None:
            raise ConversionError(f"{src} holds only the projector (LLaVA's pretraining stage): pass the base LLM's "
                                  "folder with --llm")
        language = llm_tensors(read_tensors(Path(llm)))
    tokenizer_dir = src if any(src.glob("tokenizer*")) else Path(llm) if llm else src
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    except (OSError, ValueError, ImportError) as error:
        raise ConversionError(
            f"{tokenizer_dir}: no tokenizer Frontier can read ({error}); save it with "
            "AutoTokenizer.from_pretrained(...).save_pretrained(...) to write tokenizer.json"
        ) from None
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)  # its embedding is never read (FrontierVLM)
    frontier = FrontierVLMConfig(
        vision_config=vision, text_config=text_config_of(config), compressor_method=method, visual_tokens=tokens,
        compressor_params={} if method == "avgpool" else {"num_heads": REFERENCE_HEADS},
        vision_feature_layer=config.get("mm_vision_select_layer", -2),
        multi_level_layers=list(MULTI_LEVEL_LAYERS_VIT_L), image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_aspect_ratio="pad" if aspect == "pad" else "crop", conversation=name, compressor_layout=COMPRESSOR_LAYOUT,
    )
    weights = {
        **language,
        **{f"vision_tower.{name}": t for name, t in vision_weights.items()},
        **from_reference_keys(method, tensors),
    }
    out.mkdir(parents=True, exist_ok=True)
    from huggingface_hub import save_torch_state_dict

    save_torch_state_dict({name: t.contiguous() for name, t in weights.items()}, out, max_shard_size="5GB")
    frontier.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if processor is not None:
        shutil.copy(processor / "preprocessor_config.json", out / "preprocessor_config.json")
    return out
