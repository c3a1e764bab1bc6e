"""Writes of per-item records: one benchmark result's records as gzip'd JSON lines in the default storage (local
disk or S3, like checkpoint files) at ``samples/<checkpoint id>/<run id>/<benchmark key>.jsonl.gz``. The bytes
depend on the records alone (``evaluation.samples.jsonl_gz``), so a redelivered job rewrites the same file."""

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from evaluation.samples import jsonl_gz
from webapp.core.errors import ServiceError
from webapp.registry.models import Benchmark, EvaluationRun, HarnessOutput


def samples_storage_key(run: EvaluationRun, benchmark: Benchmark) -> str:
    return f"samples/{run.checkpoint_id}/{run.pk}/{benchmark.key}.jsonl.gz"


def samples_store(*, run: EvaluationRun, benchmark: Benchmark, records: list[dict]) -> dict:
    """Write the records (replacing an earlier file at the key); the HarnessOutput fields that point at them."""
    data = jsonl_gz(records)
    key = samples_storage_key(run, benchmark)
    if default_storage.exists(key):
        default_storage.delete(key)
    saved = default_storage.save(key, ContentFile(data))
    if saved != key:  # the storage renamed it: another writer got there between the delete and the save
        default_storage.delete(saved)
        raise ServiceError(f"could not write the per-item records of run {run.pk} on {benchmark} at {key}; "
                           f"record the result again.")
    return {"samples_key": key, "samples_sha256": hashlib.sha256(data).hexdigest(), "samples_count": len(records)}


def samples_fields_of(source: HarnessOutput) -> dict:
    """The fields of a reused result: its source's records, not a copy."""
    return {"samples_key": source.samples_key, "samples_sha256": source.samples_sha256,
            "samples_count": source.samples_count}
