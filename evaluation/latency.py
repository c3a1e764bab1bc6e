"""Per-sample latency with prefill and decode timed separately.

One greedy generation of exactly G new tokens is timed token by token through a generation
streamer: time to first token covers image encoding, compression, (QueCC's query pass) and the
LLM prefill; the rest, divided by G - 1, is the per-token decode time. The streamer receives every
token as a CPU tensor, so each timestamp is taken after the device has finished that step.
"""

import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from PIL import Image
from transformers.generation.streamers import BaseStreamer

from .loading import VLMRunner


@dataclass(frozen=True)
class LatencyResult:
    device: str
    batch_size: int
    new_tokens: int
    time_to_first_token_s: float  # whole batch: vision + compressor + prefill + first token
    decode_per_token_s: float  # whole batch, one decoding step
    seconds_per_sample: float  # total wall time / batch size

    def as_dict(self) -> dict:
        return asdict(self)


class _TokenClock(BaseStreamer):
    """Records when generate() hands over each new token (the first call carries the prompt)."""

    def __init__(self):
        self.token_times: list[float] = []
        self._prompt_seen = False

    def put(self, value):
        if self._prompt_seen:
            self.token_times.append(time.perf_counter())
        self._prompt_seen = True

    def end(self):
        pass


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(
    runner: VLMRunner,
    images: list[Image.Image],
    prompts: list[str],
    new_tokens: int = 16,
    warmup: int = 1,
    repeats: int = 3,
) -> LatencyResult:
    """Medians over ``repeats`` timed generations of exactly ``new_tokens`` tokens (>= 2)."""
    if new_tokens < 2:
        raise ValueError("new_tokens must be >= 2 to time decoding separately from prefill")
    generation = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    with _encoder_uncached(runner.model):
        return _timed(runner, images, prompts, new_tokens, generation, warmup, repeats)


@contextmanager
def _encoder_uncached(model):
    """Latency includes the vision encoder: a feature cache attached for scoring is set aside while timing."""
    cache = getattr(model, "feature_cache", None)
    if cache is None:
        yield
        return
    model.feature_cache = None
    try:
        yield
    finally:
        model.feature_cache = cache


def _timed(runner, images, prompts, new_tokens: int, generation: dict, warmup: int, repeats: int) -> LatencyResult:
    for _ in range(warmup):
        runner.generate_ids(images, prompts, **generation)
    first_token, per_token, total = [], [], []
    for _ in range(repeats):
        clock = _TokenClock()
        _synchronize(runner.device)
        start = time.perf_counter()
        runner.generate_ids(images, prompts, streamer=clock, **generation)
        _synchronize(runner.device)
        end = time.perf_counter()
        times = clock.token_times
        first_token.append(times[0] - start)
        per_token.append((times[-1] - times[0]) / (len(times) - 1))
        total.append(end - start)
    return LatencyResult(
        device=str(runner.device),
        batch_size=len(prompts),
        new_tokens=new_tokens,
        time_to_first_token_s=statistics.median(first_token),
        decode_per_token_s=statistics.median(per_token),
        seconds_per_sample=statistics.median(total) / len(prompts),
    )
