"""``python -m evaluation run`` in a subprocess: the JSON it prints is the worker's outcome."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(
        [sys.executable, "-m", "evaluation", "run", *arguments],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_run_prints_results_rows_and_stamp_as_json(quecc_checkpoint, synthetic_root):
    completed = run_cli(
        str(quecc_checkpoint),
        "--tasks",
        "shapes,glyphs",
        "--limit",
        "4",
        "--batch-size",
        "4",
        "--synthetic-dir",
        str(synthetic_root),
        "--json",
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    outcome = json.loads(completed.stdout)
    assert set(outcome["raw_results"]["results"]) == {"shapes", "glyphs"}
    assert {(row["task"], row["metric"]) for row in outcome["rows"]} >= {
        ("shapes", "exact_match"),
        ("glyphs", "exact_match"),
    }
    assert outcome["stamp"]["batch_size"] == 4 and outcome["stamp"]["flops_formula_version"]
    assert outcome["latency"]["samples"]
    assert "evaluated 8/8 requests" in completed.stderr


def test_run_reports_the_failure_class(quecc_checkpoint, synthetic_root):
    completed = run_cli(str(quecc_checkpoint), "--tasks", "gqa", "--limit", "2", "--synthetic-dir", str(synthetic_root))
    assert completed.returncode == 1
    assert "error (dataset_unavailable)" in completed.stderr and "'gqa'" in completed.stderr


def test_help_and_argument_errors_answer_without_importing_torch():
    """The CLI imports torch, transformers and lmms-eval only for the command that needs them: help and a
    mistyped option answer at once (it took ~5 s when the choices came from the torch modules)."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['evaluation'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('evaluation', run_name='__main__')\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "heavy = sorted(name for name in ('torch', 'transformers', 'lmms_eval') if name in sys.modules)\n"
        "print('imported:', heavy, 'exit:', code)\n"
    )
    for arguments, message in ((["--help"], "make-tiny"), (["train", "--help"], "--compressor"),
                               (["make-tiny", "--out", "x", "--compressor", "nope"], "invalid choice: 'nope'")):
        completed = subprocess.run([sys.executable, "-c", probe, *arguments], cwd=REPOSITORY, capture_output=True,
                                   text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
        assert "imported: [] exit:" in completed.stdout, (arguments, completed.stdout[-500:], completed.stderr[-500:])
        assert message in completed.stdout + completed.stderr
