"""FrontierVLM: CLIP vision encoder -> visual-token compressor -> causal LLM, LLaVA-style.

The checkpoint folder is the ordinary transformers layout: ``config.json`` (this config, with the
vision and text sub-configs), ``model.safetensors`` (or shards + ``model.safetensors.index.json``),
tokenizer files and ``preprocessor_config.json``. Importing this module registers the config and
model with ``AutoConfig`` / ``AutoModel`` / ``AutoModelForImageTextToText``.

Prompts carry the image as V consecutive ``<image>`` tokens (V = ``config.visual_tokens``); the
model scatters the compressed visual tokens into those positions, as llava-hf does.
"""

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.configuration_utils import SubConfigSpec

from .compressors import MatryoshkaQueryTransformer, build_compressor, check_tokens
from .flops import count_parameters
from .vlm_spec import IMAGE_TOKEN  # noqa: F401  (loading and tiny import it from here)
from .vlm_spec import (
    CONVERSATIONS,
    IMAGE_ASPECT_RATIOS,
    LEGACY_QUECC_KEY_VALUE,
    MULTI_LEVEL_LAYERS_VIT_L,
    check_layout,
)
from .vlm_spec import COMPRESSOR_LAYOUT as CURRENT_COMPRESSOR_LAYOUT

CLIP_VIT_L14_336 = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
}
COMPRESSOR_INIT_STD = 0.02  # TokenPacker's and LLaVA's projector init, at the reference vision width
REFERENCE_VISION_WIDTH = CLIP_VIT_L14_336["hidden_size"]


class FrontierVLMConfig(PreTrainedConfig):
    """Vision encoder config, compressor (method, V = ``visual_tokens``, method parameters), LLM config.

    ``vision_feature_layer`` selects the patch features (layer -2 as in LLaVA-1.5);
    ``multi_level_layers`` are the hidden-state indices concatenated for TokenPacker / QueCC keys.
    An unsupported ``visual_tokens`` for the method raises ValueError here, at config time.
    """

    model_type = "frontier_vlm"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(
            config_class=AutoConfig, model_type="clip_vision_model", init_kwargs=CLIP_VIT_L14_336
        ),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    compressor_method: str = "avgpool"
    visual_tokens: int = 576
    compressor_params: dict | None = None
    vision_feature_layer: int = -2
    multi_level_layers: list[int] | None = None
    image_token_id: int | None = None
    image_aspect_ratio: str = "crop"  # "pad": to a square in the image mean first (LLaVA-1.5's "pad")
    # A named LLaVA conversation (evaluation.prompts: v1, qwen_1_5, plain), or None: Frontier's own
    # "<image>\n" + prompt, or the chat template saved with the tokenizer.
    conversation: str | None = None
    # evaluation.vlm_spec.COMPRESSOR_LAYOUTS; a config.json without it is layout 1 (``from_dict``)
    compressor_layout: int = CURRENT_COMPRESSOR_LAYOUT

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        if "compressor_layout" not in config_dict:  # saved before layouts had a number
            config_dict = {**config_dict, "compressor_layout": 1}
        return super().from_dict(config_dict, **kwargs)

    def to_diff_dict(self) -> dict:
        """Always written, so that a checkpoint keeps its layout when the current one changes."""
        return {**super().to_diff_dict(), "compressor_layout": self.compressor_layout}

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        check_layout(self.compressor_layout)
        if self.conversation is not None and self.conversation not in CONVERSATIONS:
            raise ValueError(f"conversation must be one of {', '.join(CONVERSATIONS)} or absent, "
                             f"got {self.conversation!r}")
        if self.image_aspect_ratio not in IMAGE_ASPECT_RATIOS:
            raise ValueError(f"image_aspect_ratio must be one of {', '.join(IMAGE_ASPECT_RATIOS)}, "
                             f"got {self.image_aspect_ratio!r}")
        if self.compressor_params is None:
            self.compressor_params = {}
        if self.multi_level_layers is None:
            self.multi_level_layers = list(MULTI_LEVEL_LAYERS_VIT_L)
        if self.vision_config.model_type != "clip_vision_model":
            # Patch selection drops a leading CLS token and PruMerge reads CLIP's last attention layer.
            raise ValueError(f"the vision encoder must be a CLIP vision model, got {self.vision_config.model_type!r}")
        check_tokens(self.compressor_method, self.visual_tokens, self.patch_grid_side, **self.compressor_params)

    @property
    def patch_grid_side(self) -> int:
        return self.vision_config.image_size // self.vision_config.patch_size


