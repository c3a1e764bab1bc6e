"""LLM judges: the benchmarks lmms-eval scores with a language model, run against a configured endpoint.

MMBench's ``gpt_eval_score`` asks a judge which option a free-form answer means; MathVista's
``llm_as_judge_eval`` asks it to extract the answer. lmms-eval 0.7.3 sends these requests to OpenAI by default
and, when the judge fails, quietly carries on: MMBench picks a *random* letter, MathVista scores an empty
extraction as the most similar choice. Frontier never lets that reach a leaderboard:

- **Which judge.** ``FRONTIER_JUDGE_URL`` (the base URL of any OpenAI-compatible server: a local vLLM or
  llama.cpp server in production, ``http://host:8000/v1``), ``FRONTIER_JUDGE_MODEL`` (the model it serves) and
  ``FRONTIER_JUDGE_API_KEY`` (optional; local servers take none). ``JudgeConfig.from_env`` reads them.
- **Transport.** While ``judge_transport(config)`` is active, lmms-eval's own judge code (the prompts, the
  retries, the answer parsing) runs unchanged, but its HTTP requests go to that endpoint through
  ``JudgeClient``; with no judge configured any judge request fails. A failed request raises ``JudgeFailed``, a
  ``BaseException`` on purpose: the task code's ``except Exception`` retry loops cannot swallow it and fall back
  to a random letter, and the harness turns it into ``JudgeUnavailable`` (failure class ``judge_unavailable``).
- **Without a judge** a benchmark with a rule-based variant runs that instead (MMBench: lmms-eval's
  ``mmbench_en_dev_static``, ``evaluation.suites.Benchmark.rule_based_task``), recorded as such; one without
  (MathVista) fails with ``judge_unavailable`` before the model runs.
- **Stamp.** ``judge_stamp`` records the kind (``llm`` or ``rule-based``), model, endpoint (without
  credentials), endpoint kind, the server's ``owned_by`` (vllm, llamacpp, ...), the sha256 of the judge prompt
  template lmms-eval renders, and the number of judge calls. ``judge_label`` names a judge for the pages, which
  never rank results of different judges together silently.
"""

import contextlib
import hashlib
import importlib
import os
import urllib.parse
from dataclasses import dataclass, field

import requests

from .errors import EvaluationError

ENDPOINT_KIND = "openai-chat-completions"
# Modules of lmms-eval 0.7.3 whose judge requests ``judge_transport`` routes, and what sends them.
MMBENCH_EVALS = "lmms_eval.tasks.mmbench.mmbench_evals"  # MMBench_Evaluator._post_request(payload)
MATHVISTA_EVALS = "lmms_eval.tasks.mathvista.mathvista_evals"  # MathVistaEvaluator.server.evaluate(request)
_HOW = ("Set FRONTIER_JUDGE_URL to an OpenAI-compatible server's base URL (for example a local vLLM or llama.cpp "
        "server, http://127.0.0.1:8000/v1) and FRONTIER_JUDGE_MODEL to the model it serves "
        "(FRONTIER_JUDGE_API_KEY if it needs a key) on the workers and restart them, then evaluate again")


class JudgeUnavailable(EvaluationError):
    """A benchmark needs an LLM judge and none answers: not configured, unreachable, or failing mid-run."""

    failure_class = "judge_unavailable"


class JudgeFailed(BaseException):
    """A judge request failed; passes through the task code's ``except Exception`` (see the module docstring)."""


@dataclass(frozen=True)
class JudgeConfig:
    url: str  # base URL, ".../v1"
    model: str
    api_key: str = field(default="", repr=False)
    timeout_s: float = 60.0

    def __post_init__(self):
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise JudgeUnavailable(f"FRONTIER_JUDGE_URL {self.url!r} is not an http(s) URL. {_HOW}.")
        if not self.model:
            raise JudgeUnavailable(f"FRONTIER_JUDGE_URL is set ({self.endpoint}) but FRONTIER_JUDGE_MODEL is not. "
                                   f"{_HOW}.")
        # People paste the full route; the base URL is what OpenAI clients take.
        object.__setattr__(self, "url", self.url.rstrip("/").removesuffix("/chat/completions"))

    @classmethod
    def from_env(cls, environ=None) -> "JudgeConfig | None":
        """The configured judge, None when FRONTIER_JUDGE_URL is unset; a half-set configuration raises
        ``JudgeUnavailable`` saying what is missing."""
        environ = os.environ if environ is None else environ
        url = environ.get("FRONTIER_JUDGE_URL", "").strip()
        if not url:
            return None
        return cls(url, environ.get("FRONTIER_JUDGE_MODEL", "").strip(), environ.get("FRONTIER_JUDGE_API_KEY", ""))

    @property
    def endpoint(self) -> str:
        """The URL without user:password, query or fragment: what stamps and messages show."""
        parsed = urllib.parse.urlsplit(self.url)
        host = parsed.hostname or ""
        netloc = f"{host}:{parsed.port}" if parsed.port else host
        return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))


