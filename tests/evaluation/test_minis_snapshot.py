"""The minis are written in the mirror's layout: hub README configs, parquet per split, and the manifest."""

import hashlib
import json

import pytest

from evaluation.datasets import SOURCES, check_folder
from evaluation.minis import MINIS, write_all
from evaluation.minis.__main__ import main


def test_the_command_writes_each_mini_under_its_repo_id_with_a_manifest_over_its_files(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--benchmark", "chartqa", "--benchmark", "mme", "--benchmark", "mathvista",
                 "--benchmark", "mmbench"]) == 0
    assert sorted(line.split("\t")[1] for line in capsys.readouterr().out.splitlines()) == [
        "AI4Math/MathVista", "lmms-lab-encoder/ChartQA", "lmms-lab-encoder/MMBench", "lmms-lab-encoder/MME"]
    folder = tmp_path / "lmms-lab-encoder" / "ChartQA"
    manifest = json.loads((folder / ".frontier-mirror.json").read_text())
    on_disk = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    assert sorted(manifest["files"]) == [name for name in on_disk if name != ".frontier-mirror.json"]
    assert sorted(manifest["files"]) == ["README.md", "data/test-00000-of-00001.parquet"]
    for name, sha in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == sha
    lines = "".join(f"{name}:{sha}\n" for name, sha in sorted(manifest["files"].items()))
    assert manifest["fingerprint"] == hashlib.sha256(lines.encode()).hexdigest()
    assert manifest["bytes"] == sum((folder / name).stat().st_size for name in manifest["files"])
    assert (manifest["repo_id"], manifest["revision"], manifest["source"]) == (
        "lmms-lab-encoder/ChartQA", "generated:frontier-minis@1", "generated")
    readme = (folder / "README.md").read_text()
    assert readme.startswith("---\n") and "configs:\n- config_name: default\n  data_files:\n" in readme


def test_each_mini_is_a_valid_mirror_folder_of_the_repo_its_benchmark_reads(tmp_path):
    for key, folder in write_all(tmp_path).items():
        assert MINIS[key].REPO_ID == SOURCES[key].repo_id and MINIS[key].TASK == SOURCES[key].task
        assert folder == tmp_path.resolve() / SOURCES[key].repo_id
        manifest, problem = check_folder(folder, SOURCES[key].repo_id, verify=True)
        assert problem == "" and manifest["source"] == "generated", (key, problem)


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    first = json.loads((write_all(tmp_path / "a", ["pope"])["pope"] / ".frontier-mirror.json").read_text())
    second = json.loads((write_all(tmp_path / "b", ["pope"])["pope"] / ".frontier-mirror.json").read_text())
    assert first["fingerprint"] == second["fingerprint"]


def test_unknown_benchmarks_are_refused():
    with pytest.raises(ValueError, match="no miniature for seedbench"):
        write_all("/nonexistent", ["seedbench", "mmbench"])
    # every benchmark of the catalog, the LLM-judged mmbench and mathvista included
    assert set(MINIS) == set(SOURCES) and len(MINIS) == 13
