"""The real benchmarks end to end through a real worker, offline, on their miniature datasets (issue #18).

The 13 minis of ``evaluation.minis`` are written into a temporary dataset mirror (``FRONTIER_DATASETS_DIR``);
one worker (queues cpu, gpu-eval; ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``; its LLM judge a
``tests/judge_server.py`` server here, ``FRONTIER_JUDGE_URL``) validates a tiny checkpoint uploaded through the
REST API and evaluates it on the suites that hold the 13 real benchmarks (reasoning, ocr, compressor_table). Then:

- every mini's benchmark succeeds, and each stored metric equals the one computed by hand
  (``tests/minis_expected.py``) from the model's answers. The tiny model is real (random layers; its LLM is
  rewired to answer "yes" or "no" and stop, see ``answer_yes_or_no``), so its answers are not known in
  advance: they are generated here, in this process, by the same ``CheckpointEvaluator`` the worker uses (same
  batch size, same lmms-eval task on the same mirror folder, same judge) run with ``log_samples`` on; only its
  answers (and, for MMMU, the letters lmms-eval draws at random for responses that name none) are taken from it.
  The judge's replies are fixed (``judge_reply``), so the hand rules know them;
- every stored result's stamp is complete: ``datasets[task]`` has the repository, the ``generated:...``
  revision and the mirror manifest's fingerprint; ``lmms_eval_version``, ``prompt_format`` and
  ``image_preprocessing`` are there;
- with the mirror emptied, a new evaluation of each suite fails every real benchmark the same way, as
  ``GET /api/v1/evaluations/<id>/`` shows.
"""

import importlib.metadata
import json
import shutil

import pytest
from django.contrib.auth import get_user_model
from frontier_processes import archive_of, wait_for
from judge_server import JudgeServer
from minis_expected import hand_scores

from evaluation.datasets import MANIFEST_NAME, SOURCES, dataset_folder, prefetch_command
from evaluation.judges import JudgeConfig, judge_transport
from evaluation.minis import MINIS, write_all
from evaluation.suites import BENCHMARKS
from webapp.jobs.models import Job
from webapp.registry.models import Checkpoint, CheckpointStatus, HarnessOutput

pytestmark = pytest.mark.integration

SUITES = ("reasoning", "ocr", "compressor_table")
REAL = sorted(key for key, benchmark in BENCHMARKS.items() if benchmark.suite in SUITES)  # the 13


@pytest.fixture
def all_real_suites(transactional_db):
    """The database's suites, synced from the catalog, include compressor_table (VizWiz, VQAv2 and five of
    reasoning's benchmarks)."""
    from webapp.registry.catalog import DEFAULT_SUITES
    from webapp.registry.services import benchmark_catalog_sync

    assert set(SUITES) <= set(DEFAULT_SUITES)
    benchmark_catalog_sync()


def judge_reply(prompt: str) -> str:
    """The judge: MMBench's question (which option the answer means) is answered "A", MathVista's (extract the
    answer from the response) with the response itself."""
    if prompt.endswith("\nYour output: "):
        return "A"
    return prompt.removesuffix("\n\nExtracted answer: ").rsplit("\n\n", 1)[1]


def judge_options(key: str, docs, texts, drawn) -> dict:
    """The hand rule's extra knowledge: MMMU's random letters, the judge's replies (``judge_reply``)."""
    if key == "mmmu":
        return {"random_letters": drawn}
    if key == "mmbench":
        return {"judge_letters": {doc["index"]: "A" for doc in docs}}
    if key == "mathvista":
        return {"judge_extractions": {doc["pid"]: text.strip() for doc, text in zip(docs, texts)}}
    return {}


@pytest.fixture
def judge():
    with JudgeServer(judge_reply) as server:
        yield server


