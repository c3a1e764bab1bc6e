"""Fill the dataset mirror (``evaluation.datasets``) from the Hugging Face hub, on a machine with network access.

``prefetch(source)`` resolves the revision (the source's pinned one, else the current commit), downloads
``README.md`` and the parquet files of the configs and splits the task reads into a temporary folder inside the
mirror (``.partial-*``), trims ``README.md``'s ``configs``/``dataset_info`` to those splits (so ``load_dataset``
does not look for the others), writes the manifest and renames the folder into place: a dataset folder is never
half written, and a failed prefetch leaves nothing behind.

Evaluation runs with ``HF_HUB_OFFLINE=1`` by default (``evaluation.offline``); prefetch goes online anyway, unless
``HF_HUB_OFFLINE`` was set to a true value by whoever started it. Offline, or when the hub cannot be reached,
it fails within seconds (no retries) with ``PrefetchError``, whose message says how to fill the mirror from a
machine that has hub access. Torch-free.
"""

import contextlib
import fnmatch
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from . import offline
from .datasets import (
    PARTIAL_PREFIX,
    SOURCE_BY_TASK,
    SOURCES,
    DatasetSource,
    MirrorRecord,
    dataset_folder,
    mirror_root,
    prefetch_command,
    source_status,
    write_manifest,
)
from .suites import BENCHMARK_BY_TASK, resolve_task_names

HUB_TIMEOUT_S = 10.0  # one request, no retries: offline answers in seconds


class PrefetchError(Exception):
    """A dataset could not be fetched into the mirror; the message says what to do."""

    failure_class = "dataset_unavailable"  # as evaluation.errors.DatasetUnavailable: what a prefetch job records


def sources_for(suite: str | None = None, tasks: list[str] | None = None) -> list[DatasetSource]:
    """The real benchmarks' sources of a suite, or of tasks (lmms-eval names or benchmark keys); generated
    tasks (the synthetic suites) need no download and are left out."""
    try:
        names = resolve_task_names([suite] if suite else list(tasks or []))
    except ValueError as error:
        raise PrefetchError(str(error)) from None
    chosen, unknown = [], []
    for name in names:
        if name in SOURCE_BY_TASK:
            chosen.append(SOURCE_BY_TASK[name])
        elif not (name in BENCHMARK_BY_TASK and BENCHMARK_BY_TASK[name].offline):
            unknown.append(name)
    if unknown:
        raise PrefetchError(
            f"no hub dataset is known for {', '.join(unknown)}; choose among the tasks "
            f"{', '.join(source.task for source in SOURCES.values())} (benchmark keys and suite names work too)"
        )
    return chosen


def _explicitly_offline() -> bool:
    """HF_HUB_OFFLINE set to a true value by the user (evaluation.offline's own default does not count)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value == "1" and "HF_HUB_OFFLINE" in offline.defaulted():
        return False
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def _no_hub_message(source: DatasetSource, root: Path, cause: str) -> str:
    return (
        f"cannot prefetch {source.repo_id} (task {source.task}): this machine has no access to the Hugging Face "
        f"hub ({cause}). On a machine that has it, run `{prefetch_command(source.task)}` (with "
        f"FRONTIER_DATASETS_DIR set to a folder there), then copy the folder {source.repo_id}/ it writes, "
        f"{'.frontier-mirror.json'} included, into FRONTIER_DATASETS_DIR here ({root / source.repo_id})."
    )


@contextlib.contextmanager
def _hub_online():
    """huggingface_hub with offline mode off (it reads HF_HUB_OFFLINE once, at import)."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _front_matter(readme: Path) -> tuple[dict, str]:
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}, text
    _, header, body = text.split("---", 2)
    return yaml.safe_load(header) or {}, body


