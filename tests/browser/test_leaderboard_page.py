"""The leaderboard a researcher reads (issue #13) in headless Chromium at 1,280 × 800 against a real
gunicorn: the error, its interval and the frontier badge in view without scrolling sideways on a table
wide enough to scroll (nine reasoning benchmarks, the paper's 28 published rows and 40 measured ones),
and still in view when it is scrolled; the column picker (address and localStorage); the export of
the whole filtered table; and public means public: an anonymous visitor opens a public checkpoint's
page and downloads its files, but not a private one's."""

import csv
import io
import json
import os
import re
import shutil
import tarfile
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from browser.conftest import BROWSER_TIMEOUT_MS, screenshot_dir
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from frontier_processes import REPO
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from webapp.leaderboard.services import measured_scores, measured_suite_scores_replace
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

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 800
# The image the lead looks at: the 1,280 × 800 view of a wide leaderboard.
REVIEW_SCREENSHOT = Path(os.environ.get("FRONTIER_LEADERBOARD_SCREENSHOT") or REPO / "var" / "leaderboard-1280.png")


@pytest.fixture
def screen(browser, request):
    """A page at 1,280 × 800 (a laptop screen); like `page`, it leaves a full-page screenshot."""
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    page = context.new_page()
    yield page
    try:
        page.screenshot(path=str(screenshot_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"),
                        full_page=True)
    except PlaywrightError as error:
        warnings.warn(f"no screenshot of {request.node.name}: {error}", stacklevel=1)
    finally:
        context.close()


def reasoning_checkpoints(count: int, owner=None, visibility="public") -> list[Checkpoint]:
    """`count` ready checkpoints with a result on every reasoning benchmark and a measured latency,
    scored by the refit's own functions (webapp.leaderboard.services.measured_scores)."""
    suite = BenchmarkSuite.objects.get(name="reasoning")
    benchmarks = list(suite.benchmarks.order_by("key"))
    made = []
    for index in range(count):
        method = ("avgpool", "quecc", "tokenpacker")[index % 3]
        compressor, _ = Compressor.objects.get_or_create(method=method, version="1")
        n_params = (88_320, 1_200_000, 494_000_000, 7_000_000_000)[index % 4]
        llm, _ = LanguageModel.objects.get_or_create(
            name=("Qwen/Qwen2-0.5B" if n_params == 494_000_000 else f"tiny-qwen2-{n_params}"), n_params=n_params,
            revision="", defaults={"family": "qwen2"},
        )
        tokens = (1, 4, 16, 64, 144)[index % 5]
        checkpoint = Checkpoint.objects.create(
            owner=owner, name=f"measured {method} N={n_params} V={tokens} #{index}", llm=llm, compressor=compressor,
            visual_tokens=tokens, status=CheckpointStatus.READY, visibility=visibility,
        )
        run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite)
        score = 0.3 + 0.55 * ((index * 37) % 40) / 40
        BenchmarkResult.objects.bulk_create([
            BenchmarkResult(run=run, benchmark=benchmark, metric=metric, stderr=0.01, n=100,
                            value=(score + 0.04 * (number % 3 - 1)) * benchmark.full_scale / len(benchmark.metrics))
            for number, benchmark in enumerate(benchmarks) for metric in benchmark.metrics
        ])
        HarnessOutput.objects.bulk_create([
            HarnessOutput(run=run, benchmark=benchmark, raw={}, stamp={
                "device": "cpu", "device_name": "x86_64",
                "latency": {"median_time_to_first_token_s": 0.004 * (1 + index), "median_decode_per_token_s": 0.001},
            })
            for benchmark in benchmarks
        ])
        made.append(checkpoint)
    scores, _ = measured_scores(suite)
    measured_suite_scores_replace(suite, scores.to_dict("records"))
    return made


@pytest.fixture
def wide_board(live_server_url):
    """The paper's published table plus 40 measured checkpoints on the nine reasoning benchmarks, one
    of them alice's private one."""
    call_command("load_published", stdout=io.StringIO())
    alice = get_user_model().objects.create_user("alice")
    public = reasoning_checkpoints(39)
    private = reasoning_checkpoints(1, owner=alice, visibility="private")[0]
    return {"alice": alice, "public": public, "private": private}


def box(locator):
    return locator.bounding_box()


def assert_in_view(page, locator, what):
    """Inside the 1,280 × 800 window, with the page not scrolled sideways."""
    expect(locator).to_be_visible()
    place = box(locator)
    assert place is not None, what
    assert 0 <= place["x"] and place["x"] + place["width"] <= WIDTH, (what, place)
    assert 0 <= place["y"] and place["y"] + place["height"] <= HEIGHT, (what, place)


