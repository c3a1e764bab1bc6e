"""The leaderboard page a researcher can read (issue #13), through Django's test client: columns in
reading order, empty per-benchmark columns hidden and the user's choice (?cols=) honoured, readable
units, size buckets, the private badge, hub links, and exports of the whole filtered table with
floats rounded in CSV and full precision in JSON. The browser half is tests/browser/test_leaderboard_page.py."""

import csv
import io
import re

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from test_pages_views import logged_in, measured, row_ids, text_of

from webapp.pages.templatetags.frontier_format import milliseconds, params, si
from webapp.registry.hub import checkpoint_hub_url, llm_hub_url
from webapp.registry.models import Checkpoint, LanguageModel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def exact_counts(settings):
    settings.FRONTIER_DATA_VERSION_MAX_AGE_SECONDS = 0
    cache.clear()
    yield
    cache.clear()


def hidden_columns(html: str) -> set[str]:
    """The columns the page's <style> hides (c-<key> classes)."""
    style = re.search(r'<style id="leaderboard-column-style">(.*?)</style>', html, re.S).group(1)
    return set(re.findall(r"#leaderboard-table \.c-([\w-]+)", style))


@pytest.mark.parametrize("count, text", [
    (88_320, "88.3 K"), (1_200_000, "1.2 M"), (50_000_000, "50 M"), (494_000_000, "0.494 B"), (500_000_000, "0.5 B"),
    (7_000_000_000, "7 B"), (13_500_000_000, "13.5 B"), (999, "999"), (None, "—"),
])
def test_parameter_counts_read_in_k_m_and_b(count, text):
    assert params(count) == text


def test_latency_and_flops_read_in_their_units():
    assert [milliseconds(ms) for ms in (0.42, 38.5, 999.4, 1240.0, None)] == ["0.42 ms", "38.5 ms", "999 ms", "1.24 s", "—"]
    assert [si(flops) for flops in (8.76e12, 11.6e6, 500.0, 2e9)] == ["8.76 T", "11.6 M", "500", "2 G"]


def test_empty_benchmark_columns_are_hidden_and_the_users_choice_wins(alice, synthetic):
    call_command("load_published", stdout=io.StringIO())  # reasoning rows without per-benchmark scores
    client = logged_in(alice)

    published = client.get("/leaderboard/", {"suite": "reasoning"}).content.decode()
    assert {"bench-gqa", "bench-mme", "latency", "flops_q0", "status"} <= hidden_columns(published)
    assert not {"error", "name", "on_frontier", "n", "v", "llm", "owner"} & hidden_columns(published)
    assert '<label class="choice"><input type="checkbox" name="column" value="bench:gqa"> gqa <span class="hint">(empty here)' in published

    measured(synthetic, "avgpool", 88_320, 4, 0.4)
    shown = client.get("/leaderboard/", {"suite": "synthetic"}).content.decode()
    assert hidden_columns(shown) == {"flops_q0", "status", "latency"}  # no harness measured latency here

    chosen = client.get("/leaderboard/", {"suite": "synthetic", "cols": "bench:shapes,flops_q0,nonsense"}).content.decode()
    assert hidden_columns(chosen) == {"on_frontier", "n", "v", "compressor", "flops", "latency", "bench-glyphs", "llm",
                                      "status", "owner"}
    assert 'name="cols" value="bench:shapes,flops_q0,nonsense"' in chosen  # the filter form keeps the choice
    none = client.get("/leaderboard/", {"suite": "synthetic", "cols": "-"}).content.decode()  # no optional column
    assert hidden_columns(none) == {"on_frontier", "n", "v", "compressor", "flops", "flops_q0", "latency",
                                    "bench-glyphs", "bench-shapes", "llm", "status", "owner"}
    sort_links = re.findall(r'href="\?([^"]+)" data-sort-key', chosen)
    assert sort_links and all("cols=bench%3Ashapes%2Cflops_q0%2Cnonsense" in link for link in sort_links)
    tabs = re.search(r'<nav class="tabs".*?</nav>', chosen, re.S).group(0)
    assert "cols=" not in tabs  # another suite has other benchmarks
    export = re.search(r'id="export-csv" href="([^"]+)"', chosen).group(1)
    assert "cols" not in export and "all=true" in export


def test_the_body_is_cached_per_column_choice_too(alice, synthetic):
    measured(synthetic, "avgpool", 88_320, 4, 0.4)
    client = logged_in(alice)
    plain = client.get("/leaderboard/", {"suite": "synthetic"}).content.decode()
    chosen = client.get("/leaderboard/", {"suite": "synthetic", "cols": "llm"}).content.decode()
    assert hidden_columns(plain) != hidden_columns(chosen)
    with CaptureQueriesContext(connection) as cached:
        again = client.get("/leaderboard/", {"suite": "synthetic", "cols": "llm"}).content.decode()
    assert hidden_columns(again) == hidden_columns(chosen) and len(cached) <= 5


def test_size_buckets_set_the_n_range_and_mark_the_current_one(alice, synthetic):
    tiny = measured(synthetic, "avgpool", 88_320, 4, 0.4)
    small = measured(synthetic, "avgpool", 1_200_000, 4, 0.35)
    big = measured(synthetic, "quecc", 7_000_000_000, 4, 0.3)
    client = logged_in(alice)
    html = client.get("/leaderboard/", {"suite": "synthetic", "ordering": "n"}).content.decode()
    buckets = dict(re.findall(r'<a href="\?([^"]+)"[^>]*>([^<]+)</a>', re.search(
        r'<nav class="size-buckets".*?</nav>', html, re.S).group(0)))
    by_label = {label: query.replace("&amp;", "&") for query, label in buckets.items()}
    assert by_label["&lt; 1 M"] == "suite=synthetic&ordering=n&n_max=0.001"
    assert by_label["1–100 M"] == "suite=synthetic&ordering=n&n_min=0.001&n_max=0.1"

    def rows(query):
        return row_ids(client.get(f"/leaderboard/?{query}"))

    assert rows(by_label["&lt; 1 M"]) == [tiny.pk]
    assert rows(by_label["1–100 M"]) == [small.pk]
    assert rows(by_label["3–10 B"]) == [big.pk]
    current = client.get(f"/leaderboard/?{by_label['&lt; 1 M']}").content.decode()
    assert '<a href="?suite=synthetic&amp;ordering=n&amp;n_max=0.001" aria-current="true">&lt; 1 M</a>' in current


