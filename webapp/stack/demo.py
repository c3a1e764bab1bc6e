"""The demo `make run` starts: the paper's published table, a demo account with an API token, and
a tiny training sweep submitted through the REST API, like any user's automated submission."""

import time

import requests
from django.contrib.auth import get_user_model
from django.db import transaction

from webapp.accounts.services import api_token_create
from webapp.leaderboard.management.commands.load_published import PAPER_TABLE
from webapp.leaderboard.services import published_scores_load

DEMO_SWEEP_NAME = "demo: 3 LLM sizes x 2 compressors x 4 token counts"
DEMO_SUITE = "synthetic-detail"

# Tiny random-init models trained on the synthetic spots task (name the colour of one square of 2-24 px),
# LLM fine-tuned too (stage 2: with the LLM frozen at its random init nothing is learned), evaluated on
# its suite, synthetic-detail. On spots both a wider LLM and more visual tokens lower the error, so the
# suite's fit has alpha and beta above 0 (README "The demo"). The frozen tower is the same for every
# point, so its features are encoded once for all trainings and once for all evaluations
# (evaluation.feature_cache); the learning rate shrinks as the LLM widens.
DEMO_SWEEP = {
    "name": DEMO_SWEEP_NAME,
    "bases": [
        {"tiny": {"llm_hidden": 16, "llm_layers": 2, "seed": 0}, "hyperparameters": {"learning_rate": 3e-3}},
        {"tiny": {"llm_hidden": 32, "llm_layers": 2, "seed": 0}, "hyperparameters": {"learning_rate": 3e-3}},
        {"tiny": {"llm_hidden": 64, "llm_layers": 2, "seed": 0}, "hyperparameters": {"learning_rate": 2e-3}},
    ],
    "compressors": ["avgpool", "quecc"],
    "tokens": [1, 4, 16, 64],
    "stage": 2,
    "dataset": {"kind": "synthetic-spots"},
    "hyperparameters": {"batch_size": 16, "max_steps": 500, "warmup_steps": 25, "save_every": 250},
    "suites": [DEMO_SUITE],
    "visibility": "public",
}


class DemoError(Exception):
    """The demo sweep could not be submitted; the message says what the server answered."""


@transaction.atomic
def demo_account(username: str, password: str) -> str:
    """Create (or reset the password of) the demo user; returns a fresh API token for it."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.save()
    _, token = api_token_create(user=user, name="make run demo")
    return token


def published_table_load() -> int:
    return published_scores_load(PAPER_TABLE)


def web_wait(base_url: str, timeout: float = 120.0) -> None:
    """Wait until the web server answers at all (gunicorn may start after the worker)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(f"{base_url}healthz", timeout=10)
            return
        except requests.RequestException as error:
            if time.monotonic() > deadline:
                raise DemoError(f"the web server at {base_url} did not answer within {timeout:.0f} s: {error}") from error
            time.sleep(1)


def demo_sweep_submit(base_url: str, token: str) -> str:
    """Submit the demo sweep through the REST API unless the demo user already has it; returns its URL."""
    web_wait(base_url)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    listing = session.get(f"{base_url}api/v1/sweeps/", timeout=30)
    if listing.status_code != 200:
        raise DemoError(f"GET /api/v1/sweeps/ answered {listing.status_code}: {listing.text[:500]}")
    body = listing.json()
    existing = [sweep for sweep in body.get("results", body) if sweep["name"] == DEMO_SWEEP_NAME]
    if existing:
        return existing[0]["url"]
    created = session.post(f"{base_url}api/v1/sweeps/", json=DEMO_SWEEP, timeout=600)
    if created.status_code != 201:
        raise DemoError(f"POST /api/v1/sweeps/ answered {created.status_code}: {created.text[:2000]}")
    return created.json()["url"]
