"""Browser tests: Debian's headless Chromium driven by Playwright against a real gunicorn.

Fixtures: `browser` (one Chromium per test module), `page` (a fresh context per test, with a
screenshot saved at teardown, pass or fail, to $FRONTIER_VAR_DIR/artifacts/screenshots/<test>.png),
`live_server_url` (gunicorn on the test database, static files collected, MEDIA_ROOT = local_media)
and `logged_in_page(user)` (logs in through the real login form).
"""

import os
import re
import warnings
from pathlib import Path

import pytest
from django.core.management import call_command
from frontier_processes import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
]
BROWSER_PASSWORD = "browser-test-password-7"
BROWSER_TIMEOUT_MS = 20_000


def screenshot_dir() -> Path:
    var_dir = Path(os.environ.get("FRONTIER_VAR_DIR") or REPO / "var" / "test")
    folder = var_dir / "artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=BROWSER_TIMEOUT_MS)  # the machine is shared: allow for a slow moment

    # Playwright's sync API keeps an asyncio loop running in this thread while it lives, and
    # Django refuses ORM calls when it sees one; the tests' ORM calls are plain synchronous code.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    page = context.new_page()
    yield page
    path = screenshot_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"
    try:
        page.screenshot(path=str(path), full_page=True)
    except PlaywrightError as error:
        warnings.warn(f"no screenshot of {request.node.name}: {error}", stacklevel=1)
    finally:
        context.close()


@pytest.fixture(scope="session")
def collected_static():
    """gunicorn serves static files through WhiteNoise from STATIC_ROOT, as `make run` does."""
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture
def live_server_url(start_web, local_media, collected_static) -> str:
    return start_web({"MEDIA_ROOT": str(local_media)})


@pytest.fixture
def logged_in_page(page, live_server_url):
    """logged_in_page(user) → the page, logged in as `user` through the login form.

    The user's password is set to a test password first, since only its hash is stored."""

    def log_in(user):
        user.set_password(BROWSER_PASSWORD)
        user.save(update_fields=["password"])
        page.goto(f"{live_server_url}/accounts/login/")
        page.get_by_label("Username").fill(user.get_username())
        page.get_by_label("Password").fill(BROWSER_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("button", name="Log out").wait_for()
        return page

    return log_in
