"""Schema-faithful miniature datasets: a few generated rows per benchmark, written as hub dataset snapshots.

Each module writes one benchmark's hub repository (the one lmms-eval 0.7.3's task YAML names as
``dataset_path``) in the mirror's layout (see ``snapshot``): the same configs, splits, column names and
types as the real dataset, a few rows with PIL-drawn images. lmms-eval's own task code then runs on them
offline (``tests/evaluation/test_minis_*.py`` check its scores against hand-computed ones).
``python -m evaluation.minis --out DIR [--benchmark KEY ...]`` writes them.
"""

from pathlib import Path

from . import ai2d, chartqa, docvqa, gqa, mathvista, mmbench, mme, mmmu, pope, scienceqa, textvqa, vizwiz, vqav2

# Frontier benchmark key (evaluation.suites) -> module with REPO_ID, TASK and write(root, ...).
MINIS = {
    "pope": pope,
    "scienceqa_img": scienceqa,
    "chartqa": chartqa,
    "textvqa": textvqa,
    "docvqa": docvqa,
    "ai2d": ai2d,
    "gqa": gqa,
    "mme": mme,
    "vizwiz": vizwiz,
    "vqav2": vqav2,
    "mmmu": mmmu,
    "mmbench": mmbench,
    "mathvista": mathvista,
}


def write_all(root: str | Path, benchmarks: list[str] | None = None, seed: int = 0) -> dict[str, Path]:
    """Write the minis of ``benchmarks`` (all by default) under ``root``; returns key -> repository folder."""
    keys = list(MINIS) if benchmarks is None else benchmarks
    unknown = [key for key in keys if key not in MINIS]
    if unknown:
        raise ValueError(f"no miniature for {', '.join(unknown)}; choose from {', '.join(MINIS)}")
    return {key: MINIS[key].write(root, seed=seed) for key in keys}
