"""The shared frozen-encoder feature cache: what a cached run trains equals what an uncached run
trains, keys change with everything the features depend on, and every cache failure is a miss."""

import multiprocessing
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from evaluation.feature_cache import FeatureCache
from evaluation.tiny import build_tiny_vlm
from evaluation.training import TinyModelSpec, Trainer, TrainingConfig

# Few examples, few steps: enough to see that the features are read, not to learn anything.
RUN = TrainingConfig(
    compressor="avgpool",
    tokens=4,
    stage=2,
    tiny_model=TinyModelSpec(llm_hidden=32, llm_layers=1),
    synthetic_count=40,
    batch_size=8,
    max_steps=6,
)


def _train(output: Path, cache: FeatureCache | None, **changes):
    config = TrainingConfig.from_dict({**RUN.to_dict(), **changes})
    result = Trainer(config, output, device="cpu", feature_cache=cache).run()
    return result, load_file(Path(result.checkpoint) / "model.safetensors")


def test_a_second_run_reads_the_features_and_trains_exactly_what_an_uncached_run_trains(tmp_path):
    cache = FeatureCache(tmp_path / "cache", max_bytes=1 << 30)
    uncached, uncached_weights = _train(tmp_path / "plain", None)
    first, _ = _train(tmp_path / "first", cache)
    # Another LLM size and compressor on the same tower and images: the same features serve it.
    second, second_weights = _train(tmp_path / "second", cache)
    other_size, _ = _train(tmp_path / "other", cache, tiny_model={"llm_hidden": 64, "llm_layers": 2, "seed": 0})

    assert (uncached.encoder_features, first.encoder_features) == ("encoded", "encoded")
    assert (second.encoder_features, other_size.encoder_features) == ("cache", "cache")
    assert len(cache.entries()) == 1
    assert second.loss_history == uncached.loss_history
    for name, tensor in uncached_weights.items():
        assert torch.equal(second_weights[name], tensor), name


def _key(model, pixels, device="cpu", precision="torch.float32"):
    return FeatureCache.key(model, [pixels], device, precision)


def test_the_key_changes_with_the_tower_the_pixels_the_settings_and_the_precision():
    model, _ = build_tiny_vlm("avgpool", 4, llm_hidden=32, llm_layers=1)
    bigger_llm, _ = build_tiny_vlm("quecc", 16, llm_hidden=64, llm_layers=2)  # same tower, same seed
    pixels = torch.rand(3, 3, 96, 96)
    key = _key(model, pixels)

    assert _key(bigger_llm, pixels) == key  # the LLM and the compressor do not change the features
    assert _key(model, pixels.clone()) == key
    moved = pixels.clone()
    moved[0, 0, 0, 0] += 1e-3
    assert _key(model, moved) != key
    assert _key(model, pixels, device="cuda") != key
    assert _key(model, pixels, precision="torch.bfloat16") != key
    prumerge, _ = build_tiny_vlm("prumerge", 4, llm_hidden=32, llm_layers=1)  # also needs CLS attention
    assert _key(prumerge, pixels) != key
    other_seed, _ = build_tiny_vlm("avgpool", 4, llm_hidden=32, llm_layers=1, seed=1)
    assert _key(other_seed, pixels) != key
    changed, _ = build_tiny_vlm("avgpool", 4, llm_hidden=32, llm_layers=1)
    with torch.no_grad():
        changed.vision_tower.encoder.layers[0].mlp.fc1.weight[0, 0] += 1e-6
    assert _key(changed, pixels) != key


def _features(value: float, rows: int = 4) -> dict[str, torch.Tensor]:
    return {"patch_feats": torch.full((rows, 8), value)}


def test_a_corrupt_entry_is_removed_and_computed_again(tmp_path):
    cache = FeatureCache(tmp_path, max_bytes=1 << 20)
    cache.get_or_compute("k", lambda: _features(1.0))
    cache.entry("k").write_bytes(cache.entry("k").read_bytes()[:40])  # a truncated file

    features, hit = cache.get_or_compute("k", lambda: _features(2.0))

    assert not hit and torch.equal(features["patch_feats"], _features(2.0)["patch_feats"])
    assert torch.equal(cache.get("k")["patch_feats"], _features(2.0)["patch_feats"])


def test_least_recently_used_entries_make_room(tmp_path):
    entry_bytes = 4 * 8 * 4
    cache = FeatureCache(tmp_path, max_bytes=2 * entry_bytes + 100)
    cache.get_or_compute("old", lambda: _features(1.0))
    cache.get_or_compute("used", lambda: _features(2.0))
    time.sleep(0.01)
    assert cache.get("old") is not None  # reading it makes "used" the least recently used

    cache.get_or_compute("new", lambda: _features(3.0))

    assert {path.stem for path in cache.entries()} == {"old", "new"}
    too_big, hit = cache.get_or_compute("huge", lambda: _features(4.0, rows=1000))
    assert not hit and too_big["patch_feats"].shape == (1000, 8)
    assert cache.get("huge") is None  # larger than the whole cache: returned, not stored


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: a write of more than that fails with ENOSPC, as on a full disk."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_an_unusable_folder_only_costs_the_cache(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    features, hit = FeatureCache(blocker / "cache", max_bytes=1 << 20).get_or_compute("k", lambda: _features(1.0))
    assert not hit and features["patch_feats"].shape == (4, 8)


