"""Server-rendered pages. They write nothing themselves: their JavaScript calls the REST API with the
session cookie and the CSRF token, so the web forms, API clients and the CLI share one service.

What a page shows comes from the selectors behind the JSON APIs, with the query validated by the
same serializers, so a bad parameter gets the API's own message (and a 400). Pages with a live
region carry the data version they were rendered at; static/pages/common.js re-renders the region
when the version (or, while jobs run, their progress) moves."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse

import fitting
from evaluation.vlm_spec import COMPRESSOR_METHODS
from webapp.core.versioning import data_version, versioned_cache, versioned_memo
from webapp.jobs.models import Job, JobState
from webapp.jobs.selectors import ETA_METHOD
from webapp.leaderboard.api.serializers import (
    CompressorQuerySerializer,
    DeployQuerySerializer,
    FrontierQuerySerializer,
    LeaderboardQuerySerializer,
)
from webapp.leaderboard.selectors import (
    SCOPES,
    LeaderboardError,
    NoFitYet,
    compressor_table,
    deploy_recommendation,
    leaderboard_page,
    viewer_key,
)
from webapp.leaderboard.api.compare import CompareQuerySerializer
from webapp.leaderboard.selectors.compare import CompareError, checkpoint_comparison
from webapp.pages import selectors
from webapp.registry.selectors.samples import SamplesNotFound, harness_output_samples, visible_harness_output
from webapp.pages.tables import (
    COLUMNS_PARAM,
    column_style,
    given,
    has_values,
    leaderboard_columns,
    shown_column_keys,
    size_buckets,
    sort_headers,
    with_params,
)
from webapp.registry.models import BenchmarkSuite, CheckpointStatus, CompressorMethod, LanguageModel, Visibility
from webapp.registry.selectors import checkpoints_visible_to
from webapp.training.configs import DATASET_KINDS, HYPERPARAMETER_DEFAULTS
from webapp.training.selectors import (
    sweep_runs_with_scores,
    sweeps_readable_by,
    trained_checkpoint,
    training_runs_readable_by,
)

# Chunks stay well under the request size the server accepts (FRONTIER_UPLOAD_CHUNK_BYTES).
PAGE_CHUNK_BYTES = 8 * 1024**2
DEFAULT_SUITE = "reasoning"
PAGE_SIZES = (25, 50, 100, 200)
# Compressors a training run can learn (the MLP projector and "other" only describe uploads).
TRAINABLE_METHODS = [(value, label) for value, label in CompressorMethod.choices if value in COMPRESSOR_METHODS]
BASE_CHECKPOINTS_SHOWN = 200


def home(request):
    jobs = Job.objects.select_related("created_by")[:50] if request.user.is_staff else Job.objects.none()
    return render(request, "pages/home.html", {
        "jobs": jobs, "suites": selectors.overview_headline(request.user), "version": data_version(),
    })


@login_required
def upload(request):
    return render(request, "pages/upload.html", {
        "suites": BenchmarkSuite.objects.order_by("name"),
        "default_suites": settings.FRONTIER_DEFAULT_SUITES,
        "visibilities": Visibility.choices,
        "chunk_bytes": min(PAGE_CHUNK_BYTES, settings.FRONTIER_UPLOAD_CHUNK_BYTES),
    })


# --- Helpers ----------------------------------------------------------------------------------------


def _suite_names() -> list[str]:
    """Kept in this process per data version: every page asks."""
    names = versioned_memo(("suite-names",), lambda: tuple(BenchmarkSuite.objects.order_by("name").values_list(
        "name", flat=True)))
    return list(names)


def _suite_query(request, suites: list[str], drop: tuple[str, ...] = ()):
    """The given parameters, with the default suite when none is named."""
    query = given(request.GET, drop)
    if "suite" not in query:
        query["suite"] = DEFAULT_SUITE if DEFAULT_SUITE in suites or not suites else suites[0]
    return query


def _messages(errors, prefix: str = "") -> list[str]:
    """A serializer's errors as "field: message" lines, nested fields joined with dots."""
    if isinstance(errors, dict):
        return [line for key, value in errors.items()
                for line in _messages(value, f"{prefix}{key}." if key != "non_field_errors" else prefix)]
    if isinstance(errors, list):
        return [line for value in errors for line in _messages(value, prefix)]
    return [f"{prefix.rstrip('.')}: {errors}" if prefix else str(errors)]