def _trim_card(readme: Path, wanted: dict[str | None, tuple[str, ...]]) -> list[str]:
    """Keep only the wanted configs and splits in README.md's front matter; returns their data file patterns."""
    meta, body = _front_matter(readme)
    configs = meta.get("configs") or []
    by_name = {config.get("config_name", "default"): config for config in configs}
    patterns: list[str] = []
    kept_configs = []
    for name, splits in wanted.items():
        config = by_name.get(name or "default") or (configs[0] if name is None and len(configs) == 1 else None)
        if config is None:
            patterns += [f"*{split}-*.parquet" for split in splits] + [f"*{split}/*.parquet" for split in splits]
            continue
        data_files = config.get("data_files") or []
        if isinstance(data_files, dict | str):
            raise PrefetchError(f"{readme}: config {name!r} has data_files without splits; cannot choose splits")
        kept = [entry for entry in data_files if entry.get("split") in splits]
        missing = set(splits) - {entry.get("split") for entry in kept}
        if missing:
            raise PrefetchError(f"{readme}: config {name!r} has no split(s) {', '.join(sorted(missing))}")
        for entry in kept:
            paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            patterns += paths
        kept_configs.append({**config, "data_files": kept})
    if kept_configs:
        meta["configs"] = kept_configs
        info = meta.get("dataset_info")
        infos = info if isinstance(info, list) else [info] if isinstance(info, dict) else []
        names = {config.get("config_name", "default") for config in kept_configs}
        splits = {split for split_list in wanted.values() for split in split_list}
        infos = [dict(entry) for entry in infos if entry.get("config_name", "default") in names]
        for entry in infos:
            if "splits" in entry:
                entry["splits"] = [split for split in entry["splits"] if split.get("name") in splits]
        if info is not None:
            meta["dataset_info"] = infos if isinstance(info, list) else (infos[0] if infos else None)
            if meta["dataset_info"] is None:
                del meta["dataset_info"]
        readme.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---" + body, encoding="utf-8")
    return patterns


def _download(source: DatasetSource, revision: str | None, partial: Path, root: Path, endpoint: str | None) -> str:
    """Download into ``partial``; returns the commit sha."""
    import httpx2
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    no_hub = (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError, httpx2.TransportError)
    where = f"{source.repo_id}@{revision or 'main'}"
    try:
        with _hub_online():
            info = HfApi(endpoint=endpoint).dataset_info(source.repo_id, revision=revision, timeout=HUB_TIMEOUT_S)
            sha = info.sha
            common = dict(repo_type="dataset", revision=sha, local_dir=partial, endpoint=endpoint,
                          etag_timeout=HUB_TIMEOUT_S)
            snapshot_download(source.repo_id, allow_patterns=["README.md"], **common)
            readme = partial / "README.md"
            if not readme.is_file():
                raise PrefetchError(f"{where} has no README.md, so its configs and splits are unknown")
            patterns = _trim_card(readme, source.configs())
            names = [sibling.rfilename for sibling in info.siblings or []]
            if names and not any(fnmatch.fnmatch(name, pattern) for name in names for pattern in patterns):
                raise PrefetchError(f"{where}: no file matches {patterns}")
            snapshot_download(source.repo_id, allow_patterns=patterns, **common)
    except no_hub as error:
        raise PrefetchError(_no_hub_message(source, root, f"{type(error).__name__}: {error}")) from error
    except RevisionNotFoundError as error:
        raise PrefetchError(f"{where}: the repository has no such revision") from error
    except (RepositoryNotFoundError, GatedRepoError) as error:
        raise PrefetchError(
            f"{where}: no such dataset, or it is gated/private and this machine has no token with access "
            f"(`hf auth login`, or HF_TOKEN)"
        ) from error
    shutil.rmtree(partial / ".cache", ignore_errors=True)  # the hub client's bookkeeping, not dataset files
    return sha


def prefetch(source: DatasetSource, root: str | Path | None = None, revision: str | None = None) -> MirrorRecord:
    """Fetch ``source`` into the mirror at ``revision`` (default: its pinned one, else the hub's current one)."""
    root = Path(root) if root is not None else mirror_root()
    final = dataset_folder(source.repo_id, root)
    if _explicitly_offline():
        raise PrefetchError(_no_hub_message(source, root, "HF_HUB_OFFLINE is set"))
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=final.parent))
    old = final.parent / f"{partial.name}-replaced"
    try:
        sha = _download(source, revision or source.revision, partial, root, os.environ.get("HF_ENDPOINT") or None)
        write_manifest(partial, source.repo_id, sha, "hub")
        if final.exists():
            os.replace(final, old)  # the previous revision steps aside; it comes back if the rename fails
        try:
            os.replace(partial, final)
        except OSError:
            if old.exists():
                os.replace(old, final)
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(OSError):
            final.parent.rmdir()  # only when empty: the owner folder of a dataset that never arrived
    return source_status(source, root)
