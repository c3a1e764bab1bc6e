"""Visual-token compressors: map the 576 CLIP patch tokens of one image to V tokens of LLM width.

Every compressor has the same interface::

    compressor.compress(patch_feats, multi_level_feats, query_emb) -> (B, V, D)

``patch_feats`` are the layer -2 patch tokens (B, N, C) of an N = g x g patch grid (g = 24 for
CLIP ViT-L/14-336), ``multi_level_feats`` the concatenation of several encoder layers (B, N, L*C),
``query_emb`` the LLM hidden state of the user's question (B, 1, D), used by QueCC only.
PruMerge additionally needs the last CLIP layer's CLS-to-patch attention and patch keys, passed as
the keyword arguments ``cls_attention`` (B, N) and ``patch_keys`` (B, N, C).

Widths follow the vision width C: the real models use C = 1024 and multi-level width 4C = 4096;
tiny test models scale everything with their own C. ``tokens`` (V) is fixed at construction and
validated there: an unsupported V raises a ValueError naming the method, V and the allowed values.
The methods and the V each supports are in ``evaluation.vlm_spec``, readable without torch.
"""

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .reference_keys import REFERENCE_KEYS, from_reference_keys  # noqa: F401  (the mapping, exposed here)
from .vlm_spec import COMPRESSOR_LAYOUT, MQT_DEFAULT_MAX_QUERIES, check_layout, check_method, check_tokens

REFERENCE_LAYER_NORM_EPS = 1e-6  # every LayerNorm of the reference TokenPacker and QueCC


class MlpProjector(nn.Sequential):
    """The LLaVA-1.5 projector: Linear(C -> D), GELU, Linear(D -> D)."""

    def __init__(self, in_width: int, llm_width: int):
        super().__init__(nn.Linear(in_width, llm_width), nn.GELU(), nn.Linear(llm_width, llm_width))


class MultiLevelKeyValueProjector(nn.Sequential):
    """Keys/values from multi-level features: Linear(L*C -> C), GELU, Linear(C -> C), LayerNorm."""

    def __init__(self, multi_level_width: int, vision_width: int, eps: float = 1e-5):
        super().__init__(
            nn.Linear(multi_level_width, vision_width),
            nn.GELU(),
            nn.Linear(vision_width, vision_width),
            nn.LayerNorm(vision_width, eps=eps),
        )


def region_side_for(tokens: int, grid_side: int) -> int:
    """Side s of the square patch region each of the V tokens covers (V = (g / s)^2)."""
    return grid_side // math.isqrt(tokens)


def to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """(B, N, C) tokens of a square grid -> (B, C, g, g)."""
    batch, count, width = tokens.shape
    side = math.isqrt(count)
    return tokens.transpose(1, 2).reshape(batch, width, side, side)


