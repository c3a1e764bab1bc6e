"""Hugging Face hub repo ids and revisions: what the registry accepts as a hub reference, and the
links to a repository the pages show (a checkpoint registered from the hub, or an LLM whose config
names its hub repo)."""

import re

# Hugging Face repo ids: org/name, letters, digits, '.', '_', '-', neither part starting or ending with '.' or '-'.
HUB_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
HUB_REPO_ID = re.compile(f"{HUB_NAME}/{HUB_NAME}")
HUB_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")
HUB_URL = "https://huggingface.co/"


def is_hub_repo_id(text) -> bool:
    return isinstance(text, str) and bool(HUB_REPO_ID.fullmatch(text)) and "--" not in text and ".." not in text


def hub_url(repo_id, revision="") -> str | None:
    """The repository's page (at `revision` when one is given), or None when `repo_id` is no hub id."""
    if not is_hub_repo_id(repo_id):
        return None
    if revision and HUB_REVISION.fullmatch(revision) and ".." not in revision:
        return f"{HUB_URL}{repo_id}/tree/{revision}"
    return f"{HUB_URL}{repo_id}"


def checkpoint_hub_url(reference: dict | None) -> str | None:
    """A checkpoint registered by hub reference: its repository at the registered revision."""
    reference = reference or {}
    return hub_url(reference.get("hub"), reference.get("revision", "")) if "hub" in reference else None


def llm_hub_url(name: str | None, source: str | None, revision: str | None = "") -> str | None:
    """The LLM's repository when its source, or the name its config gives (`_name_or_path`), is a hub
    repo id (tiny and published LLMs have none: their names have no org/ part)."""
    for candidate in (source, name):
        url = hub_url(candidate, revision if revision != "published" else "")
        if url:
            return url
    return None
