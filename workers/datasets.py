"""The dataset prefetch job (cpu queue): fill the dataset mirror, settings.FRONTIER_DATASETS_DIR, from the Hugging
Face hub for the tasks a staff member asked for (POST /api/v1/datasets/prefetch/), as ``python -m evaluation
datasets prefetch`` and ``manage.py datasets prefetch`` do: the same ``evaluation.prefetch`` for each dataset.

A ``PrefetchError`` (no hub access, no such revision, a gated repository) fails the job at once with class
``dataset_unavailable`` and its message, which says how to fill the mirror from a machine that has hub access;
datasets fetched before it stay in the mirror (each one lands whole or not at all)."""

from django.conf import settings

from evaluation.prefetch import prefetch, sources_for


def prefetch_datasets_job(ctx) -> dict:
    """Params: ``tasks`` (lmms-eval task names), ``revision`` ("" = each dataset's pinned or current one).
    Returns the mirror's root and the record of each dataset fetched."""
    root = settings.FRONTIER_DATASETS_DIR
    sources = sources_for(tasks=list(ctx.params.get("tasks") or []))
    revision = ctx.params.get("revision") or None
    ctx.progress(0, len(sources))
    records = []
    for done, source in enumerate(sources, start=1):
        ctx.check()
        ctx.log.info("Fetching %s for task %s into %s", source.repo_id, source.task, root)
        record = prefetch(source, root, revision=revision)
        ctx.log.info("Fetched %s at revision %s (%s bytes)", record.repo_id, record.revision, record.bytes)
        records.append(record.as_dict())
        ctx.progress(done)
    return {"root": str(root), "datasets": records}
