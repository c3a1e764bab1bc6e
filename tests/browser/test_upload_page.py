"""The upload page in headless Chromium: login, file picker and drag-and-drop, chunked upload with
a real progress bar, resume after a dropped chunk and after a reload, API errors, validation."""

import base64
import hashlib
import re
import tarfile
import time

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from webapp.registry.models import Checkpoint, Upload

pytestmark = pytest.mark.browser

CHUNK_BYTES = 64 * 1024  # the tiny archive (~0.6 MB) goes up in about ten chunks
VALIDATION_TIMEOUT_MS = 120_000


def archive_of(folder, path):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="checkpoint")
    return path


@pytest.fixture(scope="module")
def tiny_archive(tmp_path_factory):
    from evaluation.tiny import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny")
    folder = make_tiny_checkpoint(root / "tiny", compressor="avgpool", tokens=4, seed=0)
    return archive_of(folder, root / "tiny-avgpool.tar.gz")


@pytest.fixture(scope="module")
def pickle_archive(tmp_path_factory):
    from evaluation.tiny import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("pickled")
    folder = make_tiny_checkpoint(root / "tiny", compressor="avgpool", tokens=4, seed=1)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    return archive_of(folder, root / "pickled.tar.gz")


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_upload_page(page, base_url, chunk_bytes=CHUNK_BYTES):
    page.goto(f"{base_url}/upload/")
    page.locator("#upload-form").evaluate("(form, bytes) => { form.dataset.chunkBytes = String(bytes); }", chunk_bytes)


def fill_form(page, name, suites=()):
    page.get_by_label("Name").fill(name)
    for box in page.locator("input[name=suites]").all():
        box.set_checked(box.get_attribute("value") in suites)


def record_progress(page):
    page.evaluate("""() => {
        window.progressSeen = [];
        const bar = document.getElementById("upload-progress");
        bar.addEventListener("upload:progress", () => window.progressSeen.push([bar.value, bar.max]));
    }""")


def put_ranges(page):
    """Content-Range of every chunk PUT the page sends, in order."""
    ranges = []
    page.on("request", lambda request: request.method == "PUT" and ranges.append(request.headers["content-range"]))
    return ranges


def range_start(content_range: str) -> int:
    return int(re.match(r"bytes (\d+)-", content_range).group(1))


