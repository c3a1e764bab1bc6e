"""``FrontierLMM``: a loaded ``VLMRunner`` as an lmms-eval model (one image and the task's prompt per request)."""

import json
import time
from collections.abc import Callable, Iterable

import torch
from lmms_eval.api.model import lmms
from PIL import Image

from . import offline  # noqa: F401  (HF offline defaults; the package __init__ applies them first)
from .errors import EvaluationCancelled, HarnessError
from .loading import VLMRunner

DEFAULT_MAX_NEW_TOKENS = 32

ProgressCallback = Callable[[int, int], None]
StopCallback = Callable[[], bool]


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's "can't allocate memory" RuntimeError."""
    message = str(error).lower()
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in message or "can't allocate memory" in message


def first_image(visuals) -> Image.Image:
    images = [visual for visual in (visuals or []) if isinstance(visual, Image.Image)]
    if not images:
        raise HarnessError("a document has no image; Frontier models need exactly one image per question")
    return images[0]  # LLaVA-1.5-style models see one image; extra images of multi-image documents are dropped


class FrontierLMM(lmms):
    """lmms-eval model wrapping a loaded ``VLMRunner``: one image + the task's prompt per request.

    ``generate_until`` batches requests that share generation settings (longest prompts first) and
    cuts each answer at the first ``until`` string. ``loglikelihood`` returns (loss, is_greedy) with
    loss = -log P(continuation | image, context) summed over the continuation tokens (lmms-eval
    picks the choice with the smallest loss). ``clean()`` keeps the model, so one instance serves
    many ``simple_evaluate`` calls.
    """

    def __init__(self, runner: VLMRunner, batch_size: int, auto_batch_size: bool = False):
        super().__init__()
        self.runner = runner
        self.batch_size = batch_size
        self.auto_batch_size = auto_batch_size
        self.progress: ProgressCallback | None = None
        self.should_stop: StopCallback | None = None
        self.items_total = 0
        self.items_done = 0
        # (task, doc_id) -> tokens generated and a share of its batches' wall time (evaluation.samples reads it)
        self.request_stats: dict[tuple[str, int], dict] = {}

    def track(self, items_total: int, progress: ProgressCallback | None, should_stop: StopCallback | None) -> None:
        """Set the callbacks of the next evaluation and reset its item counter."""
        self.items_total, self.items_done, self.request_stats = items_total, 0, {}
        self.progress, self.should_stop = progress, should_stop

    def clean(self):
        """Free cached device memory but keep the model (lmms-eval's default deletes it)."""
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _doc_image(self, doc_to_visual, doc_id, task, split) -> Image.Image:
        return first_image(doc_to_visual(self.task_dict[task][split][doc_id]))

    def _stats(self, key: tuple[str, int]) -> dict:
        return self.request_stats.setdefault(key, {"tokens_generated": 0, "seconds": 0.0})

    def _in_batches(
        self, indices: list[int], run_batch: Callable[[list[int]], list], keys: list[tuple[str, int]]
    ) -> dict[int, object]:
        """Run ``run_batch`` over ``indices`` in chunks; halve an automatic batch size on out-of-memory. Each
        request's (task, doc_id) in ``keys`` gets an equal share of its chunk's wall time."""
        results: dict[int, object] = {}
        start = 0
        while start < len(indices):
            if self.should_stop is not None and self.should_stop():
                raise EvaluationCancelled(
                    f"stopped after {self.items_done} of {self.items_total} requests; nothing was recorded"
                )
            chunk = indices[start : start + self.batch_size]
            started = time.perf_counter()
            try:
                outputs = run_batch(chunk)
            except Exception as error:
                if not (is_out_of_memory(error) and self.auto_batch_size and self.batch_size > 1):
                    raise
                self.batch_size //= 2
                self.clean()
                continue
            results.update(zip(chunk, outputs, strict=True))
            for index in chunk:
                self._stats(keys[index])["seconds"] += (time.perf_counter() - started) / len(chunk)
            start += len(chunk)
            self.items_done += len(chunk)
            if self.progress is not None:
                self.progress(self.items_done, self.items_total)
        return results

    def generate_until(self, requests) -> list[str]:
        arguments = [request.args for request in requests]
        groups: dict[str, list[int]] = {}
        for index, (_, gen_kwargs, *_) in enumerate(arguments):
            groups.setdefault(json.dumps(gen_kwargs, sort_keys=True, default=str), []).append(index)
        keys = [(task, doc_id) for *_, doc_id, task, _ in arguments]
        answers: dict[int, object] = {}
        for indices in groups.values():
            indices.sort(key=lambda index: -len(arguments[index][0]))
            answers.update(
                self._in_batches(indices, lambda chunk: self._generate([arguments[i] for i in chunk]), keys)
            )
        for index, (_, tokens) in answers.items():
            self._stats(keys[index])["tokens_generated"] += tokens
        return [answers[index][0] for index in range(len(requests))]

    def _generate(self, batch: list[tuple]) -> list[tuple[str, int]]:
        """(answer cut at the first stop string, tokens the model generated) per request."""
        gen_kwargs = dict(batch[0][1])
        until = gen_kwargs.pop("until", None) or []
        until = [until] if isinstance(until, str) else list(until)
        settings = {"max_new_tokens": int(gen_kwargs.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))}
        temperature = float(gen_kwargs.get("temperature", 0) or 0)
        if gen_kwargs.get("do_sample") and temperature > 0:
            settings.update(do_sample=True, temperature=temperature, top_p=float(gen_kwargs.get("top_p") or 1.0))
        images = [
            self._doc_image(doc_to_visual, doc_id, task, split) for _, _, doc_to_visual, doc_id, task, split in batch
        ]
        texts = self.runner.generate(images, [context for context, *_ in batch], **settings)
        return [(_cut_at_stop(text, until), self._token_count(text)) for text in texts]

    def _token_count(self, text: str) -> int:
        """Tokens of a generated text (re-tokenised from its decoded form; special tokens are not counted)."""
        tokenizer = getattr(self.runner, "tokenizer", None)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if tokenizer is not None else 0

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        arguments = [request.args for request in requests]
        order = sorted(range(len(arguments)), key=lambda index: -len(arguments[index][0]))
        keys = [(task, doc_id) for *_, doc_id, task, _ in arguments]
        scores = self._in_batches(order, lambda chunk: self._score([arguments[i] for i in chunk]), keys)
        return [scores[index] for index in range(len(requests))]

    def _score(self, batch: list[tuple]) -> list[tuple[float, bool]]:
        contexts, continuations, images = [], [], []
        for context, continuation, doc_to_visual, doc_id, task, split in batch:
            doc = self.task_dict[task][split][doc_id]
            continuation = continuation if isinstance(continuation, str) else continuation(doc)
            trailing = len(context) - len(context.rstrip(" "))  # the space belongs to the continuation
            contexts.append(context[: len(context) - trailing])
            continuations.append(context[len(context) - trailing :] + continuation)
            images.append(first_image(doc_to_visual(doc)))
        scores = self.runner.continuation_scores(images, contexts, continuations)
        # lmms-eval reads these as losses (its multiple-choice scoring takes the argmin): -log-probability.
        return [(-log_probability, greedy) for log_probability, greedy in scores]

    def generate_until_multi_round(self, requests):
        raise HarnessError("multi-round generation tasks are not supported by Frontier models; pick single-turn tasks")


def _cut_at_stop(text: str, until: Iterable[str]) -> str:
    for stop in until:
        if stop:
            text = text.split(stop, 1)[0]
    return text