def _suite_tabs(suites: list[str], query) -> list[dict]:
    # The column choice names the suite's benchmarks: another suite starts from its own (or its saved) choice.
    return [{"name": name, "current": name == query["suite"],
             "href": "?" + with_params(query, suite=name, page=None, **{COLUMNS_PARAM: None})}
            for name in suites]


# --- Leaderboard, frontier, compressors, deploy ------------------------------------------------------


def leaderboard(request):
    """The page around a body rendered once per data version, viewer and query: its 50 rows of
    template tags cost ~10 ms a request. The base template's per-request parts (the CSRF token of
    the sign-out form) are rendered each time."""
    suites = _suite_names()
    query = _suite_query(request, suites, drop=("format",))
    version = data_version()
    status, content = versioned_cache(
        ("leaderboard-content", viewer_key(request.user), sorted(query.lists()), suites),
        lambda: _leaderboard_content(request.user, suites, query, version), version=version,
    )
    return render(request, "pages/leaderboard.html", {"query": query, "content": content}, status=status)


def _leaderboard_content(user, suites: list[str], query, version: str) -> tuple[int, str]:
    context = {
        "version": version, "query": query, "tabs": _suite_tabs(suites, query),
        "scopes": [scope for scope in SCOPES if scope != "mine" or user.is_authenticated],
        "compressor_methods": CompressorMethod.choices, "page_sizes": PAGE_SIZES,
        "flops_versions": fitting.FLOPS_FORMULA_VERSIONS,
        "families": LanguageModel.objects.order_by("family").values_list("family", flat=True).distinct(),
        "size_links": size_buckets(query), "columns_param": query.get(COLUMNS_PARAM),
    }
    params = LeaderboardQuerySerializer(data=query)
    if not params.is_valid():
        return 400, render_to_string("pages/_leaderboard_content.html", {**context, "errors": _messages(params.errors)})
    try:
        page = leaderboard_page(user, params.query())
    except LeaderboardError as error:
        return 400, render_to_string("pages/_leaderboard_content.html", {**context, "errors": [str(error)]})
    columns = leaderboard_columns(page["benchmarks"], page["query_tokens"], page["flops_formula_version"])
    shown = shown_column_keys(columns, page["results"], query)
    picker = [
        {"key": column.key, "label": column.label, "shown": column.key in shown,
         "empty": not has_values(column, page["results"])}
        for column in columns if column.hideable
    ]
    # The exports hold every row the filters keep, in the page's order, whatever the page shown.
    export = with_params(query, page=None, page_size=None, **{COLUMNS_PARAM: None}, all="true")
    api = reverse("api-leaderboard")
    return 200, render_to_string("pages/_leaderboard_content.html", {
        **context, "page": page, "headers": sort_headers(columns, page["ordering"], query),
        "shown": shown, "default_shown": shown_column_keys(columns, page["results"], QueryDict()),
        "column_style": column_style(columns, shown), "picker": picker,
        "json_href": f"{api}?{export}", "csv_href": f"{api}?{export}&format=csv",
        "previous_href": "?" + with_params(query, page=page["page"] - 1) if page["page"] > 1 else None,
        "next_href": "?" + with_params(query, page=page["page"] + 1) if page["page"] < page["pages"] else None,
    })


def frontier(request):
    suites = _suite_names()
    query = _suite_query(request, suites, drop=("law", "q_custom"))
    if query.get("q") == "custom":  # the form's third choice: the number typed beside it
        query["q"] = request.GET.get("q_custom", "")
    params = FrontierQuerySerializer(data=query)
    laws = settings.FRONTIER_FIT_LAWS
    law = request.GET.get("law") if request.GET.get("law") in laws else laws[0]
    q = query.get("q", "50")
    context = {
        "version": data_version(), "query": query, "tabs": _suite_tabs(suites, query), "laws": laws, "law": law,
        "q": q, "q_custom": q not in ("0", "50"), "api_url": reverse("api-frontier"),
        "compressor_methods": CompressorMethod.choices, "flops_versions": fitting.FLOPS_FORMULA_VERSIONS,
        "flops": query.get("flops", fitting.DEFAULT_FLOPS_FORMULA),
        "errors": [] if params.is_valid() else _messages(params.errors),
    }
    return render(request, "pages/frontier.html", context, status=400 if context["errors"] else 200)