def wait_until(page, condition, timeout=20.0):
    """Poll while letting Playwright dispatch its events (route handlers run inside its calls)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


def test_anonymous_visitors_are_sent_to_the_login_form_and_back(page, live_server_url):
    get_user_model().objects.create_user("alice", password="a-long-password-1")

    page.goto(f"{live_server_url}/upload/")

    assert page.url == f"{live_server_url}/accounts/login/?next=/upload/"
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")
    page.get_by_label("Password").fill("a-long-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server_url}/upload/")
    expect(page.get_by_role("heading", name="Upload a checkpoint")).to_be_visible()


def test_pages_share_the_layout_and_logging_out_works(logged_in_page, live_server_url):
    page = logged_in_page(get_user_model().objects.create_user("alice", is_staff=True))

    page.goto(f"{live_server_url}/")
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Overview", "Leaderboard", "Frontier", "Compressors", "Deploy", "Queue", "Upload", "API docs"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="Recent jobs")).to_be_visible()  # the home page's staff table
    assert page.evaluate("getComputedStyle(document.querySelector('.site-header')).borderBottomStyle") == "solid"

    nav.get_by_role("link", name="Upload").click()
    expect(nav.get_by_role("link", name="Upload")).to_have_attribute("aria-current", "page")
    suites = page.locator("input[name=suites]")
    assert sorted(suites.evaluate_all("boxes => boxes.map(box => box.value)")) == [
        "compressor_table", "ocr", "reasoning", "synthetic", "synthetic-detail"]
    expect(page.locator("input[name=suites][value=synthetic]")).to_be_checked()  # FRONTIER_DEFAULT_SUITES

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{live_server_url}/")
    expect(page.get_by_role("banner").get_by_role("link", name="Log in")).to_be_visible()
    page.goto(f"{live_server_url}/upload/")
    assert "/accounts/login/" in page.url


def test_picked_archive_uploads_in_chunks_with_progress_and_becomes_ready(
    logged_in_page, live_server_url, tiny_archive, pickle_archive, start_worker, process_env, local_media
):
    start_worker("cpu", queues="cpu", env={**process_env, "MEDIA_ROOT": str(local_media)})
    page = logged_in_page(get_user_model().objects.create_user("alice"))
    open_upload_page(page, live_server_url)
    ranges = put_ranges(page)
    record_progress(page)

    fill_form(page, "tiny avgpool v4", suites=["synthetic"])
    page.get_by_role("radio", name="Public").check()
    page.locator("#archive-input").set_input_files(tiny_archive)
    expect(page.locator("#selected-file")).to_contain_text("tiny-avgpool.tar.gz")
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#upload-outcome")).to_have_text("Checkpoint stored; it is being validated.")
    size = tiny_archive.stat().st_size
    assert len(ranges) == -(-size // CHUNK_BYTES) >= 5
    seen = page.evaluate("window.progressSeen")
    assert seen[-1] == [size, size]
    assert any(0 < value < size for value, _ in seen), seen
    values = [value for value, _ in seen]
    assert values == sorted(values)  # no chunk was lost, so the bar only moves forward
    expect(page.locator("#upload-progress-text")).to_contain_text("(100 %)")

    checkpoint = Checkpoint.objects.get()
    assert checkpoint.archive_sha256 == sha256_of(tiny_archive)
    assert (checkpoint.name, checkpoint.visibility, checkpoint.suites_requested) == ("tiny avgpool v4", "public", ["synthetic"])
    expect(page.locator("#checkpoint-link")).to_have_attribute("href", f"/checkpoints/{checkpoint.pk}/")
    expect(page.locator("#checkpoint-status")).to_have_text("ready", timeout=VALIDATION_TIMEOUT_MS)
    assert Checkpoint.objects.get().status == "ready"

    # A pickle inside the archive: uploaded fine, then rejected by validation with the reason shown.
    fill_form(page, "pickled", suites=[])
    page.locator("#archive-input").set_input_files(pickle_archive)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#checkpoint-status")).to_have_text("rejected", timeout=VALIDATION_TIMEOUT_MS)
    reason = Checkpoint.objects.get(name="pickled").rejection_reason
    assert "pytorch_model.bin" in reason
    expect(page.locator("#checkpoint-reason")).to_have_text(reason)


def test_dropped_archive_uploads_and_a_second_copy_is_reported_as_a_duplicate(
    logged_in_page, live_server_url, tiny_archive
):
    page = logged_in_page(get_user_model().objects.create_user("alice"))
    open_upload_page(page, live_server_url)
    fill_form(page, "dropped")

    page.evaluate(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "application/gzip" }));
            const zone = document.getElementById("drop-zone");
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
            }
        }""",
        [tiny_archive.name, base64.b64encode(tiny_archive.read_bytes()).decode()],
    )
    expect(page.locator("#selected-file")).to_contain_text("tiny-avgpool.tar.gz")
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#upload-outcome")).to_have_text("Checkpoint stored; it is being validated.")
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.archive_sha256 == sha256_of(tiny_archive) and checkpoint.suites_requested == []
    expect(page.locator("#checkpoint-status")).to_have_text("uploaded")

    # The same bytes again, now through the file picker: the API answers 200 with the first one.
    fill_form(page, "same bytes")
    page.locator("#archive-input").set_input_files(tiny_archive)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-outcome")).to_have_text(
        f"An identical archive was already uploaded as checkpoint #{checkpoint.pk}; it was not stored twice."
    )
    expect(page.locator("#checkpoint-link")).to_have_text(f"#{checkpoint.pk} dropped")
    assert Checkpoint.objects.count() == 1


