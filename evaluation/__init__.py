"""Frontier evaluation library: VLM checkpoint format, visual-token compressors, FLOPs, latency.

Importing the package registers ``FrontierVLMConfig`` / ``FrontierVLM`` with transformers' Auto
classes. No Django, no Celery: usable from a notebook.
"""

from .compressors import COMPRESSORS, Compressor, build_compressor
from .flops import FLOPS_FORMULA_VERSION, count_parameters, inference_flops
from .latency import LatencyResult, measure_latency
from .loading import FrontierRunner, LlavaRunner, VLMRunner, load_vlm
from .modeling import FrontierVLM, FrontierVLMConfig
from .tiny import build_tiny_tokenizer, build_tiny_vlm, make_tiny_checkpoint

__all__ = [
    "COMPRESSORS",
    "Compressor",
    "FLOPS_FORMULA_VERSION",
    "FrontierRunner",
    "FrontierVLM",
    "FrontierVLMConfig",
    "LatencyResult",
    "LlavaRunner",
    "VLMRunner",
    "build_compressor",
    "build_tiny_tokenizer",
    "build_tiny_vlm",
    "count_parameters",
    "inference_flops",
    "load_vlm",
    "make_tiny_checkpoint",
    "measure_latency",
]
