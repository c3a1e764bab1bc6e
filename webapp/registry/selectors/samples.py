"""Reads of per-item records: the harness output of a run on a benchmark as the results API shows it (private
checkpoints to their owner and staff, ``runs_visible_to``), and its records from storage, filtered."""

from django.core.files.storage import default_storage

from evaluation.samples import is_wrong, read_jsonl_gz, score_number
from webapp.registry.models import HarnessOutput
from webapp.registry.selectors import runs_visible_to


class SamplesNotFound(Exception):
    """No per-item records to show; the message says why and what to do."""


def visible_harness_output(user, run_id: int, benchmark_key: str) -> HarnessOutput:
    output = (HarnessOutput.objects.select_related("benchmark", "run")
              .filter(run__in=runs_visible_to(user), run_id=run_id, benchmark__key=benchmark_key).first())
    if output is None:
        raise SamplesNotFound(f"Evaluation {run_id} has no result on {benchmark_key!r} that you can see. "
                              f"List its results at /api/v1/results/?run={run_id}.")
    if not output.samples_key:
        raise SamplesNotFound(f"The result of evaluation {run_id} on {benchmark_key!r} was recorded before Frontier "
                              f"kept per-item records, so it has none; results recorded from now on keep them. Its "
                              f"metrics are at /api/v1/results/?run={run_id}.")
    return output


def _value_matches(score, value: str) -> bool:
    number = score_number(score)
    wanted = {"true": 1.0, "false": 0.0}.get(value.lower())
    if wanted is None:
        try:
            wanted = float(value)
        except ValueError:
            return str(score) == value
    return number is not None and number == wanted


def harness_output_samples(output: HarnessOutput, *, wrong: bool = False, field: str | None = None,
                           value: str | None = None) -> list[dict]:
    """The records, sorted by doc_id: with ``wrong``, the items whose primary score (the benchmark's metrics, else
    any score field) is 0/false; with ``field``, those holding that score field (equal to ``value`` when given)."""
    with default_storage.open(output.samples_key, "rb") as handle:
        records = read_jsonl_gz(handle.read())
    if wrong:
        primary = tuple(output.benchmark.metrics or ())
        records = [record for record in records if is_wrong(record, primary)]
    if field:
        records = [record for record in records if field in record["scores"]
                   and (value is None or _value_matches(record["scores"][field], value))]
    return records