def test_a_full_disk_only_costs_the_cache_and_leaves_no_partial_file(full_disk):
    cache = FeatureCache(full_disk / "cache", max_bytes=1 << 30)
    features, hit = cache.get_or_compute("k", lambda: _features(1.0, rows=8000))  # 256 KB

    assert not hit and features["patch_feats"].shape == (8000, 8)
    assert cache.entries() == []
    assert [path.name for path in cache.folder.iterdir()] == [".k.lock"]
    small, _ = cache.get_or_compute("small", lambda: _features(2.0))  # what fits is still stored
    assert cache.get("small") is not None and torch.equal(small["patch_feats"], _features(2.0)["patch_feats"])


def _compute_once(folder: str, marker: str, results) -> None:
    def slow():
        with open(marker, "a") as handle:
            handle.write("computed\n")
        time.sleep(1.0)
        return _features(5.0)

    features, hit = FeatureCache(folder, max_bytes=1 << 20).get_or_compute("shared", slow)
    results.put((hit, float(features["patch_feats"][0, 0])))


def test_two_processes_asking_at_once_encode_once(tmp_path):
    marker = tmp_path / "computed.txt"
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_compute_once, args=(str(tmp_path / "cache"), str(marker), results)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)

    assert marker.read_text().count("computed") == 1
    assert outcomes == [(False, 5.0), (True, 5.0)]


@pytest.mark.parametrize("changes", [{"synthetic_count": 48}, {"dataset": "synthetic:glyphs"}])
def test_other_images_are_another_entry(tmp_path, changes):
    cache = FeatureCache(tmp_path / "cache", max_bytes=1 << 30)
    _train(tmp_path / "a", cache)
    result, _ = _train(tmp_path / "b", cache, **changes)
    assert result.encoder_features == "encoded"
    assert len(cache.entries()) == 2


def _evaluate(checkpoint, synthetic_root, cache):
    from evaluation.harness import CheckpointEvaluator

    evaluator = CheckpointEvaluator(
        checkpoint, batch_size=8, device="cpu", synthetic_dir=synthetic_root, feature_cache=cache
    )
    outcome = evaluator.evaluate(["shapes"], limit=24, latency_samples=0)
    # What the model answers for the first items, asked directly (the outcome keeps no per-item answers).
    from evaluation.synthetic import synthetic_examples

    items = synthetic_examples("shapes", "test", count=8)
    answers = evaluator.runner.generate([item.image for item in items], [item.prompt for item in items])
    return outcome.rows[0].value, outcome.raw_results["results"]["shapes"], answers


def test_a_sweep_s_checkpoints_are_scored_from_one_encoding_and_score_as_without_it(tmp_path, synthetic_root):
    from evaluation.tiny import make_tiny_checkpoint

    small = make_tiny_checkpoint(tmp_path / "small", compressor="avgpool", tokens=4, llm_hidden=32, llm_layers=1)
    large = make_tiny_checkpoint(tmp_path / "large", compressor="quecc", tokens=16, llm_hidden=64, llm_layers=2)
    cache = FeatureCache(tmp_path / "cache", max_bytes=1 << 30)

    small_plain, large_plain = (_evaluate(path, synthetic_root, None) for path in (small, large))
    small_cached = _evaluate(small, synthetic_root, cache)
    stored = cache.misses
    large_cached = _evaluate(large, synthetic_root, cache)

    assert stored == len(cache.entries()) == 4  # 24 items in batches of 8 and the 8 asked directly
    assert (cache.hits, cache.misses) == (4, 4)  # the second checkpoint encoded nothing
    assert small_cached == small_plain and large_cached == large_plain


def test_latency_is_timed_with_the_encoder_running(tmp_path, quecc_checkpoint):
    from PIL import Image

    from evaluation.latency import measure_latency
    from evaluation.loading import load_vlm

    runner = load_vlm(quecc_checkpoint, device="cpu")
    cache = FeatureCache(tmp_path / "cache", max_bytes=1 << 30)
    runner.model.feature_cache = cache
    images = [Image.new("RGB", (96, 96), (200, 30, 30))]

    measure_latency(runner, images, ["question: what color is it? answer:"], new_tokens=2, warmup=1, repeats=1)

    assert (cache.hits, cache.misses, cache.entries()) == (0, 0, [])
    assert runner.model.feature_cache is cache  # attached again for scoring
