"""The reference QueCC and TokenPacker modules, written for Frontier's tests from the public code's description.

locuslab/llava-token-compression ``llava/model/multimodal_projector/quecc.py`` (QueCC at index 0 of LLaVA's
``mlp2x_gelu`` projector) and CircleRadon/TokenPacker ``llava/model/multimodal_projector/builder.py``: the
reference's tensor names, its sequence-first attention and its own way of cutting the grid into regions,
none of Frontier's helpers. Widths are tiny: C = 32 (vision), 4 levels, D = 48 (LLM).
"""

import argparse
import json
import string

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, CLIPVisionConfig, CLIPVisionModel, PreTrainedTokenizerFast

from evaluation.tiny import tiny_image_processor
from evaluation.vlm_spec import TINY_IMAGE_SIZE, TINY_PATCH_SIZE

GRID, C, LEVELS, LLM = 24, 32, 4, 48
TEXT = LLM  # QueCC's text feature is the LLM's last hidden state
HEADS = 8


def mlp(width_in, width):
    return nn.Sequential(nn.Linear(width_in, width), nn.GELU(), nn.Linear(width, width))


class ReferenceQueCC(nn.Module):
    """quecc.py: q/k/v MLPs with LayerNorm(eps 1e-6), depth-wise strided conv, text projection."""

    def __init__(self, kernel):
        super().__init__()
        self.clip_attn = nn.MultiheadAttention(C, HEADS, batch_first=True)
        self.q_proj = nn.Sequential(*mlp(C, C), nn.LayerNorm(C, eps=1e-6))
        self.k_proj = nn.Sequential(*mlp(LEVELS * C, C), nn.LayerNorm(C, eps=1e-6))
        self.v_proj = nn.Sequential(*mlp(LEVELS * C, C), nn.LayerNorm(C, eps=1e-6))
        self.q_downsample = nn.Conv2d(C, C, kernel_size=kernel, stride=kernel, groups=C)
        self.text_projection = nn.Sequential(nn.Linear(TEXT, C), nn.LayerNorm(C, eps=1e-6))

    def forward(self, hidden_states):
        multi, text, patches = hidden_states  # the reference's (multi-level, text feature, layer -2) tuple
        x = patches + self.text_projection(text)
        batch = x.shape[0]
        grid = self.q_proj(x).permute(0, 2, 1).reshape(batch, C, GRID, GRID)
        down = self.q_downsample(grid)
        rows, cols = down.shape[2:]
        queries = down.permute(0, 2, 3, 1).reshape(batch * rows * cols, 1, C)

        def chunks(tokens):  # "b (i k j l) d -> (b i j) (k l) d"
            k, l = GRID // rows, GRID // cols
            return tokens.reshape(batch, rows, k, cols, l, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, k * l, C)

        out = self.clip_attn(queries, chunks(self.k_proj(multi)), chunks(self.v_proj(multi)))[0]
        return out.reshape(batch, rows * cols, C)


class ReferenceMlp2xGelu(nn.Sequential):
    """LLaVA's projector: [token compressor at 0,] Linear, GELU, Linear."""

    def forward(self, inputs):
        modules = list(self)
        x = modules[0](inputs) if isinstance(modules[0], ReferenceQueCC) else inputs
        for module in modules[1:] if isinstance(modules[0], ReferenceQueCC) else modules:
            x = module(x)
        return x


