"""The offline synthetic suite: deterministic, large enough, balanced, scored by normalised exact match."""

import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from evaluation.synthetic import (
    COLOURS,
    IMAGE_SIZE,
    SHAPE_QUESTION_KINDS,
    SPOT_COLOURS,
    SPOT_SIDES,
    SYNTHETIC_TASKS,
    chance_level,
    normalize_answer,
    process_results,
    synthetic_examples,
    write_synthetic_suite,
)


class _FunctionTagLoader(yaml.SafeLoader):
    """Reads lmms-eval's ``!function`` tags as plain strings."""


_FunctionTagLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def test_same_seed_writes_the_same_bytes_and_another_seed_differs(tmp_path):
    first = write_synthetic_suite(tmp_path / "a", seed=3, test_size=24, train_size=24)
    second = write_synthetic_suite(tmp_path / "b", seed=3, test_size=24, train_size=24)
    other = write_synthetic_suite(tmp_path / "c", seed=4, test_size=24, train_size=24)
    for task in SYNTHETIC_TASKS:
        for split in ("train", "test"):
            name = f"data/{task}-{split}.parquet"
            assert (first / name).read_bytes() == (second / name).read_bytes()
            assert (first / name).read_bytes() != (other / name).read_bytes()


def test_examples_are_reproducible_in_memory():
    for task in SYNTHETIC_TASKS:
        once, again = (
            synthetic_examples(task, "test", seed=0, count=40),
            synthetic_examples(task, "test", seed=0, count=40),
        )
        assert [(e.prompt, e.answer, e.image.tobytes()) for e in once] == [
            (e.prompt, e.answer, e.image.tobytes()) for e in again
        ]


def test_suite_sizes_and_yaml(synthetic_root):
    suite = synthetic_root / "seed0"
    for task in SYNTHETIC_TASKS:
        assert pq.ParquetFile(suite / f"data/{task}-test.parquet").metadata.num_rows >= 500
        assert pq.ParquetFile(suite / f"data/{task}-train.parquet").metadata.num_rows >= 2000
        config = yaml.load((suite / f"{task}.yaml").read_text(), Loader=_FunctionTagLoader)
        assert config["task"] == task and config["output_type"] == "generate_until"
        assert all(
            Path(path).is_absolute() and Path(path).is_file()
            for path in config["dataset_kwargs"]["data_files"].values()
        )
        listed = {metric["metric"] for metric in config["metric_list"]}
        assert set(process_results({"answer": "x"}, ["x"])) <= listed
        assert config["process_results"] == "!function frontier_synthetic.process_results"


def test_shapes_answers_are_balanced():
    examples = synthetic_examples("shapes", "test", seed=0, count=500)
    assert Counter(e.category for e in examples) == {kind: 125 for kind in SHAPE_QUESTION_KINDS}
    existence = Counter(e.answer for e in examples if e.category == "existence")
    assert existence["yes"] == existence["no"] or abs(existence["yes"] - existence["no"]) == 1
    counts = Counter(e.answer for e in examples if e.category == "count")
    assert set(counts) == {"1", "2", "3", "4"} and max(counts.values()) - min(counts.values()) <= 1
    positions = Counter(e.answer for e in examples if e.category == "position")
    assert all(20 <= positions[answer] <= 45 for answer in ("left", "right", "above", "below"))
    colours = Counter(e.answer for e in examples if e.category == "colour")
    assert set(colours) == set(COLOURS)
    assert all(e.answer in e.options for e in examples)


def test_glyph_answers_are_short_lowercase_strings():
    examples = synthetic_examples("glyphs", "test", seed=0, count=200)
    assert all(3 <= len(e.answer) <= 4 and e.answer == e.answer.lower() and e.answer.isalnum() for e in examples)
    assert len({e.answer for e in examples}) > 190


def _drawn_square(image):
    """(colour, side) of the one non-background square, read back from the pixels."""
    import numpy as np

    pixels = np.asarray(image).astype(int)
    background = pixels[0, 0] if not (pixels[0, 0] != pixels[-1, -1]).any() else pixels[-1, 0]
    drawn = (pixels != background).any(axis=2)
    rows, columns = np.nonzero(drawn)
    height, width = rows.max() - rows.min() + 1, columns.max() - columns.min() + 1
    assert height == width and drawn.sum() == height * width, "one filled square"
    return tuple(pixels[rows[0], columns[0]]), int(height)


def test_spots_one_square_of_a_balanced_colour_with_log_uniform_sides():
    examples = synthetic_examples("spots", "test", seed=0, count=500)
    assert Counter(e.answer for e in examples) == {colour: 50 for colour in SPOT_COLOURS}
    sides = []
    for example in examples:
        colour, side = _drawn_square(example.image)
        assert colour == SPOT_COLOURS[example.answer] and example.answer in example.options
        assert SPOT_SIDES[0] <= side <= SPOT_SIDES[1] and example.image.size == (IMAGE_SIZE, IMAGE_SIZE)
        assert example.category == ("small" if side < 4 else "medium" if side < 12 else "large")
        sides.append(side)
    # log-uniform on [2, 24], rounded: P(side < 4) = ln(3.5 / 2) / ln(12) = 0.23,
    # P(side >= 12) = ln(24 / 11.5) / ln(12) = 0.30
    assert 0.17 < sum(side < 4 for side in sides) / 500 < 0.29
    assert 0.23 < sum(side >= 12 for side in sides) / 500 < 0.35
    assert chance_level("spots") == pytest.approx(0.1)


def test_chance_levels_and_a_uniform_guesser_lands_on_them():
    expected_shapes = (1 / len(COLOURS) + 1 / 4 + 1 / 2 + 1 / 2) / 4
    assert chance_level("shapes") == pytest.approx(expected_shapes)
    assert chance_level("glyphs") < 1e-3
    guesser = random.Random(0)
    examples = synthetic_examples("shapes", "test", seed=0, count=500)
    scores = [process_results({"answer": e.answer}, [guesser.choice(e.options)])["exact_match"] for e in examples]
    assert sum(scores) / len(scores) == pytest.approx(expected_shapes, abs=0.07)


def test_scoring_normalises_case_punctuation_and_number_words():
    assert normalize_answer(" Two. ") == "2"
    assert process_results({"answer": "yes"}, ["Yes!\nthere is a circle"])["exact_match"] == 1.0
    assert process_results({"answer": "k7mx"}, ["K7MX."])["exact_match"] == 1.0
    assert process_results({"answer": "red"}, ["red circle"])["exact_match"] == 0.0
    assert process_results({"answer": "red"}, [""])["exact_match"] == 0.0


def test_train_split_is_exposed_and_differs_from_test():
    train = synthetic_examples("shapes", "train", seed=0)
    test = synthetic_examples("shapes", "test", seed=0, count=50)
    assert len(train) == 2000
    assert train[0].prompt and train[0].answer and train[0].image.size == (96, 96)
    assert {e.image.tobytes() for e in train[:50]}.isdisjoint(e.image.tobytes() for e in test)
    with pytest.raises(ValueError, match="unknown synthetic task"):
        synthetic_examples("nope")