def test_private_rows_carry_a_badge_for_their_owner(alice, bob, synthetic):
    mine = measured(synthetic, "avgpool", 88_320, 4, 0.4, owner=alice, visibility="private", name="alice secret")
    measured(synthetic, "avgpool", 88_320, 16, 0.3, owner=alice, visibility="public", name="alice open")
    html = logged_in(alice).get("/leaderboard/", {"suite": "synthetic"}).content.decode()
    row = re.search(rf'<tr data-checkpoint-id="{mine.pk}">(.*?)</tr>', html, re.S).group(1)
    assert '<span class="badge badge-private"' in row and html.count("badge-private\"") == 1
    assert "alice secret" not in logged_in(bob).get("/leaderboard/", {"suite": "synthetic"}).content.decode()


def test_hub_links_for_checkpoints_from_the_hub_and_llms_named_by_hub_id(alice, synthetic):
    hub = measured(synthetic, "avgpool", 494_000_000, 4, 0.3, name="from the hub")
    Checkpoint.objects.filter(pk=hub.pk).update(reference={"hub": "org/vlm-tiny", "revision": "abc123"})
    LanguageModel.objects.filter(pk=hub.llm_id).update(name="Qwen/Qwen2-0.5B")
    measured(synthetic, "avgpool", 88_320, 4, 0.4, name="tiny")
    html = logged_in(alice).get("/leaderboard/", {"suite": "synthetic"}).content.decode()
    row = re.search(rf'<tr data-checkpoint-id="{hub.pk}">(.*?)</tr>', html, re.S).group(1)
    assert 'href="https://huggingface.co/org/vlm-tiny/tree/abc123"' in row
    assert '<a href="https://huggingface.co/Qwen/Qwen2-0.5B"' in row
    assert html.count("https://huggingface.co/") == 2  # the tiny LLM "tiny-88320" names no hub repo
    api_row = APIClient().get("/api/v1/leaderboard/", {"suite": "synthetic"}).json()["results"][0]
    assert (api_row["hub_url"], api_row["llm_hub_url"]) == (
        "https://huggingface.co/org/vlm-tiny/tree/abc123", "https://huggingface.co/Qwen/Qwen2-0.5B")


@pytest.mark.parametrize("name, source, revision, url", [
    ("Qwen/Qwen2-0.5B", "", "", "https://huggingface.co/Qwen/Qwen2-0.5B"),
    ("Qwen/Qwen2-0.5B", "", "a1b2c3", "https://huggingface.co/Qwen/Qwen2-0.5B/tree/a1b2c3"),
    ("qwen1.5-chat-0.5b", "https://arxiv.org/abs/2411.03312", "published", None),  # the paper's table
    ("tiny-qwen2-88320", "", "", None),
    ("/models/local", "", "", None),
    ("whatever", "lmsys/vicuna-7b-v1.5", "", "https://huggingface.co/lmsys/vicuna-7b-v1.5"),
])
def test_an_llm_links_to_the_hub_only_when_it_names_a_hub_repo(name, source, revision, url):
    assert llm_hub_url(name, source, revision) == url


def test_checkpoint_hub_link_needs_a_hub_reference():
    assert checkpoint_hub_url({"hub": "org/name", "revision": "main"}) == "https://huggingface.co/org/name/tree/main"
    assert checkpoint_hub_url({"path": "/srv/x"}) is None and checkpoint_hub_url({}) is None


def test_exports_hold_every_filtered_row_rounded_in_csv_exact_in_json(alice, synthetic):
    made = [measured(synthetic, ("avgpool", "quecc")[index % 2], 1_000_000 * (1 + index), 4, 0.3 + index / 97)
            for index in range(7)]
    page = logged_in(alice).get("/leaderboard/", {"suite": "synthetic", "compressor": "avgpool", "page_size": "2"})
    assert len(row_ids(page)) == 2
    html = page.content.decode()
    csv_href = re.search(r'id="export-csv" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    json_href = re.search(r'id="export-json" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "page_size" not in csv_href and "page_size" not in json_href

    expected = [checkpoint.pk for checkpoint in made if checkpoint.compressor.method == "avgpool"]  # by error
    exported = list(csv.DictReader(io.StringIO(Client().get(csv_href).content.decode())))
    assert [int(row["id"]) for row in exported] == expected
    rows = Client().get(json_href).json()
    assert [row["id"] for row in rows["results"]] == expected and rows["count"] == 4 and rows["pages"] == 1
    for line, row in zip(exported, rows["results"], strict=True):
        assert line["error"] == f"{row['error']:.4g}"
        assert line["stderr"] == f"{row['stderr']:.4g}" and line["bench:shapes"] == f"{row['scores']['shapes']:.4g}"
        assert line["n_params"] == str(row["n_params"])  # integers stay exact
    assert any(float(line["error"]) != row["error"] for line, row in zip(exported, rows["results"], strict=True))
    assert "Leaderboard" in text_of(page)
