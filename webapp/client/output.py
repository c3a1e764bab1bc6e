"""How the CLI prints: tables, results as table/CSV/JSON, one-line descriptions of checkpoints and runs."""

from __future__ import annotations

import csv
import io
import json

TABLE_COLUMNS = ["run", "suite", "benchmark", "metric", "value", "stderr", "n"]
CSV_COLUMNS = ["id", "run", "checkpoint", "suite", "benchmark", "metric", "value", "stderr", "n",
               "higher_is_better", "created_at"]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_table(rows: list[dict], columns: list[str]) -> str:
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def format_results(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return "no results yet"
    return format_table(rows, TABLE_COLUMNS)


def describe_checkpoint(checkpoint: dict) -> str:
    line = f"checkpoint {checkpoint['id']} {checkpoint['name']!r}: {checkpoint['status']}"
    if checkpoint.get("llm_params"):
        line += (f"\n  N = {checkpoint['llm_params']:,} LLM parameters ({checkpoint['llm']}), "
                 f"V = {checkpoint['visual_tokens']} visual tokens, compressor {checkpoint['compressor']}")
    if checkpoint["status"] == "rejected":
        line += f"\n  rejected: {checkpoint['rejection_reason']}"
    return line


def describe_run(run: dict) -> str:
    status = run["status"]
    limit = f" (limit {run['limit']} per benchmark)" if run.get("limit") else ""
    progress = f"{status['progress_done']}/{status['progress_total'] or '?'} items"
    jobs = ", ".join(f"{count} {state}" for state, count in sorted(status["jobs"].items()))
    return f"run {run['id']} {run['suite']}{limit}: {status['state']}, {progress} ({jobs})"