class ReferenceTokenPacker(nn.Module):
    """TokenPacker's builder.py: sequence-first attention of each bilinear query over its s x s keys."""

    def __init__(self, scale_factor):
        super().__init__()
        self.scale_factor, self.grid_size = scale_factor, GRID // scale_factor
        self.q_proj_1 = nn.Linear(C, C, bias=False)
        self.k_proj_1 = mlp(LEVELS * C, C)
        self.v_proj_1 = mlp(LEVELS * C, C)
        self.ln_q_1, self.ln_k_1, self.ln_v_1 = (nn.LayerNorm(C, eps=1e-6) for _ in range(3))
        self.clip_attn = nn.MultiheadAttention(C, HEADS)  # sequence first: (L, batch, C)
        self.mlp = nn.Sequential(nn.Linear(C, LLM), nn.GELU(), nn.Linear(LLM, LLM))

    def regions(self, tokens, side):
        """(B, g*g, C) -> (side*side, regions*B, C): sequence = a region's tokens, batch = (region, image)."""
        batch = tokens.shape[0]
        per = GRID // side
        cut = tokens.reshape(batch, per, side, per, side, C).permute(2, 4, 1, 3, 0, 5)
        return cut.reshape(side * side, per * per * batch, C)

    def forward(self, x):
        patches, multi = x
        batch = patches.shape[0]
        keys = self.ln_k_1(self.k_proj_1(multi))
        values = self.ln_v_1(self.v_proj_1(multi))
        grid = patches.reshape(batch, GRID, GRID, C).permute(0, 3, 1, 2)
        q = F.interpolate(grid, size=(self.grid_size,) * 2, mode="bilinear").permute(0, 2, 3, 1)
        query = self.ln_q_1(self.q_proj_1(q.reshape(batch, -1, C)))
        query = query.permute(1, 0, 2).reshape(1, -1, C)  # (1, regions * B, C), region-major
        out = self.clip_attn(query, self.regions(keys, self.scale_factor), self.regions(values, self.scale_factor))[0]
        return self.mlp(out.reshape(self.grid_size**2, batch, C).permute(1, 0, 2))


def randomize(module, seed):
    """Random weights everywhere, LayerNorm scales and biases included (a trained module's are not 1 and 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return module.eval()


# A checkpoint in the paper's code layout (tests/evaluation/test_convert_llava.py and the upload test).
KERNEL = 4  # 24 / 4 = 6 regions a side: V = 36


def llava_tokenizer() -> PreTrainedTokenizerFast:
    """A Llama-like tokenizer: <unk>, <s>, </s>, no pad and no <image> token."""
    pieces = ["<unk>", "<s>", "</s>", *string.punctuation, *string.ascii_lowercase, *string.digits,
              *(f"##{c}" for c in string.ascii_lowercase + string.digits), "user", "assistant", "what", "color"]
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="<unk>"))
    backend.normalizer, backend.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def write_llava_quecc(root):
    """A tiny QueCC checkpoint as LLaVA's train.py leaves it (SRC) and its CLIP tower folder, under ``root``."""
    tower_dir, src = root / "clip", root / "llava-quecc"
    torch.manual_seed(0)
    tower = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=C, intermediate_size=2 * C, num_hidden_layers=24, num_attention_heads=1,
        image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE,
    )).eval()
    tower.save_pretrained(tower_dir)
    tiny_image_processor().save_pretrained(tower_dir)

    tokenizer = llava_tokenizer()
    text_config = {"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": LLM, "intermediate_size": 96,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                   "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    llm = AutoModelForCausalLM.from_config(AutoConfig.for_model(**text_config)).eval()
    projector = randomize(
        ReferenceMlp2xGelu(ReferenceQueCC(KERNEL), nn.Linear(C, LLM), nn.GELU(), nn.Linear(LLM, LLM)), seed=3
    )
    src.mkdir()
    weights = {name: tensor.contiguous() for name, tensor in llm.state_dict().items()}
    names = sorted(weights)
    save_file({n: weights[n] for n in names[: len(names) // 2]}, src / "model-00001-of-00002.safetensors")
    save_file({n: weights[n] for n in names[len(names) // 2 :]}, src / "model-00002-of-00002.safetensors")
    torch.save({f"model.mm_projector.{n}": t for n, t in projector.state_dict().items()}, src / "mm_projector.bin")
    torch.save(argparse.Namespace(learning_rate=2e-5), src / "training_args.bin")  # a pickle that is no weights
    tokenizer.save_pretrained(src)
    (src / "config.json").write_text(json.dumps({
        **text_config, "model_type": "llava_llama", "architectures": ["LlavaLlamaForCausalLM"],
        "mm_projector_type": "mlp2x_gelu", "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "mm_hidden_size": C, "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
        "mm_vision_token_compression_type": "quecc", "mm_vision_token_compression_kernel_size": KERNEL,
        "mm_vision_token_compression_stride": KERNEL, "mm_vision_output_text_embedding_size": LLM,
        "image_aspect_ratio": "pad", "tokenizer_model_max_length": 2048, "use_mm_proj": True,
    }))
    return {"src": src, "tower_dir": tower_dir, "tower": tower, "llm": llm, "projector": projector,
            "tokenizer": tokenizer, "root": root}