class JudgeClient:
    """Chat-completion requests to one judge, counted; every failure raises ``JudgeFailed``."""

    def __init__(self, config: JudgeConfig):
        self.config, self.calls, self.server = config, 0, None
        self._session = requests.Session()
        if config.api_key:
            self._session.headers["Authorization"] = f"Bearer {config.api_key}"

    def probe(self) -> str | None:
        """Check the judge answers and serves the model (``GET /models``); returns its ``owned_by``. Raises
        ``JudgeUnavailable`` otherwise, before any model runs."""
        where = f"judge {self.config.model} at {self.config.endpoint}"
        try:
            response = self._session.get(f"{self.config.url}/models", timeout=min(self.config.timeout_s, 10))
            response.raise_for_status()
            served = {entry["id"]: entry.get("owned_by") for entry in response.json()["data"]}
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise JudgeUnavailable(f"{where} does not answer ({type(error).__name__}: {error}). Start it, or "
                                   f"check the URL. {_HOW}.") from error
        if self.config.model not in served:
            raise JudgeUnavailable(f"{where}: the server does not serve {self.config.model!r}; it serves "
                                   f"{', '.join(sorted(served)) or 'nothing'}. {_HOW}.")
        self.server = served[self.config.model]
        return self.server

    def chat(self, messages: list[dict], temperature: float = 0.0, max_tokens: int = 256, **extra) -> dict:
        """POST ``/chat/completions`` with this judge's model; the response's JSON."""
        payload = {**extra, "model": self.config.model, "messages": messages, "temperature": temperature,
                   "max_tokens": max_tokens}
        try:
            response = self._session.post(f"{self.config.url}/chat/completions", json=payload,
                                          timeout=self.config.timeout_s)
            response.raise_for_status()
            body = response.json()
            if not body["choices"][0]["message"]["content"].strip():
                raise ValueError("the judge answered an empty message")
        except (requests.RequestException, ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
            raise JudgeFailed(f"judge {self.config.model} at {self.config.endpoint} failed after {self.calls} "
                              f"answers: {type(error).__name__}: {error}") from error
        self.calls += 1
        return body


class _NoJudge:
    calls, server = 0, None

    def chat(self, *args, **kwargs):
        raise JudgeFailed(f"a task asked an LLM judge, and no judge is configured. {_HOW}.")


def _no_random_letters(extract):
    """MMBench's ``extract_answer_from_item``, except that where lmms-eval would draw a random letter (the judge
    answered three times, never with a usable letter) the evaluation stops with ``JudgeFailed``."""

    def extract_answer_from_item(self, item):
        letter, log = extract(self, item)
        if str(log).startswith("Failed to predict"):
            raise JudgeFailed(f"the judge gave no usable option letter for MMBench item {item.get('index')} in three "
                              f"tries (lmms-eval would draw a random letter); check the judge model follows the "
                              f"prompt, or use a stronger one")
        return letter, log

    return extract_answer_from_item


def _mathvista_server(client):
    from lmms_eval.llm_judge.base import ServerInterface
    from lmms_eval.llm_judge.protocol import Response

    class FrontierJudgeServer(ServerInterface):
        """lmms-eval's judge server interface, answered by ``client``."""

        def is_available(self) -> bool:
            return True

        def evaluate(self, request):
            config = request.config or self.config
            body = client.chat(self.prepare_messages(request), temperature=config.temperature,
                               max_tokens=config.max_tokens)
            return Response(content=body["choices"][0]["message"]["content"].strip(),
                            model_used=body.get("model", ""), usage=body.get("usage"), raw_response=body)

    return FrontierJudgeServer()


@contextlib.contextmanager
def judge_transport(config: JudgeConfig | None):
    """While active, lmms-eval's MMBench and MathVista judge requests go to ``config``'s endpoint (with None,
    they fail); yields the client (``.calls``). Imports the two modules (the task code imports them anyway)."""
    client = JudgeClient(config) if config is not None else _NoJudge()
    restore = []
    mmbench = importlib.import_module(MMBENCH_EVALS).MMBench_Evaluator
    restore.append((mmbench, "_post_request", mmbench.__dict__["_post_request"]))
    mmbench._post_request = lambda self, payload: client.chat(**{k: v for k, v in payload.items() if k != "model"})
    restore.append((mmbench, "extract_answer_from_item", mmbench.__dict__["extract_answer_from_item"]))
    mmbench.extract_answer_from_item = _no_random_letters(mmbench.__dict__["extract_answer_from_item"])
    try:
        mathvista = importlib.import_module(MATHVISTA_EVALS).MathVistaEvaluator
    except ImportError:  # Levenshtein missing: MathVista's own task loading reports it as an environment error
        mathvista = None
    if mathvista is not None:
        restore.append((mathvista, "server", mathvista.__dict__["server"]))
        mathvista.server = _mathvista_server(client)
    try:
        yield client
    finally:
        for owner, name, original in restore:
            setattr(owner, name, original)


def prompt_sha256(benchmark_key: str) -> str | None:
    """sha256 of the judge prompt template lmms-eval renders for a benchmark (placeholders for the question,
    options, prediction), None for a benchmark without one."""
    if benchmark_key == "mmbench":
        evaluator = importlib.import_module(MMBENCH_EVALS)
        template = evaluator.MMBench_Evaluator().build_prompt("{question}", "{options}", "{prediction}")
    elif benchmark_key == "mathvista":
        evaluals = importlib.import_module(MATHVISTA_EVALS)
        template = evaluals.MathVistaEvaluator.create_test_prompt(None, evaluals.DEMO_PROMPT, "{query}", "{response}")
    else:
        return None
    return hashlib.sha256(template.encode()).hexdigest()


def judge_stamp(benchmark_key: str, ran_task: str, rule_based: bool, client) -> dict:
    """The stamp's ``judge`` of a judged benchmark's result."""
    if rule_based:
        return {"kind": "rule-based", "task": ran_task,
                "rule": "lmms-eval's rule-based answer extraction (no LLM judge was configured)"}
    return {"kind": "llm", "model": client.config.model, "endpoint": client.config.endpoint,
            "endpoint_kind": ENDPOINT_KIND, "server": client.server, "prompt_sha256": prompt_sha256(benchmark_key),
            "calls": client.calls}


def judge_label(judge: dict | None) -> str | None:
    """How pages name a judge: None (no judge), "rule-based", or "<model> (prompt <sha12>)"."""
    if not judge or judge.get("kind") in (None, "none"):
        return None
    if judge["kind"] == "rule-based":
        return "rule-based"
    return f"{judge.get('model')} (prompt {str(judge.get('prompt_sha256'))[:12]})"


def judged_benchmark(task: str):
    """The catalog benchmark whose task is ``task`` when an LLM judges its metrics, else None."""
    from .suites import BENCHMARK_BY_TASK
    from .task_identity import LLM_JUDGED_METRICS

    benchmark = BENCHMARK_BY_TASK.get(task)
    judged = benchmark is not None and benchmark.task == task and set(benchmark.metrics) & LLM_JUDGED_METRICS
    return benchmark if judged else None


def plan(tasks: list[str], environ=None) -> tuple[JudgeConfig | None, dict[str, str], bool]:
    """(the judge, {requested task: task to run}, whether any task is LLM-judged) for lmms-eval task names:
    with no judge configured a judged benchmark runs its rule-based task or raises ``JudgeUnavailable``."""
    judged = {task: judged_benchmark(task) for task in tasks}
    if not any(judged.values()):
        return None, {task: task for task in tasks}, False
    config = JudgeConfig.from_env(environ)
    ran = {}
    for task, benchmark in judged.items():
        if benchmark is None or config is not None:
            ran[task] = task
        elif benchmark.rule_based_task:
            ran[task] = benchmark.rule_based_task
        else:
            raise JudgeUnavailable(f"benchmark {benchmark.key} ({task}) is scored by an LLM judge, lmms-eval has no "
                                   f"rule-based variant of it, and no judge is configured. {_HOW}.")
    return config, ran, config is not None


def stamp_judges(stamp_tasks: dict, ran: dict[str, str], client) -> None:
    """Put the judge each judged benchmark used into the stamp's ``tasks`` entries (keyed by the task run)."""
    for task, ran_task in ran.items():
        benchmark = judged_benchmark(task)
        if benchmark is not None and ran_task in stamp_tasks:
            stamp_tasks[ran_task]["judge"] = judge_stamp(benchmark.key, ran_task, ran_task != task, client)


def current_judge_label(task: str, config: JudgeConfig | None) -> str | None:
    """The ``judge_label`` a result of ``task`` evaluated here now would carry under ``config`` (None: the task is
    not LLM-judged, or it cannot run without a judge); for deciding whether an earlier result can stand in."""
    benchmark = judged_benchmark(task)
    if benchmark is None:
        return None
    if config is None:
        return "rule-based" if benchmark.rule_based_task else None
    return judge_label({"kind": "llm", "model": config.model, "prompt_sha256": prompt_sha256(benchmark.key)})