def answer_yes_or_no(folder):
    """Rewire a tiny llama checkpoint to answer every prompt that ends in "." (every real task's) with "yes" or
    "no", then stop. A random tiny model repeats tokens until max_new_tokens and scores 0 everywhere, which no
    hand count can tell from a wrong one; this one still decides with its random layers (the hidden state at the
    last prompt token picks yes or no, differently across questions), so POPE, MME and GQA get mixed scores.

    The LLM's residual stream carries the current token's embedding plus what the layers add: "." is embedded
    along dimension 0 (scale 1, so the layers' part matters), "yes" and "no" along dimension 1 (scale 50, so it
    dominates); the output head has rows only for "yes", "no" (dimension 0, plus a random direction that breaks
    the tie) and the end of sequence (dimension 1)."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    dot, yes, no = tokenizer.convert_tokens_to_ids([".", "yes", "no"])
    path = folder / "model.safetensors"
    weights = load_file(path)
    embedding = weights["language_model.model.embed_tokens.weight"]
    head = weights["language_model.lm_head.weight"]
    generator = torch.Generator().manual_seed(0)
    embedding[[dot, yes, no]] = 0.0
    embedding[dot, 0], embedding[yes, 1], embedding[no, 1] = 1.0, 50.0, 50.0
    head.zero_()
    for token in (yes, no):
        head[token] = torch.randn(head.shape[1], generator=generator)
        head[token, 0], head[token, 1] = 10.0, 0.0
    head[tokenizer.eos_token_id, 1] = 10.0
    save_file(weights, str(path), metadata={"format": "pt"})
    return folder


def wait_for_runs(client, run_ids: list[int], timeout: float) -> dict[int, dict]:
    """Wait until every benchmark job of the runs is terminal; their details from the API, by run id."""
    def all_terminal():
        details = [client.get(f"/api/v1/evaluations/{run_id}/").json() for run_id in run_ids]
        jobs = [row["job"] for detail in details for row in detail["benchmarks"]]
        return bool(jobs) and all(job.is_terminal for job in Job.objects.filter(pk__in=jobs))

    wait_for(all_terminal, timeout=timeout, interval=1, message=f"the evaluations {run_ids}")
    return {run_id: client.get(f"/api/v1/evaluations/{run_id}/").json() for run_id in run_ids}


def benchmark_rows(details: dict[int, dict]) -> dict[str, list[dict]]:
    """Per benchmark key, its rows in every run (a benchmark shared by reasoning and compressor_table has two)."""
    rows: dict[str, list[dict]] = {}
    for run_id, detail in details.items():
        for row in detail["benchmarks"]:
            rows.setdefault(row["benchmark"], []).append({**row, "run": run_id})
    assert sorted(rows) == REAL, sorted(rows)
    shared = {key for key, found in rows.items() if len(found) == 2}
    assert shared == {"gqa", "mmbench", "mme", "pope", "scienceqa_img"}, shared  # the paper's compressor table
    return rows


def assert_dataset_unavailable(row: dict) -> None:
    task = BENCHMARKS[row["benchmark"]].task
    assert (row["state"], row["failure_class"]) == ("failed", "dataset_unavailable"), row
    assert prefetch_command(task) in row["error"], row["error"]
    assert SOURCES[row["benchmark"]].repo_id in row["error"], row["error"]


def answers_in_this_process(checkpoint_folder, mirror, synthetic_dir, judge) -> dict[str, tuple]:
    """Per mini: (documents, the model's raw answers, MMMU's random letters, lmms-eval's results here), from the
    worker's own evaluator class run here with lmms-eval's sample log on (the harness runs it with the log off),
    MMBench's and MathVista's judge requests going to ``judge``."""
    from evaluation.harness import CheckpointEvaluator

    evaluator = CheckpointEvaluator(checkpoint_folder, datasets_dir=mirror, synthetic_dir=synthetic_dir)
    answers = {}
    for key in MINIS:
        task = SOURCES[key].task
        manager, loaded = evaluator.load_tasks([task])
        (task_object,) = loaded[task]
        with judge_transport(JudgeConfig(judge.url, judge.model)):
            raw = evaluator.lmms_evaluator.simple_evaluate(
                model=evaluator.lmm, tasks=[task_object], task_manager=manager, limit=None,
                batch_size=evaluator.lmm.batch_size, device=str(evaluator.device), log_samples=True,
                verbosity="WARNING", process_docs_parallel=1,
            )
        samples = sorted(raw["samples"][task], key=lambda sample: sample["doc_id"])
        docs = [task_object.eval_docs[sample["doc_id"]] for sample in samples]
        texts = [sample["resps"][0][0] if isinstance(sample["resps"][0], list) else sample["resps"][0]
                 for sample in samples]
        drawn = {sample["mmmu_acc"]["id"]: sample["mmmu_acc"]["parsed_pred"][0]
                 for sample in samples if "mmmu_acc" in sample}
        answers[key] = (docs, texts, drawn, raw["results"][task])
    return answers


def test_the_minis_run_end_to_end_through_a_worker_offline_with_hand_scores_and_complete_stamps(
    all_real_suites, start_worker, process_env, local_media, tmp_path, client_for, monkeypatch, judge
):
    from evaluation.tiny import make_tiny_checkpoint

    mirror = tmp_path / "mirror"
    folders = write_all(mirror)  # a few rows each (8; MME 12: two questions per image; MMBench 13 with copies)
    manifests = {key: json.loads((folder / MANIFEST_NAME).read_text()) for key, folder in folders.items()}
    checkpoint_folder = answer_yes_or_no(
        make_tiny_checkpoint(tmp_path / "tiny", compressor="quecc", tokens=16, llm_family="llama", seed=1))
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
               "LMMS_EVAL_DATASETS_CACHE": str(tmp_path / "hf-datasets")}
    for name, value in offline.items():
        monkeypatch.setenv(name, value)
    env = {**process_env, **offline, "MEDIA_ROOT": str(local_media), "FRONTIER_DATASETS_DIR": str(mirror),
           "FRONTIER_JUDGE_URL": judge.url, "FRONTIER_JUDGE_MODEL": judge.model}
    env.pop("FRONTIER_AUTO_EVAL_LIMIT", None)  # every row of every mini
    # lmms-eval's TextVQA aggregation writes ./submissions/: here, not into the repository (nor for this process)
    start_worker("minis", queues="cpu,gpu-eval", env=env, cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    client = client_for(get_user_model().objects.create_user("alice"))

    response = client.post(
        "/api/v1/checkpoints/",
        {"file": archive_of(checkpoint_folder), "name": "tiny quecc V=16 yes/no", "visibility": "private",
         "suites": list(SUITES)},
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    checkpoint_id = response.json()["id"]
    wait_for(
        lambda: Checkpoint.objects.get(pk=checkpoint_id).status in (CheckpointStatus.READY, CheckpointStatus.REJECTED),
        timeout=120, message="validation",
    )
    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    assert checkpoint.status == CheckpointStatus.READY, checkpoint.rejection_reason
    runs = {run.suite.name: run.pk for run in checkpoint.runs.all()}
    assert sorted(runs) == sorted(SUITES) and all(run.limit is None for run in checkpoint.runs.all())
    rows = benchmark_rows(wait_for_runs(client, list(runs.values()), timeout=420))

    # Every mini's benchmark succeeded in every suite, the LLM-judged two with the judge.
    assert set(MINIS) == set(REAL)
    assert all(row["state"] == "succeeded" for found in rows.values() for row in found), {
        key: [(row["state"], row["failure_class"], row["error"]) for row in found] for key, found in rows.items()}
    assert len(judge.requests) > 0  # the worker asked it (MMBench's yes/no answers name no option)

    # The stored scores are the hand-computed ones, on the answers the same model gives here.
    expected = answers_in_this_process(checkpoint_folder, mirror, tmp_path / "synthetic", judge)
    assert {text.strip() for key in ("pope", "mme", "gqa") for text in expected[key][1]} == {"yes", "no"}, {
        key: texts for key, (_, texts, _, _) in expected.items()}  # answers that a hand count can tell apart
    for key in MINIS:
        docs, texts, drawn, here = expected[key]
        hand = hand_scores(key, docs, texts, **judge_options(key, docs, texts, drawn))
        for metric in BENCHMARKS[key].metrics:
            assert metric in hand, (key, metric, hand)
        for row in rows[key]:  # in each suite that has it
            results = client.get("/api/v1/results/", {"run": row["run"], "benchmark": key}).json()
            stored = {result["metric"]: result for result in results.get("results", results)}
            for metric, value in hand.items():
                assert metric in stored, (key, metric, sorted(stored))
                assert abs(stored[metric]["value"] - value) <= 1e-9, (key, metric, stored[metric]["value"], value,
                                                                      here, texts)
                assert stored[metric]["n"] == len(docs), (key, metric, stored[metric]["n"], len(docs))

    # Complete stamps: the mirror data each result read, the harness version, the prompt and image handling.
    # Shared benchmarks were evaluated once: the five are evaluated in one suite and reused by the other (#18).
    outputs = HarnessOutput.objects.filter(run__checkpoint=checkpoint).select_related("benchmark", "run__suite")
    evaluated = {output.benchmark.key: output.stamp for output in outputs if "reused_from" not in output.stamp}
    reused = {output.benchmark.key: output.stamp for output in outputs if "reused_from" in output.stamp}
    reused_by = {output.benchmark.key: output.run.suite.name for output in outputs if "reused_from" in output.stamp}
    assert sorted(evaluated) == sorted(MINIS) and sorted(reused) == sorted(key for key, found in rows.items()
                                                                           if len(found) == 2), (evaluated, reused)
    assert all({stamp["reused_from"]["suite"], reused_by[key]} == {"reasoning", "compressor_table"}
               for key, stamp in reused.items()), reused  # whichever suite's job came first evaluated
    judge_stamps = {key: stamp["tasks"][BENCHMARKS[key].task]["judge"] for key, stamp in evaluated.items()
                    if key in ("mmbench", "mathvista")}
    for key, found in judge_stamps.items():
        assert (found["kind"], found["model"], found["endpoint"], found["server"]) == (
            "llm", judge.model, judge.url, judge.owned_by), (key, found)
        assert found["calls"] > 0 and len(found["prompt_sha256"]) == 64, (key, found)
    for key, stamp in [*evaluated.items(), *reused.items()]:
        source, manifest = SOURCES[key], manifests[key]
        assert stamp["datasets"] == {source.task: {
            "repo_id": source.repo_id, "revision": manifest["revision"], "fingerprint": manifest["fingerprint"]}}, key
        assert manifest["revision"].startswith("generated:") and manifest["repo_id"] == source.repo_id
        assert stamp["lmms_eval_version"] == importlib.metadata.version("lmms_eval"), key
        assert stamp["prompt_format"]["name"] and "template_sha256" in stamp["prompt_format"], key
        assert stamp["image_preprocessing"], key
        assert stamp["visual_tokens"] == 16 and stamp["model_args"]["compressor"] == "quecc", key

    # The mirror emptied: a new evaluation of each suite fails every real benchmark, saying how to fill it.
    for key in MINIS:
        shutil.rmtree(dataset_folder(SOURCES[key].repo_id, mirror))
    again = []
    for suite in SUITES:
        response = client.post("/api/v1/evaluations/", {"checkpoint": checkpoint_id, "suite": suite}, format="json")
        assert response.status_code == 201, response.json()
        again.append(response.json()["id"])
    details = wait_for_runs(client, again, timeout=120)
    for found in benchmark_rows(details).values():
        for row in found:
            assert_dataset_unavailable(row)
    assert all(detail["status"]["state"] == "failed" for detail in details.values()), details
