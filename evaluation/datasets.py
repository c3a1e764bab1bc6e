"""The dataset mirror: the hub datasets the real benchmarks read, on shared storage at pinned revisions.

Workers never reach the Hugging Face hub (``HF_DATASETS_OFFLINE=1``): each lmms-eval task of ``SOURCES`` reads
its data from ``mirror_root() / <hub repo id>`` (e.g. ``.../lmms-lab-encoder/POPE``), which
``python -m evaluation datasets prefetch`` (``evaluation.prefetch``) fills on a machine with network access.

Layout of one dataset folder (the miniature datasets of ``evaluation.minis`` are written the same way):

- the hub dataset repository's files: ``README.md``, whose YAML front matter has a ``configs:`` list with
  ``data_files`` per split, and the parquet files, so ``datasets.load_dataset(folder, config, split=...)``
  reads it offline (prefetch keeps only the splits the task reads and trims ``README.md`` to them);
- ``.frontier-mirror.json`` (``write_manifest``): ``repo_id``, ``revision`` (the hub commit sha, or
  ``generated:<generator>@<version>``), ``source`` (``hub`` | ``generated``), ``files`` ({relative path:
  sha256}), ``bytes``, ``fingerprint`` (``files_fingerprint``: sha256 of the sorted ``path:sha256\\n`` lines) and
  ``fetched_at`` (ISO time).

A folder without a valid manifest, or whose files no longer match it, is not present: ``check_folder`` says
why. The quick check compares the file list and sizes; ``verify=True`` also re-hashes every file.

Torch-free and Django-free: the web side imports it (the suite page shows which benchmarks can run).
"""

import datetime
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST_NAME = ".frontier-mirror.json"
MANIFEST_KEYS = ("repo_id", "revision", "source", "files", "bytes", "fingerprint", "fetched_at")
SOURCE_KINDS = ("hub", "generated")
PARTIAL_PREFIX = ".partial-"  # prefetch's temporary folders inside the mirror, never read as datasets


@dataclass(frozen=True)
class DatasetSource:
    """Where one benchmark's lmms-eval task reads its data (from lmms-eval 0.7.3's task YAML files)."""

    key: str  # benchmark key (evaluation.suites.BENCHMARKS)
    task: str  # lmms-eval task name
    repo_id: str  # the task's dataset_path: a hub dataset repository
    config: str | None  # the task's dataset_name
    splits: tuple[str, ...]  # the splits the task reads (test_split, validation_split, ...)
    revision: str | None = None  # pinned hub commit; None: prefetch resolves the current one and records it
    # Other (config, splits) of the same repository the task's code loads itself (GQA's images).
    extra_configs: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def configs(self) -> dict[str | None, tuple[str, ...]]:
        """Every config the task needs -> its splits."""
        return {self.config: self.splits, **dict(self.extra_configs)}


_ENCODER = "lmms-lab-encoder"
# tests/evaluation/test_datasets_mirror.py re-reads lmms-eval's installed YAML files and checks this table.
SOURCES: dict[str, DatasetSource] = {
    source.key: source
    for source in (
        DatasetSource("mme", "mme", f"{_ENCODER}/MME", None, ("test",)),
        DatasetSource(
            "gqa", "gqa", f"{_ENCODER}/GQA", "testdev_balanced_instructions", ("testdev",),
            extra_configs=(("testdev_balanced_images", ("testdev",)),),
        ),
        DatasetSource("ai2d", "ai2d", f"{_ENCODER}/ai2d", None, ("test",)),
        DatasetSource("mmbench", "mmbench_en_dev", f"{_ENCODER}/MMBench", "en", ("dev",)),
        DatasetSource("mmmu", "mmmu_val", f"{_ENCODER}/MMMU", None, ("validation",)),
        DatasetSource("scienceqa_img", "scienceqa_img", f"{_ENCODER}/ScienceQA", "ScienceQA-IMG", ("test",)),
        DatasetSource("mathvista", "mathvista_testmini_format", "AI4Math/MathVista", None, ("testmini",)),
        DatasetSource("pope", "pope", f"{_ENCODER}/POPE", None, ("test",)),
        DatasetSource("chartqa", "chartqa", f"{_ENCODER}/ChartQA", None, ("test",)),
        DatasetSource("textvqa", "textvqa_val", f"{_ENCODER}/textvqa", None, ("validation",)),
        DatasetSource("docvqa", "docvqa_val", f"{_ENCODER}/DocVQA", "DocVQA", ("validation",)),
        DatasetSource("vizwiz", "vizwiz_vqa_val", f"{_ENCODER}/VizWiz-VQA", None, ("val",)),
        DatasetSource("vqav2", "vqav2_val", f"{_ENCODER}/VQAv2", None, ("validation",)),
    )
}
SOURCE_BY_TASK: dict[str, DatasetSource] = {source.task: source for source in SOURCES.values()}
# The rule-based variant MMBench runs without an LLM judge (evaluation.suites, rule_based_task) reads the same data.
SOURCE_BY_TASK["mmbench_en_dev_static"] = SOURCES["mmbench"]


def prefetch_command(task: str) -> str:
    return f"python -m evaluation datasets prefetch --task {task}"


def mirror_root(environ=None) -> Path:
    """``FRONTIER_DATASETS_DIR``; default ``$FRONTIER_VAR_DIR/datasets-mirror`` (FRONTIER_VAR_DIR defaults to
    the repository's ``var/``, as in webapp/settings.py)."""
    environ = os.environ if environ is None else environ
    if environ.get("FRONTIER_DATASETS_DIR"):
        return Path(environ["FRONTIER_DATASETS_DIR"]).expanduser().resolve()
    var_dir = environ.get("FRONTIER_VAR_DIR") or str(Path(__file__).resolve().parent.parent / "var")
    return (Path(var_dir).expanduser() / "datasets-mirror").resolve()


