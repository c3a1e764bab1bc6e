"""Per-item records of an evaluation: what the model was asked, what it answered and how each item scored.

lmms-eval (``log_samples=True``) logs one dict per document and filter: ``doc_id``, ``doc`` (without images),
``target``, ``arguments`` (the context string first), ``resps``/``filtered_resps`` and the task's per-item metric
values (a number, or a dict such as POPE's ``{"question_id", "score", "prediction", "ground_truth"}``). A group
benchmark's records carry their subtask in ``task``.
``sample_records`` turns them into records that hold no image::

    {"task": "pope", "doc_id": 3, "item_id": "3:q17", "prompt_sha256": "...", "prediction": "yes", "target": "no",
     "scores": {"pope_accuracy": {...}}, "tokens_generated": 2, "seconds": 0.04}

``jsonl_gz`` / ``read_jsonl_gz`` are their stored form (gzip'd JSON lines sorted by doc_id, byte-identical for the
same records, so a rewrite has the same sha256); ``is_wrong`` is what "wrong items" means to the API.
"""

import gzip
import hashlib
import io
import json
import math

ITEM_ID_FIELDS = ("question_id", "index", "pid", "id")  # a document's own id, the first one it has
LOGGED_FIELDS = frozenset({
    "doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "token_counts", "doc_hash", "target_hash",
    "prompt_hash", "input_media", "filter", "metrics",
})


def json_safe(value):
    """``value`` with what JSON cannot hold turned into text (images, tensors) and non-finite floats into None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            pass
    return f"<{type(value).__name__}>"


def item_id(sample: dict) -> str:
    """The doc_id, plus the document's own id when it has one (``"3:q17"``)."""
    doc = sample.get("doc") or {}
    own = next((doc[name] for name in ITEM_ID_FIELDS if doc.get(name) not in (None, "")), None)
    return f"{sample['doc_id']}" if own is None else f"{sample['doc_id']}:{own}"


def _prediction(filtered_responses):
    """The filtered response of a one-request document (a generated answer); every request's for a multiple-choice
    document (one (loss, is_greedy) per choice)."""
    responses = list(filtered_responses or [])
    return responses[0] if len(responses) == 1 else responses


PROMPT_KEPT_CHARS = 4000


def sample_records(samples: list[dict], task: str, request_stats: dict | None = None) -> list[dict]:
    """Records of one task's logged samples, sorted by doc_id; ``request_stats`` is FrontierLMM's
    ``{(task, doc_id): {"tokens_generated", "seconds"}}``."""
    stats = request_stats or {}
    records = []
    for sample in samples:
        arguments = sample.get("arguments") or []
        prompt = arguments[0] if arguments and isinstance(arguments[0], str) else ""
        timing = stats.get((task, sample["doc_id"]), {})
        records.append({
            "task": task,
            "doc_id": sample["doc_id"],
            "item_id": item_id(sample),
            "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
            "prompt": prompt[:PROMPT_KEPT_CHARS],  # the question as the model saw it (long ones cut; the hash is whole)
            "prediction": json_safe(_prediction(sample.get("filtered_resps"))),
            "target": json_safe(sample.get("target")),
            "scores": {key: json_safe(value) for key, value in sample.items() if key not in LOGGED_FIELDS},
            "tokens_generated": timing.get("tokens_generated"),
            "seconds": timing.get("seconds"),
        })
    return sorted(records, key=_order)


def _order(record: dict) -> tuple:
    return record["doc_id"], record.get("task", "")


def task_sample_records(logged: dict[str, list[dict]], request_stats: dict | None = None) -> dict[str, list[dict]]:
    """``sample_records`` of every task in lmms-eval's ``raw["samples"]``."""
    return {task: sample_records(samples, task, request_stats) for task, samples in (logged or {}).items()}


def score_number(value) -> float | None:
    """A per-item score as a number: itself, or a dict's ``score`` (POPE, MMBench's judge); None when neither."""
    if isinstance(value, dict):
        value = value.get("score", value.get("correct"))
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else None


def is_wrong(record: dict, primary: tuple[str, ...] = ()) -> bool:
    """Whether an item scored 0/false: on the first of ``primary`` (the benchmark's metrics) it has, else on any
    score field."""
    scores = record.get("scores") or {}
    for metric in primary:
        if metric in scores and score_number(scores[metric]) is not None:
            return score_number(scores[metric]) == 0
    return any(score_number(value) == 0 for value in scores.values())


def jsonl_gz(records: list[dict]) -> bytes:
    """Gzip'd JSON lines, one record a line, sorted by doc_id; the same records give the same bytes."""
    lines = "".join(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
                    for record in sorted(records, key=_order))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as handle:
        handle.write(lines.encode())
    return buffer.getvalue()


def read_jsonl_gz(data: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line.strip()]
