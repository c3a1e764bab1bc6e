"""What config.json says the weights must be, checked against the safetensors headers: the model spec of a
``frontier_vlm`` (CLIP -> compressor -> LLM) or a llava-hf ``llava`` checkpoint, the tensors and shapes it
requires, its layer counts, and N, the compressor's and the vision encoder's parameters counted from the
headers. ``ModelCheck`` collects problems and warnings; ``evaluation.validation`` adds the file checks.
"""

import math
import re
from dataclasses import dataclass

from .safetensors_check import (
    SAFE_SAVE,
    TensorInfo,
)
from .vlm_spec import (
    COMPRESSOR_LAYOUTS,
    COMPRESSOR_METHODS,
    CONVERSATIONS,
    IMAGE_ASPECT_RATIOS,
    LEGACY_QUECC_KEY_VALUE,
    LLAVA_PROJECTOR_METHOD,
    MQT_DEFAULT_MAX_QUERIES,
    MULTI_LEVEL_LAYERS_VIT_L,
    REGION_COMPRESSORS,
    key_value_projections,
    square_region_token_counts,
)

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


class ModelCheck:
    """Collects every problem and warning of one checkpoint's config and weight headers."""

    def __init__(self):
        self.problems: list[str] = []
        self.warnings: list[str] = []

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
        if config.get("image_aspect_ratio", "crop") not in IMAGE_ASPECT_RATIOS:
            self.problems.append(f"image_aspect_ratio must be one of {', '.join(IMAGE_ASPECT_RATIOS)}, "
                                 f"got {config['image_aspect_ratio']!r}")
            return None
        layout = config.get("compressor_layout", 1)  # absent: saved before layouts had a number
        if layout not in COMPRESSOR_LAYOUTS:
            self.problems.append(f"compressor_layout must be one of {', '.join(map(str, COMPRESSOR_LAYOUTS))}, "
                                 f"got {layout!r}")
            return None
        if config.get("conversation") not in (None, *CONVERSATIONS):
            self.problems.append(f"conversation must be one of {', '.join(CONVERSATIONS)} or absent, "
                                 f"got {config['conversation']!r}")
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
        for name in key_value_projections(method, layout):
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