def dataset_folder(repo_id: str, root: str | Path | None = None) -> Path:
    """The mirror folder of a hub dataset repository: ``root / <owner> / <name>``."""
    parts = repo_id.split("/")
    if not parts or any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise ValueError(f"not a hub repository id: {repo_id!r}")
    return Path(root if root is not None else mirror_root()).joinpath(*parts)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_fingerprint(files: dict[str, str]) -> str:
    """sha256 over the sorted (relative path, sha256) pairs: of the lines ``path:sha256\\n`` in path order."""
    return hashlib.sha256("".join(f"{path}:{sha}\n" for path, sha in sorted(files.items())).encode()).hexdigest()


def _data_files(folder: Path) -> list[Path]:
    """Every file of a dataset folder except the manifest, hidden caches and prefetch leftovers."""
    return sorted(
        path for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def write_manifest(folder: str | Path, repo_id: str, revision: str, source: str) -> dict:
    """Hash every file of ``folder`` and write its ``.frontier-mirror.json`` (atomically); returns the manifest."""
    if source not in SOURCE_KINDS:
        raise ValueError(f"source must be one of {SOURCE_KINDS}, not {source!r}")
    if source == "generated" and not revision.startswith("generated:"):
        raise ValueError(f"a generated dataset's revision is 'generated:<generator>@<version>', not {revision!r}")
    folder = Path(folder)
    paths = _data_files(folder)
    files = {path.relative_to(folder).as_posix(): file_sha256(path) for path in paths}
    manifest = {
        "repo_id": repo_id,
        "revision": revision,
        "source": source,
        "files": files,
        "bytes": sum(path.stat().st_size for path in paths),
        "fingerprint": files_fingerprint(files),
        "fetched_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    partial = folder / (MANIFEST_NAME + ".tmp")
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(partial, folder / MANIFEST_NAME)
    return manifest


def check_folder(folder: str | Path, repo_id: str | None = None, verify: bool = False) -> tuple[dict | None, str]:
    """(manifest, "") when ``folder`` is a complete mirror of ``repo_id``, else (manifest or None, the problem)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None, f"no folder {folder}"
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except FileNotFoundError:
        return None, f"{folder} has no {MANIFEST_NAME} (not written by prefetch, or interrupted)"
    except (OSError, ValueError) as error:
        return None, f"{folder / MANIFEST_NAME} is unreadable: {error}"
    missing_keys = [key for key in MANIFEST_KEYS if not isinstance(manifest, dict) or key not in manifest]
    if missing_keys:
        return None, f"{folder / MANIFEST_NAME} lacks {', '.join(missing_keys)}"
    if repo_id is not None and manifest["repo_id"] != repo_id:
        return manifest, f"{folder} holds {manifest['repo_id']!r}, not {repo_id!r}"
    files = manifest["files"]
    if not isinstance(files, dict) or not files or manifest["fingerprint"] != files_fingerprint(files):
        return manifest, f"{folder / MANIFEST_NAME} is inconsistent (its fingerprint does not match its file list)"
    actual = {path.relative_to(folder).as_posix(): path for path in _data_files(folder)}
    missing, extra = sorted(set(files) - set(actual)), sorted(set(actual) - set(files))
    if missing or extra:
        what = [f"missing {', '.join(missing[:3])}" if missing else "",
                f"unlisted {', '.join(extra[:3])}" if extra else ""]
        return manifest, f"{folder} no longer matches its manifest: " + "; ".join(filter(None, what))
    if sum(path.stat().st_size for path in actual.values()) != manifest["bytes"]:
        return manifest, f"{folder} no longer matches its manifest: the files' sizes changed"
    if verify:
        changed = sorted(name for name, path in actual.items() if file_sha256(path) != files[name])
        if changed:
            return manifest, f"{folder} no longer matches its manifest: {', '.join(changed[:3])} changed"
    return manifest, ""


@dataclass(frozen=True)
class MirrorRecord:
    """One benchmark's data in the mirror (``present`` False: ``problem`` says why)."""

    key: str
    task: str
    repo_id: str
    folder: str
    present: bool
    revision: str | None
    bytes: int | None
    fingerprint: str | None
    problem: str
    prefetch: str  # the command that fills it

    def as_dict(self) -> dict:
        return asdict(self)


def source_status(source: DatasetSource, root: str | Path | None = None, verify: bool = False) -> MirrorRecord:
    folder = dataset_folder(source.repo_id, root)
    manifest, problem = check_folder(folder, source.repo_id, verify=verify)
    if not problem and source.revision is not None and manifest["revision"] != source.revision:
        problem = f"{folder} holds revision {manifest['revision']}, not the pinned {source.revision}"
    return MirrorRecord(
        key=source.key,
        task=source.task,
        repo_id=source.repo_id,
        folder=str(folder),
        present=not problem,
        revision=manifest["revision"] if manifest else None,
        bytes=manifest["bytes"] if manifest else None,
        fingerprint=manifest["fingerprint"] if manifest else None,
        problem=problem,
        prefetch=prefetch_command(source.task),
    )


def mirror_status(root: str | Path | None = None, verify: bool = False, keys=None) -> list[MirrorRecord]:
    """A record per real benchmark (``SOURCES``, or only ``keys``), in table order."""
    return [source_status(source, root, verify) for key, source in SOURCES.items() if keys is None or key in keys]


def format_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"