def suites(request):
    """A suite's benchmarks and which of them can run here (their data in the dataset mirror, or generated)."""
    names = _suite_names()
    query = _suite_query(request, names)
    if query["suite"] not in names:
        raise Http404(f"no suite {query['suite']!r}")
    benchmarks = selectors.suite_benchmarks_readiness(query["suite"])
    return render(request, "pages/suites.html", {
        "query": query, "tabs": _suite_tabs(names, query), "benchmarks": benchmarks,
        "runnable": sum(row["can_run"] for row in benchmarks), "mirror": settings.FRONTIER_DATASETS_DIR,
    })


def compressors(request):
    suites = _suite_names()
    query = _suite_query(request, suites)
    context = {"query": query, "tabs": _suite_tabs(suites, query), "q": query.get("q", "50"),
               "flops_versions": fitting.FLOPS_FORMULA_VERSIONS,
               "flops": query.get("flops", fitting.DEFAULT_FLOPS_FORMULA)}
    params = CompressorQuerySerializer(data=query)
    if not params.is_valid():
        return render(request, "pages/compressors.html", {**context, "errors": _messages(params.errors)}, status=400)
    table = compressor_table(params.validated_data["suite"], params.cost())
    residuals = [
        {"scope": scope["scope"], "laws": [{"law": law["law"], "residuals": law["residuals"]} for law in scope["laws"]]}
        for scope in table["scopes"]
    ]
    return render(request, "pages/compressors.html", {**context, "table": table, "residuals": residuals})


def deploy(request):
    """Answers once the form was sent (budget_kind given): which of the two budgets counts."""
    suites = _suite_names()
    budget_kind = request.GET.get("budget_kind", "flops")
    unused = "budget_latency_ms" if budget_kind == "flops" else "budget_flops"
    query = _suite_query(request, suites, drop=("budget_kind", unused))
    context = {
        "query": query, "suites": suites, "budget_kind": budget_kind, "laws": settings.FRONTIER_FIT_LAWS,
        "form_values": request.GET,
    }
    if "budget_kind" not in request.GET:
        return render(request, "pages/deploy.html", context)
    params = DeployQuerySerializer(data=query)
    if not params.is_valid():
        return render(request, "pages/deploy.html", {**context, "errors": _messages(params.errors)}, status=400)
    try:
        answer = deploy_recommendation(request.user, params.query())
    except NoFitYet as error:
        return render(request, "pages/deploy.html", {**context, "errors": [str(error)]}, status=409)
    except LeaderboardError as error:
        return render(request, "pages/deploy.html", {**context, "errors": [str(error)]}, status=400)
    return render(request, "pages/deploy.html", {**context, "answer": answer})


# --- Runs -------------------------------------------------------------------------------------------


@login_required
def queue(request):
    version = data_version()  # read first: a change while the page renders shows up at the next poll
    jobs = selectors.queue_jobs(request.user)
    evaluations = selectors.queue_evaluations(request.user)
    trainings = selectors.queue_trainings(request.user)
    return render(request, "pages/queue.html", {
        "version": version, **jobs, "eta_method": ETA_METHOD, "evaluations": evaluations, "trainings": trainings,
        "active": bool(jobs["jobs"]) or any(row["active"] for row in [*evaluations, *trainings]),
    })