def test_the_error_its_interval_and_the_frontier_badge_are_in_view_at_1280_px(screen, live_server_url, wide_board):
    page = screen
    page.goto(f"{live_server_url}/leaderboard/?suite=reasoning&page_size=100")
    expect(page.locator("#leaderboard-count")).to_have_text("67 checkpoints")
    scroller = page.locator(".leaderboard-scroll")

    # Wide enough to scroll sideways: nine benchmark columns and the cost columns.
    widths = scroller.evaluate("node => [node.scrollWidth, node.clientWidth]")
    assert widths[0] > widths[1] + 200, widths
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH  # the page itself does not scroll sideways
    expect(page.locator("#leaderboard-table thead th.c-bench-gqa")).to_be_visible()

    first = page.locator("#leaderboard-table tbody tr").first
    frontier_row = page.locator("#leaderboard-table tbody tr", has=page.locator(".badge-frontier")).first
    for locator, what in [
        (page.locator("#leaderboard-table thead th.c-error"), "error header"),
        (first.locator(".error-value"), "error"), (first.locator(".interval"), "interval"),
        (page.locator("#leaderboard-table thead th.c-on_frontier"), "frontier header"),
        (frontier_row.locator(".badge-frontier"), "frontier badge"),
    ]:
        assert_in_view(page, locator, what)
    page.screenshot(path=str(screenshot_dir() / "leaderboard-1280x800.png"))
    REVIEW_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot_dir() / "leaderboard-1280x800.png", REVIEW_SCREENSHOT)

    # Scrolled all the way right (to the last benchmarks and the owner): name, error and badge stay put.
    before = {what: box(locator) for locator, what in [(first.locator(".c-name"), "name"), (first.locator(".c-error"), "error")]}
    scroller.evaluate("node => { node.scrollLeft = node.scrollWidth; }")
    expect(page.locator("#leaderboard-table thead th.c-owner")).to_be_in_viewport()
    assert box(first.locator(".c-name")) == before["name"] and box(first.locator(".c-error")) == before["error"]
    assert_in_view(page, frontier_row.locator(".badge-frontier"), "frontier badge after scrolling")
    # Scrolled down: the header stays.
    scroller.evaluate("node => { node.scrollTop = node.scrollHeight; }")
    assert_in_view(page, page.locator("#leaderboard-table thead th.c-error"), "error header after scrolling down")
    page.screenshot(path=str(screenshot_dir() / "leaderboard-1280x800-scrolled.png"))

    # Readable units: tiny N in K and M, latency in ms; the hub link of a hub-named LLM; alice's row is not here.
    texts = page.locator("#leaderboard-table tbody td.c-n").all_inner_texts()
    # Published Qwen1.5 rows show N counted from the weights (0.464 B for the "0.5 B" model).
    assert {"88.3 K", "1.2 M", "0.494 B", "0.464 B", "1.84 B", "7 B", "7.72 B"} <= set(texts), set(texts)
    assert any(text.endswith(" ms") for text in page.locator("#leaderboard-table tbody td.c-latency").all_inner_texts())
    expect(page.locator("td.c-llm a[href='https://huggingface.co/Qwen/Qwen2-0.5B']").first).to_be_visible()
    expect(page.locator(".badge-private")).to_have_count(0)


def test_a_size_bucket_and_the_private_badge(logged_in_page, live_server_url, wide_board):
    page = logged_in_page(wide_board["alice"])
    page.goto(f"{live_server_url}/leaderboard/?suite=reasoning")
    page.get_by_role("navigation", name="LLM size").get_by_role("link", name="< 1 M").click()
    expect(page.locator("#leaderboard-count")).to_have_text("11 checkpoints")  # the 88 K ones, alice's among them
    assert parse_qs(urlparse(page.url).query)["n_max"] == ["0.001"]
    assert set(page.locator("#leaderboard-table tbody td.c-n").all_inner_texts()) == {"88.3 K"}
    private_row = page.locator(f'tr[data-checkpoint-id="{wide_board["private"].pk}"]')
    expect(private_row.locator(".badge-private")).to_have_text("private")
    expect(page.locator(".badge-private")).to_have_count(1)


