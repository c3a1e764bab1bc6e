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


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Folder holding the default synthetic suite (seed 0, full size), written once per session."""
    from evaluation.synthetic import write_synthetic_suite

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_suite(root / "seed0", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_evaluator(quecc_checkpoint, synthetic_root):
    """The tiny QueCC checkpoint loaded once and wrapped for lmms-eval (importing it takes ~8 s)."""
    from evaluation.harness import CheckpointEvaluator

    return CheckpointEvaluator(quecc_checkpoint, batch_size=16, device="cpu", synthetic_dir=synthetic_root)