def from_grid(grid: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C), row-major."""
    return grid.flatten(2).transpose(1, 2)


def regions_to_batch(tokens: torch.Tensor, region_side: int) -> torch.Tensor:
    """(B, g*g, C) -> (B*V, s*s, C): the tokens of each s x s region, regions in row-major order."""
    batch, count, width = tokens.shape
    side = math.isqrt(count)
    regions_per_side = side // region_side
    regions = tokens.reshape(batch, regions_per_side, region_side, regions_per_side, region_side, width)
    return regions.permute(0, 1, 3, 2, 4, 5).reshape(batch * regions_per_side**2, region_side**2, width)


def sincos_positions_2d(width: int, rows: int, cols: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings (MAE / Qwen-VL style), shape (rows*cols, width)."""
    if width % 4:
        raise ValueError(f"2-D sin-cos positions need a width divisible by 4, got {width}")
    frequencies = 1.0 / 10000 ** (torch.arange(width // 4, dtype=torch.float64) / (width // 4))
    row_index, col_index = torch.meshgrid(
        torch.arange(rows, dtype=torch.float64), torch.arange(cols, dtype=torch.float64), indexing="ij"
    )
    halves = []
    for coordinate in (row_index.flatten(), col_index.flatten()):
        angles = coordinate[:, None] * frequencies[None, :]
        halves.append(torch.cat([angles.sin(), angles.cos()], dim=1))
    return torch.cat(halves, dim=1).float()


class Compressor(nn.Module):
    """Base class: holds V, validates it, counts the compressor's own parameters."""

    method: ClassVar[str]
    has_layouts: ClassVar[bool] = False  # takes ``layout`` (evaluation.vlm_spec.COMPRESSOR_LAYOUTS)
    uses_query: ClassVar[bool] = False
    uses_cls_attention: ClassVar[bool] = False

    def __init__(self, tokens: int, grid_side: int, **token_params):
        super().__init__()
        check_tokens(self.method, tokens, grid_side, **token_params)
        self._tokens = tokens
        self.grid_side = grid_side

    @property
    def tokens(self) -> int:
        return self._tokens

    @property
    def parameter_count(self) -> int:
        """The compressor's own parameters; they are not part of the LLM's N."""
        return sum(parameter.numel() for parameter in self.parameters())

    def compress(
        self,
        patch_feats: torch.Tensor,
        multi_level_feats: torch.Tensor,
        query_emb: torch.Tensor | None = None,
        *,
        cls_attention: torch.Tensor | None = None,
        patch_keys: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, N, C) patch features, (B, N, L*C) multi-level features (+ query embedding) -> (B, V, D)."""
        if patch_feats.shape[1] != self.grid_side**2:
            raise ValueError(f"{self.method}: expected {self.grid_side**2} patch tokens, got {patch_feats.shape[1]}")
        if self.uses_query and query_emb is None:
            raise ValueError(f"{self.method} needs the query embedding (query_emb)")
        if self.uses_cls_attention and (cls_attention is None or patch_keys is None):
            raise ValueError(f"{self.method} needs cls_attention and patch_keys from the last vision layer")
        return self(
            patch_feats, multi_level_feats, query_emb, cls_attention=cls_attention, patch_keys=patch_keys
        )


class AveragePooling(Compressor):
    """Average-pool each s x s region of the patch grid, then the MLP projector (the baseline)."""

    method = "avgpool"

    def __init__(self, tokens: int, vision_width: int, multi_level_width: int, llm_width: int, grid_side: int = 24):
        super().__init__(tokens, grid_side)
        self.projector = MlpProjector(vision_width, llm_width)

    def forward(self, patch_feats, multi_level_feats=None, query_emb=None, *, cls_attention=None, patch_keys=None):
        side = region_side_for(self.tokens, self.grid_side)
        pooled = F.avg_pool2d(to_grid(patch_feats), kernel_size=side, stride=side)
        return self.projector(from_grid(pooled))


class LocalCrossAttention(nn.Module):
    """Each of the V queries attends only to the keys of the s x s region it covers."""

    def __init__(self, width: int, num_heads: int):
        super().__init__()
        self.attention = nn.MultiheadAttention(width, num_heads, batch_first=True)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = queries.shape
        region_side = math.isqrt(keys.shape[1] // tokens)
        attended, _ = self.attention(
            queries.reshape(batch * tokens, 1, width),
            regions_to_batch(keys, region_side),
            regions_to_batch(values, region_side),
            need_weights=False,
        )
        return attended.reshape(batch, tokens, width)


class TokenPacker(Compressor):
    """TokenPacker: bilinearly downsampled layer -2 queries attend to multi-level keys of their region.

    Layout 2 (``evaluation.vlm_spec.COMPRESSOR_LAYOUT``) is the reference's (CircleRadon/TokenPacker):
    separate key and value MLPs, each followed by a LayerNorm, and eps 1e-6 throughout; layout 1, which
    Frontier trained until 2026-12, shares one key/value MLP and uses eps 1e-5.
    """

    method = "tokenpacker"
    has_layouts = True

    def __init__(
        self,
        tokens: int,
        vision_width: int,
        multi_level_width: int,
        llm_width: int,
        grid_side: int = 24,
        num_heads: int = 8,
        layout: int = COMPRESSOR_LAYOUT,
    ):
        super().__init__(tokens, grid_side)
        check_layout(layout)
        self.layout = layout
        eps = REFERENCE_LAYER_NORM_EPS if layout >= 2 else 1e-5
        self.query_proj = nn.Sequential(
            nn.Linear(vision_width, vision_width, bias=False), nn.LayerNorm(vision_width, eps=eps)
        )
        if layout >= 2:
            self.key_proj = MultiLevelKeyValueProjector(multi_level_width, vision_width, eps=eps)
            self.value_proj = MultiLevelKeyValueProjector(multi_level_width, vision_width, eps=eps)
        else:
            self.key_value_proj = MultiLevelKeyValueProjector(multi_level_width, vision_width, eps=eps)
        self.local_attention = LocalCrossAttention(vision_width, num_heads)
        self.projector = MlpProjector(vision_width, llm_width)

    def forward(self, patch_feats, multi_level_feats=None, query_emb=None, *, cls_attention=None, patch_keys=None):
        side = math.isqrt(self.tokens)
        # Without antialiasing, each output point only reads the 2x2 input points around its region's centre.
        downsampled = F.interpolate(to_grid(patch_feats), size=(side, side), mode="bilinear", align_corners=False)
        queries = self.query_proj(from_grid(downsampled))
        if self.layout >= 2:
            keys, values = self.key_proj(multi_level_feats), self.value_proj(multi_level_feats)
        else:
            keys = values = self.key_value_proj(multi_level_feats)
        return self.projector(self.local_attention(queries, keys, values))


class QueCC(Compressor):
    """Query-based convolutional cross-attention (the paper's compressor).

    The question's LLM embedding, projected to the vision width, is added to every layer -2 token;
    a depth-wise strided convolution turns the s x s region into one query, which cross-attends to
    the region's multi-level keys and values (without the text). As in the paper's code, keys and values
    have their own MLPs and every LayerNorm has eps 1e-6; with one shared key/value MLP (Frontier before
    2026-12) training sat at the answer prior for most of 500 steps at some V (README "The demo").
    """

    method = "quecc"
    uses_query = True
    layer_norm_eps = REFERENCE_LAYER_NORM_EPS

    def __init__(
        self,
        tokens: int,
        vision_width: int,
        multi_level_width: int,
        llm_width: int,
        grid_side: int = 24,
        num_heads: int = 8,
    ):
        super().__init__(tokens, grid_side)
        side = region_side_for(tokens, grid_side)
        eps = self.layer_norm_eps
        self.text_proj = nn.Sequential(nn.Linear(llm_width, vision_width), nn.LayerNorm(vision_width, eps=eps))
        self.query_proj = nn.Sequential(
            nn.Linear(vision_width, vision_width),
            nn.GELU(),
            nn.Linear(vision_width, vision_width),
            nn.LayerNorm(vision_width, eps=eps),
        )
        self.downsample = nn.Conv2d(vision_width, vision_width, kernel_size=side, stride=side, groups=vision_width)
        self.key_proj = MultiLevelKeyValueProjector(multi_level_width, vision_width, eps=eps)
        self.value_proj = MultiLevelKeyValueProjector(multi_level_width, vision_width, eps=eps)
        self.local_attention = LocalCrossAttention(vision_width, num_heads)
        self.projector = MlpProjector(vision_width, llm_width)

    def forward(self, patch_feats, multi_level_feats=None, query_emb=None, *, cls_attention=None, patch_keys=None):
        text = self.text_proj(query_emb.reshape(query_emb.shape[0], 1, -1).to(patch_feats.dtype))
        queries = from_grid(self.downsample(to_grid(self.query_proj(patch_feats + text))))
        keys, values = self.key_proj(multi_level_feats), self.value_proj(multi_level_feats)
        return self.projector(self.local_attention(queries, keys, values))


class PruMerge(Compressor):
    """LLaVA-PruMerge (training-free token selection), then the MLP projector.

    Keeps the V - 1 patches the CLS token attends to most; each kept patch adds its nearest
    neighbours (cosine of the last layer's keys) weighted by their CLS attention; one extra token
    is the CLS-attention-weighted sum of the dropped patches. Only the projector has weights.
    """

    method = "prumerge"
    uses_cls_attention = True

    def __init__(
        self,
        tokens: int,
        vision_width: int,
        multi_level_width: int,
        llm_width: int,
        grid_side: int = 24,
        num_neighbours: int = 32,
    ):
        super().__init__(tokens, grid_side)
        self.num_neighbours = num_neighbours
        self.projector = MlpProjector(vision_width, llm_width)

    def forward(self, patch_feats, multi_level_feats=None, query_emb=None, *, cls_attention=None, patch_keys=None):
        count = patch_feats.shape[1]
        kept_count = self.tokens - 1
        kept = cls_attention.topk(kept_count, dim=1).indices.sort(dim=1).values  # (B, V-1), spatial order
        kept_mask = torch.zeros_like(cls_attention, dtype=torch.bool).scatter_(1, kept, True)

        unit_keys = F.normalize(patch_keys, dim=-1)
        kept_keys = unit_keys.gather(1, kept[..., None].expand(-1, -1, unit_keys.shape[-1]))
        similarity = (kept_keys @ unit_keys.transpose(1, 2)).scatter(2, kept[..., None], float("-inf"))
        neighbours = similarity.topk(min(self.num_neighbours, count - 1), dim=2).indices  # (B, V-1, k)
        neighbour_weights = cls_attention[:, None, :].expand(-1, kept_count, -1).gather(2, neighbours)
        merge_weights = torch.zeros_like(similarity).scatter_(2, neighbours, neighbour_weights)
        kept_feats = patch_feats.gather(1, kept[..., None].expand(-1, -1, patch_feats.shape[-1]))
        merged = kept_feats + merge_weights.to(patch_feats.dtype) @ patch_feats

        dropped_weights = (cls_attention * ~kept_mask).to(patch_feats.dtype)
        dropped_summary = (dropped_weights[..., None] * patch_feats).sum(dim=1, keepdim=True)
        return self.projector(torch.cat([merged, dropped_summary], dim=1))


class MatryoshkaQueryTransformer(Compressor):
    """Matryoshka Query Transformer: the first V of M learnable queries cross-attend to all patches.

    Queries carry fixed 2-D sin-cos positions on a ceil(sqrt(M))-wide grid, keys those of the patch
    grid. Queries do not attend to each other, so using the first V of M equals the nested model
    trained with V sampled per step: any V <= M works at inference.
    """

    method = "mqt"

    def __init__(
        self,
        tokens: int,
        vision_width: int,
        multi_level_width: int,
        llm_width: int,
        grid_side: int = 24,
        num_heads: int = 8,
        max_queries: int = MQT_DEFAULT_MAX_QUERIES,
    ):
        super().__init__(tokens, grid_side, max_queries=max_queries)
        self.max_queries = max_queries
        self.queries = nn.Parameter(torch.zeros(max_queries, vision_width))
        self.query_norm = nn.LayerNorm(vision_width)
        self.key_value_norm = nn.LayerNorm(vision_width)
        self.attention = nn.MultiheadAttention(vision_width, num_heads, batch_first=True)
        self.output_norm = nn.LayerNorm(vision_width)
        self.projector = MlpProjector(vision_width, llm_width)

    def forward(self, patch_feats, multi_level_feats=None, query_emb=None, *, cls_attention=None, patch_keys=None):
        batch, _, width = patch_feats.shape
        query_grid = math.ceil(math.sqrt(self.max_queries))
        query_positions = sincos_positions_2d(width, query_grid, query_grid)[: self.tokens]
        patch_positions = sincos_positions_2d(width, self.grid_side, self.grid_side)
        queries = self.query_norm(self.queries[: self.tokens]) + query_positions.to(patch_feats)
        values = self.key_value_norm(patch_feats)
        attended, _ = self.attention(
            queries.expand(batch, -1, -1), values + patch_positions.to(patch_feats), values, need_weights=False
        )
        return self.projector(self.output_norm(attended))


COMPRESSORS: dict[str, type[Compressor]] = {
    compressor.method: compressor
    for compressor in (AveragePooling, TokenPacker, QueCC, PruMerge, MatryoshkaQueryTransformer)
}


def compressor_class(method: str) -> type[Compressor]:
    check_method(method)
    return COMPRESSORS[method]


def build_compressor(
    method: str,
    tokens: int,
    vision_width: int,
    multi_level_width: int,
    llm_width: int,
    grid_side: int = 24,
    layout: int = COMPRESSOR_LAYOUT,
    **params,
) -> Compressor:
    """Instantiate a compressor by method name; ``params`` are the method's own options (num_heads, ...).
    ``layout`` (config.json's ``compressor_layout``) matters to the methods whose layout changed."""
    check_layout(layout)
    cls = compressor_class(method)
    if cls.has_layouts:
        params["layout"] = layout
    return cls(tokens, vision_width, multi_level_width, llm_width, grid_side=grid_side, **params)