@dataclass
class VisionFeatures:
    """What the vision encoder hands to a compressor (shapes: B images, N patches, width C)."""

    patch_feats: torch.Tensor  # (B, N, C), layer `vision_feature_layer`, CLS dropped
    multi_level_feats: torch.Tensor  # (B, N, len(multi_level_layers) * C)
    cls_attention: torch.Tensor | None = None  # (B, N), last layer, one head; PruMerge only
    patch_keys: torch.Tensor | None = None  # (B, N, C), last layer keys; PruMerge only

    def cpu_tensors(self) -> dict[str, torch.Tensor]:
        """The fields that are set, on the CPU, by name (what a feature cache stores)."""
        return {
            field.name: getattr(self, field.name).cpu()
            for field in dataclasses.fields(self)
            if getattr(self, field.name) is not None
        }


class FrontierVLM(PreTrainedModel):
    config: FrontierVLMConfig
    input_modalities = ("image", "text")
    feature_cache = None  # an evaluation.feature_cache.FeatureCache, attached by whoever runs the model
    _supports_sdpa = True

    def __init__(self, config: FrontierVLMConfig):
        super().__init__(config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.vision_tower.requires_grad_(False)  # frozen in every compressor's recipe
        vision_width = config.vision_config.hidden_size
        self.compressor = build_compressor(
            config.compressor_method,
            config.visual_tokens,
            vision_width=vision_width,
            multi_level_width=vision_width * len(config.multi_level_layers),
            llm_width=config.text_config.hidden_size,
            grid_side=config.patch_grid_side,
            layout=config.compressor_layout,
            **config.compressor_params,
        )
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    def _init_weights(self, module):
        """Compressor init (TokenPacker's recipe): truncated normal weights, zero biases. The recipe's std
        0.02 is for CLIP ViT-L's width 1024; a narrower tower keeps the same scale relative to its width,
        0.02 * sqrt(1024 / C) (0.113 for the tiny 32-wide tower), as ``evaluation.tiny`` does for the LLM:
        at 0.02 a 32-wide QueCC passes almost nothing from the image to the LLM at first and trains slowly."""
        std = COMPRESSOR_INIT_STD * (REFERENCE_VISION_WIDTH / self.config.vision_config.hidden_size) ** 0.5
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, MatryoshkaQueryTransformer):
            init.trunc_normal_(module.queries, std=std)
        else:
            super()._init_weights(module)

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    @property
    def visual_tokens(self) -> int:
        return self.compressor.tokens

    @property
    def llm_param_count(self) -> int:
        """N: every parameter of the LLM (embeddings and LM head included, tied ones once)."""
        return count_parameters(self.language_model)

    @property
    def compressor_param_count(self) -> int:
        return self.compressor.parameter_count

    @torch.no_grad()
    def encode_images(self, pixel_values: torch.Tensor) -> VisionFeatures:
        """Run the frozen vision encoder and pick the features the compressor reads; with a
        ``feature_cache`` attached (an ``evaluation.feature_cache.FeatureCache``) the features of
        pixels this tower has seen are read from it, e.g. while a sweep's checkpoints are evaluated."""
        if self.feature_cache is None:
            return self._encode_images(pixel_values)
        precision = f"{self.vision_tower.dtype}|autocast={torch.is_autocast_enabled(pixel_values.device.type)}"
        key = self.feature_cache.key(self, [pixel_values], pixel_values.device.type, precision)

        features, _ = self.feature_cache.get_or_compute(key, lambda: self._encode_images(pixel_values).cpu_tensors())
        return VisionFeatures(**{name: tensor.to(pixel_values.device) for name, tensor in features.items()})

    def _encode_images(self, pixel_values: torch.Tensor) -> VisionFeatures:
        hidden_states = self.vision_tower(
            pixel_values.to(self.vision_tower.dtype), output_hidden_states=True
        ).hidden_states
        features = VisionFeatures(
            patch_feats=hidden_states[self.config.vision_feature_layer][:, 1:],
            multi_level_feats=torch.cat([hidden_states[index][:, 1:] for index in self.config.multi_level_layers], -1),
        )
        if self.compressor.uses_cls_attention:
            features.cls_attention, features.patch_keys = self._last_layer_cls_attention(hidden_states[-2])
        return features

    def _last_layer_cls_attention(self, last_layer_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CLS-to-patch attention of the last encoder layer, recomputed from its q/k as a single head."""
        layer = self.vision_tower.encoder.layers[-1]
        normed = layer.layer_norm1(last_layer_input)
        queries, keys = layer.self_attn.q_proj(normed), layer.self_attn.k_proj(normed)
        scores = queries[:, :1] @ keys.transpose(1, 2) * keys.shape[-1] ** -0.5
        return scores.softmax(dim=-1)[:, 0, 1:], keys[:, 1:]

    @torch.no_grad()
    def query_embedding(self, query_input_ids: torch.Tensor, query_attention_mask: torch.Tensor | None = None):
        """QueCC's query: last-layer LLM hidden state at the last non-pad token of the text-only question.

        Returns (B, 1, D). Compute it once and pass it as ``query_embeds`` when the question is fixed.
        """
        if query_attention_mask is None:
            query_attention_mask = torch.ones_like(query_input_ids)
        hidden = self.language_model.base_model(
            input_ids=query_input_ids, attention_mask=query_attention_mask
        ).last_hidden_state
        positions = torch.arange(query_input_ids.shape[1], device=query_input_ids.device)
        last_token = (query_attention_mask * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token][:, None]

    def image_embeddings(self, pixel_values: torch.Tensor, query_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, H, W) images -> (B, V, D) visual tokens in the LLM's embedding space."""
        features = self.encode_images(pixel_values)
        return self.compressor.compress(
            features.patch_feats.to(self.dtype),
            features.multi_level_feats.to(self.dtype),
            query_embeds,
            cls_attention=features.cls_attention,
            patch_keys=features.patch_keys,
        )

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        query_input_ids: torch.Tensor | None = None,
        query_attention_mask: torch.Tensor | None = None,
        query_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with each sequence's V ``<image>`` placeholders replaced by its visual tokens.

        The placeholder's own embedding is never read (its id may lie past the LLM's vocabulary, as in
        a converted LLaVA checkpoint whose tokenizer gained ``<image>``)."""
        image_mask = input_ids == self.config.image_token_id
        embeds = self.get_input_embeddings()(input_ids.masked_fill(image_mask, 0))
        if pixel_values is None:
            return embeds
        if self.compressor.uses_query and query_embeds is None:
            if query_input_ids is None:
                raise ValueError(f"{self.config.compressor_method} needs query_input_ids or query_embeds")
            query_embeds = self.query_embedding(query_input_ids, query_attention_mask)
        placeholders = image_mask.sum(dim=1)
        if (placeholders != self.visual_tokens).any():
            raise ValueError(
                f"every sequence needs exactly V={self.visual_tokens} image tokens "
                f"(id {self.config.image_token_id}), got {placeholders.tolist()}"
            )
        visual = self.image_embeddings(pixel_values, query_embeds).to(embeds.dtype)
        return embeds.masked_scatter(image_mask[..., None], visual)

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        query_input_ids: torch.Tensor | None = None,
        query_attention_mask: torch.Tensor | None = None,
        query_embeds: torch.Tensor | None = None,
        **llm_kwargs,
    ):
        """The LLM's causal-LM output on the spliced embeddings (labels at image positions should be -100)."""
        inputs_embeds = self.embed_inputs(input_ids, pixel_values, query_input_ids, query_attention_mask, query_embeds)
        return self.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **llm_kwargs
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        query_input_ids: torch.Tensor | None = None,
        query_attention_mask: torch.Tensor | None = None,
        query_embeds: torch.Tensor | None = None,
        **generation_kwargs,
    ) -> torch.Tensor:
        """Generate with the LLM from the spliced embeddings; returns only the new token ids (B, G)."""
        inputs_embeds = self.embed_inputs(input_ids, pixel_values, query_input_ids, query_attention_mask, query_embeds)
        return self.language_model.generate(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, **generation_kwargs
        )


