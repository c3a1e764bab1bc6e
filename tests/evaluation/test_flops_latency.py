"""FLOPs formula v1 and the prefill/decode latency helper."""

import pytest
import torch
from PIL import Image

from evaluation.flops import FLOPS_FORMULA_VERSION, count_parameters, inference_flops
from evaluation.latency import measure_latency
from evaluation.loading import load_vlm


def test_formula_version_is_pinned():
    assert FLOPS_FORMULA_VERSION == "v1"


def test_flops_are_two_n_times_all_llm_tokens():
    half_billion = 500_000_000
    assert inference_flops(half_billion, visual_tokens=1, query_tokens=0, generated_tokens=0) == 1e9
    flops = inference_flops(half_billion, visual_tokens=16, query_tokens=50, generated_tokens=10)
    assert flops == 2 * half_billion * (50 + 16 + 10)
    with_encoder = inference_flops(half_billion, 576, 50, 10, vision_encoder_flops=3.5e11)
    assert with_encoder == inference_flops(half_billion, 576, 50, 10) + 3.5e11


def test_negative_counts_are_rejected():
    with pytest.raises(ValueError, match="query_tokens must be >= 0"):
        inference_flops(1000, visual_tokens=4, query_tokens=-1, generated_tokens=0)


def test_shared_parameters_are_counted_once():
    embedding = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = embedding.weight
    assert count_parameters(torch.nn.ModuleList([embedding, head])) == 40


def test_latency_reports_prefill_and_decode_separately(pooling_checkpoint):
    runner = load_vlm(pooling_checkpoint)
    image = Image.new("RGB", (96, 96), (0, 128, 255))
    result = measure_latency(runner, [image, image], ["what color?", "<image>\nhow many?"], new_tokens=4, repeats=2)
    assert (result.device, result.batch_size, result.new_tokens) == ("cpu", 2, 4)
    assert result.time_to_first_token_s > 0 and result.decode_per_token_s > 0
    # The whole generation takes at least prefill plus the three timed decode steps.
    whole_batch = result.seconds_per_sample * result.batch_size
    assert whole_batch >= result.time_to_first_token_s + 3 * result.decode_per_token_s * 0.99
    assert set(result.as_dict()) >= {"device", "batch_size", "time_to_first_token_s", "decode_per_token_s"}


def test_latency_needs_two_tokens(pooling_checkpoint):
    with pytest.raises(ValueError, match="new_tokens must be >= 2"):
        measure_latency(load_vlm(pooling_checkpoint), [Image.new("RGB", (96, 96))], ["x"], new_tokens=1)
