"""The environment is exactly the lock, and the locks are complete, hashed and made from requirements.in.

requirements.in is the human-edited list; `make lock` compiles it (uv) into requirements.txt (CPU),
requirements-gpu.txt (CUDA torch) and requirements-uv.txt (the installer's bootstrap). These tests
read those files and the installed distributions; none of them needs the network.
"""

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
CPU_LOCK, GPU_LOCK, UV_LOCK = (REPO / name for name in ("requirements.txt", "requirements-gpu.txt", "requirements-uv.txt"))
FIX = "run `make install` to sync .venv to requirements.txt, or edit requirements.in and run `make lock`"
ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>\S+)")
# What the CUDA build of torch pulls in beyond the CPU build, plus the torchvision the GPU lock adds.
GPU_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|triton|torchvision)$")


def lock_entries(path: Path) -> dict[str, tuple[str, set[str]]]:
    """{canonical name: (version, sha256 hashes)} of a `uv pip compile --generate-hashes` file."""
    entries: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith((" ", "\t")):
            assert current, f"{path.name}: continuation line without an entry: {line!r}"
            entries[current][1].update(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
            continue
        match = ENTRY.match(line)
        assert match, f"{path.name}: not an exact pin: {line!r} (locks hold only name==version entries)"
        current = canonicalize_name(match["name"])
        assert current not in entries, f"{path.name}: {current} is pinned twice"
        entries[current] = (match["version"], set())
    return entries


def pins(path: Path) -> dict[str, str]:
    return {name: version for name, (version, _) in lock_entries(path).items()}


def requirement_lines(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def installed() -> dict[str, str]:
    """Distributions of this interpreter's environment (not of PYTHONPATH entries such as the repo)."""
    site = {Path(entry) for entry in sys.path if entry.endswith("site-packages")}
    found = {}
    for distribution in importlib.metadata.distributions():
        location = Path(str(distribution.locate_file(""))).resolve()
        if site and location not in {path.resolve() for path in site}:
            continue
        found[canonicalize_name(distribution.metadata["Name"])] = distribution.version
    return found


def test_environment_is_exactly_the_cpu_lock():
    assert sys.prefix != sys.base_prefix, f"the tests run outside a virtual environment ({sys.prefix}): {FIX}"
    locked, present = pins(CPU_LOCK), installed()
    problems = [f"missing: {name}=={locked[name]}" for name in sorted(locked.keys() - present.keys())]
    problems += [f"not in the lock: {name}=={present[name]}" for name in sorted(present.keys() - locked.keys())]
    problems += [
        f"{name}: installed {present[name]}, locked {locked[name]}"
        for name in sorted(locked.keys() & present.keys())
        if present[name] != locked[name]
    ]
    assert not problems, f"{sys.prefix} differs from requirements.txt: " + "; ".join(problems) + f". To fix: {FIX}."


@pytest.mark.parametrize("lock", [CPU_LOCK, GPU_LOCK, UV_LOCK], ids=lambda path: path.name)
def test_every_entry_is_pinned_with_hashes(lock):
    entries = lock_entries(lock)
    assert entries, f"{lock.name} is empty"
    unhashed = sorted(name for name, (_, hashes) in entries.items() if not hashes)
    assert not unhashed, f"{lock.name}: entries without --hash: {unhashed}; regenerate it with `make lock`"
    text = lock.read_text()
    assert "#    make lock" in text, f"{lock.name} was not written by `make lock`"
    assert not re.search(r"^\s*(-e|--index-url|--extra-index-url|\S+ @ )", text, flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("lock", "overrides"),
    [(CPU_LOCK, []), (GPU_LOCK, requirement_lines(REPO / "requirements-gpu.in"))],
    ids=["cpu", "gpu"],
)
def test_lock_satisfies_every_line_of_requirements_in(lock, overrides):
    locked = pins(lock)
    overridden = {canonicalize_name(requirement.name): requirement for requirement in overrides}
    stale = []
    for requirement in requirement_lines(REPO / "requirements.in"):
        name = canonicalize_name(requirement.name)
        wanted = overridden.get(name, requirement)
        if name not in locked or not wanted.specifier.contains(locked[name], prereleases=True):
            stale.append(f"{wanted} (locked: {locked.get(name, 'absent')})")
    assert not stale, f"{lock.name} is older than requirements.in: {stale}; run `make lock`"


def test_gpu_lock_has_the_cpu_pins_plus_cuda_torch():
    cpu, gpu = pins(CPU_LOCK), pins(GPU_LOCK)
    different = {name: (cpu[name], gpu[name]) for name in cpu.keys() & gpu.keys() if cpu[name] != gpu[name]}
    assert different == {"torch": (gpu["torch"] + "+cpu", gpu["torch"])}, different
    assert not cpu.keys() - gpu.keys(), f"only in the CPU lock: {sorted(cpu.keys() - gpu.keys())}"
    extra = gpu.keys() - cpu.keys()
    assert "torchvision" in extra and "torchvision" not in cpu
    assert all(GPU_ONLY.match(name) for name in extra), f"unexpected GPU-only packages: {sorted(extra)}"
    assert lock_entries(GPU_LOCK)["torch"][1].isdisjoint(lock_entries(CPU_LOCK)["torch"][1])


def test_uv_bootstrap_is_the_locked_uv():
    bootstrap = lock_entries(UV_LOCK)
    assert set(bootstrap) == {"uv"}
    assert bootstrap["uv"] == lock_entries(CPU_LOCK)["uv"], "requirements-uv.txt and requirements.txt disagree: `make lock`"


def declared_runtime_dependencies(distribution: str) -> list[Requirement]:
    environment = default_environment() | {"extra": ""}
    requirements = [Requirement(line) for line in importlib.metadata.requires(distribution) or []]
    return [r for r in requirements if r.marker is None or r.marker.evaluate(environment)]


def test_lmms_eval_dependencies_are_installed_or_deliberately_excluded():
    excluded = {canonicalize_name(r.name) for r in requirement_lines(REPO / "requirements-excludes.txt")}
    excluded_here = excluded | {"torchvision"}  # the CPU lock's own exclusion (Makefile, `lock`)
    present = installed()
    declared = {canonicalize_name(r.name): r for r in declared_runtime_dependencies("lmms-eval")}
    not_declared = sorted(excluded - declared.keys())
    assert not not_declared, f"requirements-excludes.txt names what lmms-eval no longer declares: {not_declared}"
    unmet = [
        f"{requirement} (installed: {present.get(name, 'absent')})"
        for name, requirement in sorted(declared.items())
        if name not in excluded_here
        and (name not in present or not requirement.specifier.contains(present[name], prereleases=True))
    ]
    assert not unmet, f"lmms-eval's declared dependencies not met and not excluded: {unmet}; {FIX}"
    leaked = sorted(name for name in excluded_here if name in present)
    assert not leaked, f"excluded from the lock but installed: {leaked}; {FIX}"


def test_filelock_still_has_the_module_lmms_eval_patches():
    # lmms_eval.evaluator imports filelock._api at start-up; filelock 4 removed it (requirements.in).
    import filelock._api

    assert hasattr(filelock._api, "FileLockMeta") and hasattr(filelock._api, "BaseFileLock")


def test_installed_modules_are_compiled_at_install_time():
    # With PYTHONDONTWRITEBYTECODE=1 (set on the development VMs) Python never writes .pyc files, so
    # `make install` compiles them (uv --compile-bytecode); otherwise every process start recompiles.
    import importlib.util

    import django
    import pandas

    missing = [m.__name__ for m in (pandas, django) if not Path(importlib.util.cache_from_source(m.__file__)).exists()]
    assert not missing, f"no bytecode for {missing}: {FIX}"
