"""Query strings of the pages: only the parameters given, and the leaderboard's columns (sortable
headers, which of them are shown) and size buckets."""

from dataclasses import dataclass

from django.http import QueryDict

from evaluation.suites import benchmark_normalisation

# The leaderboard's column choice travels in the URL as ?cols=key,key (the optional columns shown);
# the page's JavaScript keeps it there and in localStorage. The APIs never see it.
COLUMNS_PARAM = "cols"


def given(query: QueryDict, drop: tuple[str, ...] = ()) -> QueryDict:
    """The parameters that have a value: an empty form field means "not given", as the APIs expect."""
    kept = QueryDict(mutable=True)
    for key, values in query.lists():
        values = [value for value in values if value.strip()]
        if values and key not in drop:
            kept.setlist(key, values)
    return kept


def with_params(query: QueryDict, **changes) -> str:
    """The query string with some parameters replaced (None removes one)."""
    changed = query.copy()
    for key, value in changes.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return changed.urlencode()


@dataclass(frozen=True)
class Column:
    key: str  # the column picker's name for it (and its CSS class, c-<key>)
    label: str
    sort_key: str
    title: str = ""
    descending_first: bool = False  # scores and badges: best first
    numeric: bool = True
    hideable: bool = True
    shown_by_default: bool = True

    @property
    def css_class(self) -> str:
        return "c-" + self.key.replace(":", "-")


def leaderboard_columns(benchmarks: list[str], query_tokens: float, formula: str = "v1") -> list[Column]:
    """The leaderboard's columns, each sortable by the API's sort key. What a researcher reads first
    comes first: the checkpoint, its error with the interval and the frontier badge (these three stay
    in place when the table scrolls sideways), then what it costs, then the per-benchmark scores."""
    return [
        Column("name", "Checkpoint", "name", numeric=False, hideable=False),
        Column("error", "Error ± stderr", "error", "Suite average normalised error ± its standard error", hideable=False),
        Column("on_frontier", "Frontier", "on_frontier", "On the measured Pareto frontier (error vs FLOPs at Q)",
               descending_first=True),
        Column("n", "N", "n_params", "LLM parameters counted from the weights (tied embeddings once); a published "
               "row of a model Frontier does not know shows its nominal size, marked ≈"),
        Column("v", "V", "visual_tokens", "Visual tokens"),
        Column("compressor", "Compressor", "compressor", numeric=False),
        Column("flops", f"FLOPs Q={query_tokens:g}", "flops", f"Inference FLOPs 2·N·({query_tokens:g} + V + G)"
               + (f" (formula v2: QueCC + 2·N·{query_tokens:g}, its query pass)" if formula == "v2" else "")),
        Column("flops_q0", "FLOPs Q=0", "flops_q0", "Inference FLOPs 2·N·(V + G): cached query", shown_by_default=False),
        Column("latency", "Latency", "latency_first_token_ms", "Measured median time to first token"),
        *[Column(f"bench:{key}", key, f"bench:{key}",
                 f"Normalised score on {key}: {benchmark_normalisation(key)} (error = 1 − score)",
                 descending_first=True)
          for key in benchmarks],
        Column("llm", "LLM", "llm", numeric=False),
        Column("status", "Status", "status", numeric=False, shown_by_default=False),
        Column("owner", "Owner", "owner", numeric=False),
    ]


def has_values(column: Column, rows: list[dict]) -> bool:
    """Whether any row has something to show in a column that is often empty (benchmark scores are
    missing on published entries, latency where no harness measured it)."""
    if column.key.startswith("bench:"):
        benchmark = column.key.removeprefix("bench:")
        return any((row["scores"] or {}).get(benchmark) is not None for row in rows)
    if column.key == "latency":
        return any(row["latency_first_token_ms"] is not None for row in rows)
    return True


def shown_column_keys(columns: list[Column], rows: list[dict], query: QueryDict) -> list[str]:
    """The columns to show: those named in ?cols= (unknown names are skipped: a choice made on another
    suite names other benchmarks) plus the fixed ones; without ?cols=, every column shown by default
    that has a value on this page."""
    requested = query.get(COLUMNS_PARAM)
    if requested is None:
        return [c.key for c in columns if not c.hideable or (c.shown_by_default and has_values(c, rows))]
    wanted = {part.strip() for part in requested.split(",")}
    return [c.key for c in columns if not c.hideable or c.key in wanted]


def column_style(columns: list[Column], shown: list[str]) -> str:
    """CSS that hides the columns not shown (the page's JavaScript rewrites it when the choice changes)."""
    hidden = [f"#leaderboard-table .{column.css_class}" for column in columns if column.key not in shown]
    return f"{', '.join(hidden)} {{ display: none; }}" if hidden else ""


# LLM size ranges for the size filter, as (label, n_min, n_max) in billions of parameters (the
# API's bounds, both inclusive). Tiny demo models have 10^4–10^6 parameters; the paper's 0.5–14 B.
SIZE_BUCKETS = (
    ("< 1 M", None, "0.001"),
    ("1–100 M", "0.001", "0.1"),
    ("0.1–3 B", "0.1", "3"),
    ("3–10 B", "3", "10"),
    ("≥ 10 B", "10", None),
)


def size_buckets(query: QueryDict) -> list[dict]:
    """Links that set the N range to each bucket (and "any"), the current one marked."""
    current = (query.get("n_min"), query.get("n_max"))
    links = [{"label": "any", "href": "?" + with_params(query, n_min=None, n_max=None, page=None),
              "current": current == (None, None)}]
    for label, n_min, n_max in SIZE_BUCKETS:
        links.append({"label": label, "href": "?" + with_params(query, n_min=n_min, n_max=n_max, page=None),
                      "current": current == (n_min, n_max)})
    return links


def sort_headers(columns: list[Column], ordering: list[str], query: QueryDict) -> list[dict]:
    """Per column: its link (the other direction when it is the current sort) and aria-sort."""
    current = ordering[0] if ordering else "error"
    headers = []
    for column in columns:
        if current.lstrip("-") == column.sort_key:
            state = "descending" if current.startswith("-") else "ascending"
            next_key = column.sort_key if state == "descending" else f"-{column.sort_key}"
        else:
            state = "none"
            next_key = f"-{column.sort_key}" if column.descending_first else column.sort_key
        headers.append({"column": column, "aria_sort": state, "href": "?" + with_params(query, ordering=next_key, page=None)})
    return headers