def test_upload_resumes_after_dropped_connections(logged_in_page, live_server_url, tiny_archive):
    page = logged_in_page(get_user_model().objects.create_user("alice"))
    open_upload_page(page, live_server_url)
    ranges = put_ranges(page)
    puts = []

    def drop_some_chunks(route, request):
        if request.method != "PUT":
            return route.continue_()
        puts.append(request.headers["content-range"])
        if len(puts) == 2:
            route.abort("connectionreset")  # lost on the way: the server never sees it
        elif len(puts) == 4:
            route.fetch()  # the server stores the chunk, but its answer is lost
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/uploads/*/", drop_some_chunks)
    fill_form(page, "resumed")
    page.locator("#archive-input").set_input_files(tiny_archive)
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#upload-outcome")).to_have_text("Checkpoint stored; it is being validated.")
    assert Checkpoint.objects.get().archive_sha256 == sha256_of(tiny_archive)
    starts = [range_start(content_range) for content_range in ranges]
    assert starts[1] == starts[2] == CHUNK_BYTES  # the chunk that never arrived is sent again
    assert starts[3] == 2 * CHUNK_BYTES and starts[4] == 3 * CHUNK_BYTES  # the stored one is not
    assert len(starts) == -(-tiny_archive.stat().st_size // CHUNK_BYTES) + 1


def test_a_reloaded_page_resumes_the_same_upload(logged_in_page, live_server_url, tiny_archive):
    page = logged_in_page(get_user_model().objects.create_user("alice"))
    open_upload_page(page, live_server_url)
    forwarded, held = [], []

    def hold_the_third_chunk(route, request):
        if request.method == "PUT" and len(forwarded) == 2:
            held.append(route)  # never answered: the page is reloaded while it hangs
            return
        if request.method == "PUT":
            forwarded.append(request)
        route.continue_()

    page.route("**/api/v1/uploads/*/", hold_the_third_chunk)
    fill_form(page, "reloaded")
    page.locator("#archive-input").set_input_files(tiny_archive)
    page.get_by_role("button", name="Upload").click()
    wait_until(page, lambda: held)

    open_upload_page(page, live_server_url)  # the reload cancels the held chunk
    page.unroute("**/api/v1/uploads/*/")
    upload = Upload.objects.get()
    assert upload.offset == 2 * CHUNK_BYTES
    ranges = put_ranges(page)
    fill_form(page, "reloaded")
    page.locator("#archive-input").set_input_files(tiny_archive)
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#upload-outcome")).to_have_text("Checkpoint stored; it is being validated.")
    assert range_start(ranges[0]) == 2 * CHUNK_BYTES
    assert Upload.objects.get().pk == upload.pk  # the same upload, not a second one
    assert Checkpoint.objects.get().archive_sha256 == sha256_of(tiny_archive)
    assert page.evaluate("Object.keys(localStorage).filter((key) => key.startsWith('frontier-upload:'))") == []


def test_a_file_that_is_not_an_archive_shows_the_apis_message(logged_in_page, live_server_url, tmp_path):
    page = logged_in_page(get_user_model().objects.create_user("alice"))
    open_upload_page(page, live_server_url)
    renamed = tmp_path / "model.txt"
    renamed.write_bytes(b"\x80\x04\x95" + b"\x00" * 1000)  # a pickle's first bytes, as in model.bin

    fill_form(page, "not an archive")
    page.locator("#archive-input").set_input_files(renamed)
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#upload-errors")).to_have_text(
        "'model.txt' is not a checkpoint archive: upload a .tar, .tar.gz or .zip of the checkpoint folder "
        "(config.json, model.safetensors, tokenizer files)."
    )
    expect(page.get_by_role("button", name="Upload")).to_be_enabled()
    assert not Upload.objects.exists() and not Checkpoint.objects.exists()