def test_the_column_picker_is_kept_in_the_address_and_in_the_browser(screen, live_server_url, wide_board):
    page = screen
    page.goto(f"{live_server_url}/leaderboard/?suite=reasoning&scope=published")
    # Published rows have no per-benchmark scores or latency: those columns start hidden.
    expect(page.locator("#leaderboard-table th.c-bench-gqa")).to_be_hidden()
    expect(page.locator("#leaderboard-table th.c-latency")).to_be_hidden()
    expect(page.locator("#leaderboard-table th.c-error")).to_be_visible()

    page.goto(f"{live_server_url}/leaderboard/?suite=reasoning")
    expect(page.locator("#leaderboard-table th.c-bench-gqa")).to_be_visible()
    page.get_by_text("Columns", exact=True).click()
    picker = page.locator("#column-picker")
    picker.get_by_label("gqa").uncheck()
    picker.get_by_label("LLM", exact=True).uncheck()
    picker.get_by_label("FLOPs Q=0").check()
    expect(page.locator("#leaderboard-table th.c-bench-gqa")).to_be_hidden()
    expect(page.locator("#leaderboard-table td.c-llm").first).to_be_hidden()
    expect(page.locator("#leaderboard-table th.c-flops_q0")).to_be_visible()
    chosen = parse_qs(urlparse(page.url).query)["cols"][0].split(",")
    assert "gqa" not in chosen and "bench:gqa" not in chosen and "llm" not in chosen and "flops_q0" in chosen

    page.reload()  # the address carries it: rendered hidden by the server
    expect(page.locator("#leaderboard-table th.c-bench-gqa")).to_be_hidden()
    page.get_by_role("link", name="V", exact=True).click()  # sorting keeps it
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("V ▲")
    expect(page.locator("#leaderboard-table th.c-bench-gqa")).to_be_hidden()
    expect(page.locator("#leaderboard-table th.c-flops_q0")).to_be_visible()

    page.goto(f"{live_server_url}/leaderboard/?suite=reasoning")  # no cols: this browser's last choice
    expect(page.locator("#leaderboard-table th.c-bench-gqa")).to_be_hidden()
    assert "cols" in parse_qs(urlparse(page.url).query)
    page.get_by_text("Columns", exact=True).click()
    page.get_by_role("button", name="Defaults").click()
    expect(page.locator("#leaderboard-table th.c-bench-gqa")).to_be_visible()
    expect(page.locator("#leaderboard-table th.c-flops_q0")).to_be_hidden()
    assert "cols" not in parse_qs(urlparse(page.url).query)


def test_the_export_holds_the_whole_filtered_table_not_the_page(screen, live_server_url, wide_board, tmp_path):
    page = screen
    page.goto(f"{live_server_url}/leaderboard/?suite=reasoning&scope=public&page_size=25&ordering=-latency")
    expect(page.locator("#leaderboard-count")).to_have_text("39 checkpoints")
    assert len(page.locator("#leaderboard-table tbody tr").all()) == 25
    with page.expect_download() as download:
        page.locator("#export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    expected = sorted(wide_board["public"], key=lambda checkpoint: -int(checkpoint.name.split("#")[1]))  # latency grows with #
    assert [int(row["id"]) for row in rows] == [checkpoint.pk for checkpoint in expected]
    with page.expect_download() as download:
        page.locator("#export-json").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert [row["id"] for row in exported["results"]] == [int(row["id"]) for row in rows]
    assert exported["count"] == 39
    # The CSV rounds to 4 significant digits; the JSON keeps every digit.
    for line, row in zip(rows, exported["results"], strict=True):
        assert line["error"] == f"{row['error']:.4g}" and line["bench:gqa"] == f"{row['scores']['gqa']:.4g}"
    assert any(len(repr(row["error"])) > 8 for row in exported["results"])


def stored_checkpoint(owner, name, visibility) -> Checkpoint:
    """A ready checkpoint whose files are in the default storage, as validation leaves them."""
    llm, _ = LanguageModel.objects.get_or_create(name="tiny-qwen2-88320", n_params=88_320, revision="",
                                                 defaults={"family": "qwen2"})
    checkpoint = Checkpoint.objects.create(owner=owner, name=name, llm=llm, visual_tokens=4, visibility=visibility,
                                           status=CheckpointStatus.READY, sha256="ab" * 32)
    prefix = f"checkpoints/{checkpoint.pk}/files"
    default_storage.save(f"{prefix}/config.json", ContentFile(json.dumps({"model_type": "frontier_vlm"}).encode()))
    default_storage.save(f"{prefix}/model.safetensors", ContentFile(b"\x01" * 70_000))
    Checkpoint.objects.filter(pk=checkpoint.pk).update(files_prefix=prefix)
    return checkpoint


def test_an_anonymous_visitor_opens_a_public_checkpoint_but_not_a_private_one(page, live_server_url):
    alice = get_user_model().objects.create_user("alice")
    public = stored_checkpoint(alice, "alice public tiny", "public")
    private = stored_checkpoint(alice, "alice private tiny", "private")

    page.goto(f"{live_server_url}/checkpoints/{public.pk}/")
    expect(page.locator("h1")).to_have_text("alice public tiny")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)  # nobody is logged in
    expect(page.locator("#checkpoint-files li")).to_have_count(2)
    with page.expect_download() as download:
        page.locator("#download-archive").click()
    with tarfile.open(download.value.path()) as archive:
        assert sorted(archive.getnames()) == [f"checkpoint-{public.pk}/config.json",
                                              f"checkpoint-{public.pk}/model.safetensors"]
        assert archive.extractfile(f"checkpoint-{public.pk}/model.safetensors").read() == b"\x01" * 70_000

    page.goto(f"{live_server_url}/checkpoints/{private.pk}/")
    expect(page).to_have_url(f"{live_server_url}/accounts/login/?next=/checkpoints/{private.pk}/")
    assert "alice private tiny" not in page.content()
    refused = page.request.get(f"{live_server_url}/api/v1/checkpoints/{private.pk}/archive/")
    assert refused.status == 401 and "authenticate" in refused.json()["detail"]
