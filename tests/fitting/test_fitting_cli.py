"""`python -m fitting` via subprocess."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PAPER_CSV = REPOSITORY / "fitting" / "data" / "paper_reasoning_scores.csv"


def run(*arguments):
    return subprocess.run([sys.executable, "-m", "fitting", *map(str, arguments)], cwd=REPOSITORY,
                          capture_output=True, text=True, timeout=120)


def test_fit_json_is_one_object_with_the_documented_keys():
    completed = run("fit", PAPER_CSV, "--json", "--bootstrap", "300", "--seed", "1")
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert set(summary) == {"law", "params", "sse", "rmse", "r2", "mape", "active_bounds", "warnings", "ci",
                            "loso_mape", "method", "seconds"}
    assert summary["method"]["repeated_configurations"] == 0 and summary["method"]["checkpoints"] == 28
    assert set(summary["params"]) == {"A", "alpha", "beta", "D"}
    assert 0.0685 <= summary["params"]["alpha"] <= 0.0734 and summary["sse"] <= 3.8e-4
    assert summary["active_bounds"] == ["D=0"]
    low, high = summary["ci"]["alpha"]
    assert low < summary["params"]["alpha"] < high


def test_fit_table_and_additive_law():
    completed = run("fit", PAPER_CSV, "--law", "additive", "--bootstrap", "0")
    assert completed.returncode == 0
    assert "A / N^alpha + B / V^beta + D" in completed.stdout and "leave-one-size-out MAPE" in completed.stdout


def test_optimal_reports_allocations_with_intervals():
    completed = run("optimal", PAPER_CSV, "--q", "50", "--budget", "1e12", "--n-range", "0.5", "20",
                    "--bootstrap", "200", "--json")
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    allocation = summary["allocations"][0]
    assert 12 <= allocation["visual_tokens"] <= 16
    low, high = allocation["ci"]["n_params_b"]
    assert low < allocation["n_params_b"] < high
    assert 12 <= summary["token_optimum"]["visual_tokens"] <= 16


def test_plot_writes_a_standalone_page(tmp_path):
    output = tmp_path / "fit.html"
    completed = run("plot", PAPER_CSV, "-o", output, "--bootstrap", "100")
    assert completed.returncode == 0, completed.stderr
    page = output.read_text(encoding="utf-8")
    assert '<script src="http' not in page and 'src="https://cdn.plot.ly' not in page
    assert len(page) > 1_000_000  # plotly.js is embedded inline
    assert page.count('class="plotly-graph-div"') == 3


@pytest.mark.parametrize("arguments, message", [
    (("fit", "missing.csv"), "error: cannot read missing.csv"),
    (("fit", "BAD"), "error: cannot fit: llm_params_b must be > 0: rows [0] have -1"),
    (("optimal", PAPER_CSV, "--q", "0", "--budget", "1e3", "--bootstrap", "0"), "below the cheapest configuration"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, arguments, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(PAPER_CSV.read_text().replace("qwen1.5-chat,0.5,", "qwen1.5-chat,-1,", 1))
    completed = run(*[bad if a == "BAD" else a for a in arguments])
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "Traceback" not in completed.stderr
    assert message in completed.stderr
