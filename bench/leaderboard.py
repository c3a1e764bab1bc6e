"""Leaderboard JSON at 16 concurrent clients on 10,000 (or more) checkpoints in PostgreSQL, cached and on
cache misses, against the same JSON served as a static file by the same server in the same run.

    .venv/bin/python bench/leaderboard.py [--checkpoints 10000 [100000 ...]] [--seconds 8] [--clients 16]

For each size: drops and recreates postgres://postgres@127.0.0.1:5432/frontier_bench (--database-url to
change), migrates, and bulk-inserts the checkpoints (10 LLMs × 5 compressors × 7 token counts, 90 %
public), one run each on the reasoning suite with its 10 metric rows (10 BenchmarkResult rows per
checkpoint) and a harness output with measured latency. Suite scores go through the code the refit
uses: `measured_suite_scores` on all the results at once and `measured_suite_scores_replace`;
then ANALYZE. The data version is then read both ways the design considered (the DataVersion row vs
max(updated_at) + count over the written tables), in-process.

The server is gunicorn (`--workers` gthread workers × `--threads` threads, keep-alive; on two
cores 2 × 6 beat 3 × 4 and 4 × 4 in trials) on 127.0.0.1 with the project's settings (DEBUG
off, LocMem cache per process, PostgreSQL with persistent connections). The client is one
asyncio process (aiohttp) with `--clients` concurrent connections, each sending its next request
when the previous answer is read, for `--seconds` per scenario, after a warm-up. Anonymous
requests (public and published rows). Scenarios:

  static         the leaderboard's page-1 JSON, written under STATIC_ROOT before the server
                 starts and served by WhiteNoise (run before and after the others)
  leaderboard    /api/v1/leaderboard/?suite=reasoning (page 1, default sort)
  bench-sort     the same sorted by a benchmark column (-bench:gqa)
  page           /leaderboard/?suite=reasoning, the HTML page (cached per data version)
  version        /api/v1/version/ (what pages poll)
  browse         a random page (of all of them) and sort key each request: response-cache misses, after
                 3 s of the same (each process reads each sort's column once per data version; those
                 first answers are timed on their own, in-process, and printed before the table)
  uncached       a new Q each request: a full miss, the frontier at that Q recomputed

Targets at the largest size: leaderboard, bench-sort and page p95 <= 100 ms and throughput
leaderboard / static and page / static >= 0.3 (cached); browse and uncached p95 <= 150 ms (misses,
issue #16). With two sizes or more it prints the growth exponent k (latency ∝ checkpoints^k) of the
cached and miss scenarios. No process is left behind: the server's process group is terminated
(then killed) on the way out, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "bench"))  # after the repository: bench/fitting.py must not shadow fitting

from serving import Server, load  # noqa: E402

CHECKPOINTS = 10_000
SIZES_B = (0.5, 1.8, 4.0, 7.0, 13.0)
FAMILIES = ("qwen1.5-chat", "llama-3")
COMPRESSORS = ("avgpool", "tokenpacker", "quecc", "prumerge", "mqt")
TOKENS = (1, 4, 16, 36, 64, 144, 576)
P95_TARGET_MS = 100.0
MISS_P95_TARGET_MS = 150.0  # a cache miss: a new Q (frontier), page or sort (issue #16)
RATIO_TARGET = 0.3
BROWSE_SORTS = ("-bench:gqa", "error", "flops", "-latency", "name", "-n,v", "bench:mme")


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict, *args: str) -> None:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def law_error(n_b: float, tokens: int, method: str) -> float:
    quality = {"avgpool": 0.0, "tokenpacker": 0.01, "quecc": 0.02, "prumerge": -0.01, "mqt": 0.005}[method]
    return 0.28 / (n_b ** 0.077 * tokens ** 0.015) + 0.1 - quality


def populate(seed: int, count: int = CHECKPOINTS, with_scores: bool = True) -> dict:
    """`count` checkpoints (10,000), 10 results each, suite scores through the refit's functions (unless
    `with_scores` is False: bench/refit.py leaves them to the refit); returns timings."""
    import numpy as np
    import pandas as pd
    from django.contrib.auth import get_user_model
    from django.db import connection

    from webapp.core.versioning import data_version_bump
    from webapp.leaderboard.scoring import measured_suite_scores
    from webapp.leaderboard.services import measured_suite_scores_replace
    from webapp.registry.models import (
        BenchmarkResult,
        BenchmarkSuite,
        Checkpoint,
        CheckpointStatus,
        Compressor,
        EvaluationRun,
        HarnessOutput,
        LanguageModel,
    )

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    suite = BenchmarkSuite.objects.get(name="reasoning")
    benchmarks = list(suite.benchmarks.order_by("key"))
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"user{index}") for index in range(50)]
    )
    llms = LanguageModel.objects.bulk_create([
        LanguageModel(name=f"{family}-{size:g}b", family=family, n_params=round(size * 1e9))
        for family in FAMILIES for size in SIZES_B
    ])
    compressors = Compressor.objects.bulk_create([Compressor(method=method, version="1") for method in COMPRESSORS])
    checkpoints = Checkpoint.objects.bulk_create([
        Checkpoint(
            owner=users[index % len(users)], name=f"ckpt-{index:05d}",
            llm=llms[index % len(llms)], compressor=compressors[(index // len(llms)) % len(compressors)],
            visual_tokens=TOKENS[(index // (len(llms) * len(compressors))) % len(TOKENS)],
            status=CheckpointStatus.READY, visibility="private" if index % 10 == 9 else "public",
        )
        for index in range(count)
    ], batch_size=2000)
    runs = EvaluationRun.objects.bulk_create(
        [EvaluationRun(checkpoint=checkpoint, suite=suite) for checkpoint in checkpoints], batch_size=2000
    )
    results, outputs = [], []
    for run, checkpoint in zip(runs, checkpoints, strict=True):
        n_b = checkpoint.llm.n_params / 1e9
        error = law_error(n_b, checkpoint.visual_tokens, checkpoint.compressor.method)
        for benchmark in benchmarks:
            score = float(np.clip(1 - error + rng.normal(0, 0.03), 0.01, 0.99))
            metric_scale = benchmark.full_scale / len(benchmark.metrics)
            for metric in benchmark.metrics:
                results.append(BenchmarkResult(run=run, benchmark=benchmark, metric=metric, value=score * metric_scale,
                                               stderr=0.01 * metric_scale, n=500))
        first_token = 0.02 + 0.004 * n_b * (1 + checkpoint.visual_tokens / 100) * rng.uniform(0.9, 1.1)
        outputs.append(HarnessOutput(run=run, benchmark=benchmarks[0], raw={}, stamp={
            "device": "cuda:0", "device_name": "NVIDIA H100",
            "latency": {"median_time_to_first_token_s": first_token, "median_decode_per_token_s": first_token / 8},
        }))
    BenchmarkResult.objects.bulk_create(results, batch_size=5000)
    HarnessOutput.objects.bulk_create(outputs, batch_size=2000)
    inserted = time.perf_counter() - started
    if not with_scores:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return {"insert_s": inserted, "results": len(results)}

    started = time.perf_counter()
    values = BenchmarkResult.objects.filter(run__suite=suite).values_list(
        "run__checkpoint_id", "benchmark__key", "metric", "value", "stderr", "higher_is_better"
    )
    frame = pd.DataFrame(list(values), columns=["checkpoint", "benchmark", "metric", "value", "stderr",
                                                "higher_is_better"])
    scores, _ = measured_suite_scores(frame, benchmarks, suite.name)
    rows = scores.to_dict("records")
    measured_suite_scores_replace(suite, rows)
    data_version_bump()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as autovacuum would gather after a bulk load
    scored = time.perf_counter() - started
    return {"insert_s": inserted, "scores_s": scored, "results": len(results), "scores": len(rows)}


def version_query_costs(repeats: int = 300) -> tuple[float, float]:
    """Median ms of the DataVersion read (not the process's remembered value) and of a
    max(updated_at) + count alternative."""
    from django.db import connection
    from django.db.models import Count, Max

    from webapp.core.versioning import data_version, data_version_forget
    from webapp.fits.models import ScalingLawFit
    from webapp.registry.models import BenchmarkResult, SuiteScore

    def alternative():
        return (
            SuiteScore.objects.aggregate(Max("updated_at"), Count("id")),
            BenchmarkResult.objects.aggregate(Max("id"), Count("id")),
            ScalingLawFit.objects.aggregate(Max("id")),
        )

    def row():
        data_version_forget()
        return data_version()

    timings = {}
    for name, read in (("row", row), ("aggregate", alternative)):
        read()
        samples = []
        for _ in range(repeats if name == "row" else repeats // 10):
            started = time.perf_counter()
            read()
            samples.append((time.perf_counter() - started) * 1000)
        timings[name] = statistics.median(samples)
    connection.close()
    return timings["row"], timings["aggregate"]


def render_static_copy(static_root: Path) -> Path:
    """The page-1 JSON exactly as the API renders it, as a file WhiteNoise will serve."""
    from django.test import Client

    response = Client(HTTP_HOST="127.0.0.1").get("/api/v1/leaderboard/", {"suite": "reasoning"})
    if response.status_code != 200:
        raise SystemExit(f"leaderboard answered {response.status_code}: {response.content[:500]!r}")
    path = static_root / "bench" / "leaderboard.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(response.content)
    return path


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def first_read_costs() -> dict[str, float]:
    """ms of the first answer after a data change, in this process (its memo and cache cleared): the points
    (count, frontier), then the first page of each browse sort (its column read and lexsort)."""
    from django.contrib.auth.models import AnonymousUser
    from django.core.cache import cache

    from webapp.leaderboard.selectors import LeaderboardQuery, RowFilter, leaderboard_page

    cache.clear()
    costs = {}
    for name in ("points", *BROWSE_SORTS):
        ordering = ("error",) if name == "points" else tuple(name.split(","))
        started = time.perf_counter()
        leaderboard_page(AnonymousUser(), LeaderboardQuery(RowFilter(suite="reasoning"), ordering=ordering, page=2))
        costs[name] = (time.perf_counter() - started) * 1000
    return costs


def measure(args, size: int, work: Path, env: dict) -> dict:
    """One size: a fresh database, populated; every scenario against a fresh server."""
    from django.conf import settings
    from django.db import connections

    recreate_database(args.database_url)
    server = None
    try:
        manage(env, "migrate", "--noinput", "-v", "0")
        counts = populate(args.seed, size)
        row_ms, aggregate_ms = version_query_costs()
        first = first_read_costs()
        static_kib = render_static_copy(Path(settings.STATIC_ROOT)).stat().st_size / 1024
        connections.close_all()
        server = Server(env, work / f"gunicorn-{size}.log", args.workers, args.threads)
        server.wait_ready()
        static_url = "/static/bench/leaderboard.json"
        rng, pages = random.Random(args.seed), max(1, int(size * 0.9) // 50)
        scenarios = {
            "static": lambda: static_url,
            "leaderboard": lambda: "/api/v1/leaderboard/?suite=reasoning",
            "bench-sort": lambda: "/api/v1/leaderboard/?suite=reasoning&ordering=-bench:gqa",
            "page": lambda: "/leaderboard/?suite=reasoning",
            "version": lambda: "/api/v1/version/",
            "browse": lambda: (f"/api/v1/leaderboard/?suite=reasoning&page={rng.randint(1, pages)}"
                               f"&ordering={rng.choice(BROWSE_SORTS)}"),
            "uncached": lambda: f"/api/v1/leaderboard/?suite=reasoning&q={rng.uniform(0, 1000):.6f}",
        }
        for path in (static_url, scenarios["leaderboard"](), scenarios["bench-sort"](), scenarios["page"]()):
            asyncio.run(load(server.url, lambda path=path: path, 1.0, args.clients))  # warm every worker
        # Each process reads every browse sort's column once per data version (first_read_costs): not timed.
        asyncio.run(load(server.url, scenarios["browse"], 3.0, args.clients))
        measured: dict[str, list[dict]] = {}
        for name in ["static", *[name for name in scenarios if name != "static"], "static"]:
            measured.setdefault(name, []).append(asyncio.run(load(server.url, scenarios[name], args.seconds,
                                                                   args.clients)))
    finally:
        if server is not None:
            server.stop()
        connections.close_all()
        if not args.keep_db:
            drop_database(args.database_url)
    print(f"data: {size:,} checkpoints, {counts['results']:,} results, {counts['scores']:,} suite scores "
          f"(insert {counts['insert_s']:.1f} s, scores through the refit's functions {counts['scores_s']:.1f} s); "
          f"PostgreSQL; page-1 JSON {static_kib:.1f} KiB")
    print(f"data version read: DataVersion row {row_ms:.2f} ms vs max(updated_at)+count aggregate "
          f"{aggregate_ms:.2f} ms (median, in-process)")
    print("first answer after a data change, per process (in-process ms): "
          + ", ".join(f"{name} {ms:.0f}" for name, ms in first.items()))
    print(f"{'scenario':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}  failures")
    for name, runs in measured.items():
        for run in runs:
            print(f"{name:<12} {run['requests']:>9} {run['rps']:>8.0f} {run['p50']:>8.1f} {run['p95']:>8.1f}  "
                  f"{run['failures'] or ''}")
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/frontier_bench")
    parser.add_argument("--seconds", type=float, default=8.0, help="per scenario")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn gthread worker processes")
    parser.add_argument("--threads", type=int, default=6, help="threads per worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[CHECKPOINTS],
                        help="sizes (10 results per checkpoint); the targets are judged at the last")
    parser.add_argument("--keep-db", action="store_true", help="leave the (last) database for inspection")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="frontier-bench-leaderboard-") as work:
        env = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL", "MEDIA_ROOT")}
        env.update(DATABASE_URL=args.database_url, FRONTIER_VAR_DIR=str(Path(work) / "var"),
                   DJANGO_SETTINGS_MODULE="webapp.settings", FRONTIER_THROTTLE_LEADERBOARD="1000000/second",
                   DEBUG="false")
        os.environ.update(env)
        recreate_database(args.database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        import django

        django.setup()
        print(f"server: gunicorn {args.workers} gthread workers x {args.threads} threads, keep-alive; "
              f"client: aiohttp, {args.clients} concurrent, {args.seconds:g} s per scenario, one process; "
              f"{os.cpu_count()} CPUs shared by server, client and PostgreSQL")
        sizes = sorted(set(args.checkpoints))
        runs = {size: measure(args, size, Path(work), env) for size in sizes}

    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        for name in ("leaderboard", "browse", "uncached"):
            slopes = [math.log(runs[high][name][0][q] / runs[low][name][0][q]) / math.log(high / low)
                      for q in ("p50", "p95")]
            print(f"growth {name:<11} {low:,} -> {high:,} checkpoints: "
                  f"p50 k = {slopes[0]:.2f}, p95 k = {slopes[1]:.2f}")
    measured, ok = runs[sizes[-1]], True
    static_rps = statistics.mean(run["rps"] for run in measured["static"])
    for name, target in (("leaderboard", P95_TARGET_MS), ("bench-sort", P95_TARGET_MS), ("page", P95_TARGET_MS),
                         ("browse", MISS_P95_TARGET_MS), ("uncached", MISS_P95_TARGET_MS)):
        run = measured[name][0]
        good = run["p95"] <= target and not run["failures"]
        ok &= good
        print(f"{name:<12} p95 {run['p95']:.1f} ms  target <= {target:g} ms at {sizes[-1]:,}  {verdict(good)}")
    for name in ("leaderboard", "page", "browse", "uncached"):
        ratio = measured[name][0]["rps"] / static_rps
        good = ratio >= RATIO_TARGET or name in ("browse", "uncached")
        ok &= good
        print(f"throughput {name} / static {ratio:.2f}" + (f"  target >= {RATIO_TARGET}  {verdict(good)}"
                                                          if name in ("leaderboard", "page") else "  (reported)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
