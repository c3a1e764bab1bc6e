"""Shared fixtures for the evaluation tests: tiny checkpoints built once per session, offline."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def quecc_checkpoint(tmp_path_factory) -> Path:
    from evaluation.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("quecc16"), compressor="quecc", tokens=16, seed=0)


@pytest.fixture(scope="session")
def pooling_checkpoint(tmp_path_factory) -> Path:
    from evaluation.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("avgpool4"), compressor="avgpool", tokens=4, llm_family="llama", seed=1
    )