class IncompleteWeights(ValueError):
    """The checkpoint's weights do not cover the model its config describes."""


MISSING_SHOWN = 5


def from_pretrained_complete(model_class: type[PreTrainedModel], path, **kwargs) -> PreTrainedModel:
    """``model_class.from_pretrained`` that refuses weights it would otherwise fill with a random init.

    transformers only logs missing or mis-shaped tensors and initializes them afresh: a model scored
    that way is a different model. Tied weights (an LM head tied to the embeddings) are not missing."""
    model, info = model_class.from_pretrained(path, use_safetensors=True, output_loading_info=True, **kwargs)
    missing, mismatched = sorted(info["missing_keys"]), sorted(str(key) for key in info["mismatched_keys"])
    if not missing and not mismatched:
        return model
    problems = []
    if missing:
        more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        problems.append(f"{len(missing)} weights are missing ({', '.join(missing[:MISSING_SHOWN])}{more})")
    if mismatched:
        shown = ", ".join(mismatched[:MISSING_SHOWN])
        problems.append(f"{len(mismatched)} weights have another shape than config.json says ({shown})")
    hint = "save the model with save_pretrained(dir, safe_serialization=True) and upload that folder"
    if LEGACY_QUECC_KEY_VALUE.removeprefix("compressor.") in " ".join(info["unexpected_keys"]):
        hint = (
            "it holds QueCC's shared key/value MLP (compressor.key_value_proj), which Frontier used until 2026-12; "
            "QueCC now has separate key_proj and value_proj MLPs, as the paper's code: train it again with this version"
        )
    raise IncompleteWeights(f"{path}: {'; '.join(problems)}: {hint}")


AutoConfig.register(FrontierVLMConfig.model_type, FrontierVLMConfig)
AutoModel.register(FrontierVLMConfig, FrontierVLM)
AutoModelForImageTextToText.register(FrontierVLMConfig, FrontierVLM)