def _not_visible(request, what: str):
    """What a visitor gets for a page they may not see: anonymous visitors the login page (as for a
    page that does not exist, so nothing is given away), logged-in users a 404."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    raise Http404(f"No such {what}, or it is not yours.")


# Checkpoint, evaluation, training and sweep pages are public when what they show is: anyone sees
# public ones, owners their own (registry.selectors.visible_to_owner, the rule the APIs use).


def checkpoint_detail(request, pk: int):
    version = data_version()
    story = selectors.checkpoint_page(request.user, pk, request.build_absolute_uri)
    if story is None:
        return _not_visible(request, "checkpoint")
    return render(request, "pages/checkpoint.html", {**story, "version": version})


def compare(request):
    """Two checkpoints item by item (webapp.leaderboard.selectors.compare); the form alone without a and b."""
    query = {key: request.GET.get(key, "") for key in ("a", "b", "benchmark")}
    context = {"query": query}
    if not (query["a"] or query["b"]):
        return render(request, "pages/compare.html", context)
    params = CompareQuerySerializer(data={key: value for key, value in query.items() if value})
    if not params.is_valid():
        return render(request, "pages/compare.html", {**context, "errors": _messages(params.errors)}, status=400)
    data = params.validated_data
    try:
        comparison = checkpoint_comparison(request.user, data["a"], data["b"], data.get("benchmark"))
    except CompareError as error:
        return render(request, "pages/compare.html", {**context, "errors": [str(error)]}, status=error.status)
    return render(request, "pages/compare.html", {**context, "comparison": comparison})


SAMPLES_PER_PAGE = 50


def evaluation_samples(request, pk: int, key: str):
    """One result's per-item records (prompt, prediction, target, scores), filterable (wrong only, by a score
    field), 50 a page; the same reads as GET /api/v1/evaluations/<id>/samples/<key>/."""
    query = {name: request.GET.get(name, "") for name in ("wrong", "field", "value", "page")}
    context = {"query": query, "run_id": pk, "key": key}
    try:
        output = visible_harness_output(request.user, pk, key)
    except SamplesNotFound as error:
        return render(request, "pages/samples.html", {**context, "errors": [str(error)]}, status=404)
    records = harness_output_samples(output, wrong=query["wrong"] == "true", field=query["field"] or None,
                                     value=query["value"] or None)
    page = Paginator(records, SAMPLES_PER_PAGE).get_page(query["page"] or 1)
    return render(request, "pages/samples.html", {**context, "output": output, "page": page,
                                                   "count": len(records)})


def evaluation_detail(request, pk: int):
    version = data_version()
    detail = selectors.evaluation_page(request.user, pk, request.build_absolute_uri)
    if detail is None:
        return _not_visible(request, "evaluation")
    return render(request, "pages/evaluation.html", {
        "detail": detail, "run": detail["run"], "can_manage": detail["can_manage"], "active": detail["active"],
        "version": version,
    })


# --- Training -------------------------------------------------------------------------------------------


def _training_form_context(user) -> dict:
    usable = checkpoints_visible_to(user).filter(status=CheckpointStatus.READY, published=False)
    return {
        "suites": BenchmarkSuite.objects.order_by("name"), "default_suites": settings.FRONTIER_DEFAULT_SUITES,
        "visibilities": Visibility.choices, "methods": TRAINABLE_METHODS, "dataset_kinds": DATASET_KINDS,
        "defaults": HYPERPARAMETER_DEFAULTS, "save_every": settings.FRONTIER_TRAINING_SAVE_EVERY,
        "base_checkpoints": usable.order_by("-id")[:BASE_CHECKPOINTS_SHOWN],
    }


@login_required
def training_new(request):
    return render(request, "pages/training_new.html", _training_form_context(request.user))


def training_detail(request, pk: int):
    run = training_runs_readable_by(request.user).filter(pk=pk).first()
    if run is None:
        return _not_visible(request, "training run")
    return render(request, "pages/training.html", {
        **selectors.training_summary(run), "checkpoint": trained_checkpoint(run),
        "api_url": reverse("api-training-detail", args=[run.pk]),
        "cancel_url": reverse("api-training-cancel", args=[run.pk]),
        "can_manage": request.user.is_authenticated and (request.user.is_staff or run.owner_id == request.user.pk),
    })


@login_required
def sweep_new(request):
    return render(request, "pages/sweep_new.html", _training_form_context(request.user))


def sweep_detail(request, pk: int):
    version = data_version()
    sweep = sweeps_readable_by(request.user).filter(pk=pk).first()
    if sweep is None:
        return _not_visible(request, "sweep")
    points = [
        {**selectors.training_summary(run), "suite_errors": errors} for run, errors in sweep_runs_with_scores(sweep)
    ]
    return render(request, "pages/sweep.html", {
        "sweep": sweep, "points": points, "version": version, "active": any(p["active"] for p in points),
        "done": sum(1 for point in points if point["run"].job.state == JobState.SUCCEEDED),
    })
