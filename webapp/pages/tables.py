"""Query strings of the pages: only the parameters given, and the leaderboard's sortable headers."""

from dataclasses import dataclass

from django.http import QueryDict


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
    label: str
    sort_key: str
    title: str = ""
    descending_first: bool = False  # scores and badges: best first
    numeric: bool = True


def leaderboard_columns(benchmarks: list[str], query_tokens: float) -> list[Column]:
    """The leaderboard's columns, each sortable by the API's sort key."""
    return [
        Column("Checkpoint", "name", numeric=False),
        Column("LLM", "llm", numeric=False),
        Column("N (B)", "n_params", "LLM parameters, billions"),
        Column("Compressor", "compressor", numeric=False),
        Column("V", "visual_tokens", "Visual tokens"),
        Column("FLOPs Q=0", "flops_q0", "2·N·(V + G): cached query"),
        Column(f"FLOPs Q={query_tokens:g}", "flops", f"2·N·({query_tokens:g} + V + G)"),
        Column("Latency (ms)", "latency_first_token_ms", "Measured median time to first token"),
        *[Column(key, f"bench:{key}", f"Normalised score on {key}", descending_first=True) for key in benchmarks],
        Column("Error ± stderr", "error", "Suite average normalised error"),
        Column("Frontier", "on_frontier", "On the measured Pareto frontier (error vs FLOPs at Q)", descending_first=True),
        Column("Status", "status", numeric=False),
        Column("Owner", "owner", numeric=False),
    ]


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
