"""MMBench miniature: ``lmms-lab-encoder/MMBench`` (lmms-eval 0.7.3's ``mmbench_en_dev`` and its rule-based
``mmbench_en_dev_static`` read config ``en``, split ``dev``; a copy of lmms-lab/MMBench).

The hub's columns: ``index`` (int64), ``question``, ``hint`` (None for most questions), ``answer`` (the right
option's letter), ``A`` .. ``D`` (option texts; ``C``/``D`` None for questions with fewer options),
``category``, ``image``, ``source``, ``L2-category``, ``comment`` (None here) and ``split`` ("dev"). The task
reads all of them but ``comment``; the prompt is "<hint> <question> There are several options:\\nA. ..." (no
hint when it is None).

Circular evaluation: a question with n options has n rows, ``index`` = the original's + k * 1_000_000
(k = 0 .. n-1) with the options rotated k places (option ``(j + k) % n`` shown as letter j) and the answer
letter moved with them. lmms-eval groups the rows by ``index % 1_000_000`` and counts the original question
right only when every row of its group is; the score is the share of originals right (index < 1_000_000).
Here only the questions marked circular get rotated copies (``CIRCULAR_STEP``), so both kinds occur.
"""

import random
from pathlib import Path

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/MMBench"
TASK = "mmbench_en_dev"
CONFIG = "en"
SPLIT = "dev"
LETTERS = "ABCD"
CIRCULAR_STEP = 1_000_000
# (category, L2-category, source, hint, question, options, answer letter, circular, objects drawn)
QUESTIONS = (
    ("attribute_recognition", "finegrained_perception (instance-level)", "MMBench",
     "The picture shows a shelf in a toy shop.", "What colour is the ball on the shelf?",
     ("red", "blue", "green", "yellow"), "B", False, ("ball", "shelf")),
    ("image_scene", "coarse_perception", "MMBench", None, "Which place does the image show?",
     ("a kitchen", "a beach", "a forest", "a street"), "C", False, ("tree", "tree", "bush")),
    ("object_localization", "finegrained_perception (instance-level)", "MMBench", None,
     "Where is the cup in the image?", ("left", "right", "centre"), "A", False, ("cup", "plate", "fork")),
    ("spatial_relationship", "relation_reasoning", "MMBench", None, "Which object is on top of the box?",
     ("a lamp", "a cat", "a book", "a clock"), "D", True, ("clock", "box")),
    ("ocr", "finegrained_perception (instance-level)", "MMBench", "Read the number on the sign.",
     "Which number is written on the sign?", ("12", "21", "15", "51"), "A", True, ("sign 12",)),
    ("physical_property_reasoning", "attribute_reasoning", "ScienceQA", None, "Which of these is heavier?",
     ("the feather", "the brick"), "B", True, ("feather", "brick")),
)


def features():
    import datasets

    string = datasets.Value("string")
    columns = {"index": datasets.Value("int64"), "question": string, "hint": string, "answer": string}
    columns.update({letter: string for letter in LETTERS})
    columns.update({"category": string, "image": datasets.Image(), "source": string, "L2-category": string,
                    "comment": string, "split": string})
    return datasets.Features(columns)


def rotated(options: tuple[str, ...], answer: str, k: int) -> tuple[list[str], str]:
    """The k-th circular copy: option ``(j + k) % n`` shown as letter j; the answer letter follows its option."""
    n = len(options)
    shown = [options[(j + k) % n] for j in range(n)]
    return shown, LETTERS[(LETTERS.index(answer) - k) % n]


def rows(count: int, seed: int) -> list[dict]:
    """``count`` original questions (indices 1..count, cycling over ``QUESTIONS``) and the circular copies of
    those marked circular, in index order."""
    rng = random.Random(f"frontier-minis-mmbench-{seed}")
    originals, copies = [], []
    for number in range(1, count + 1):
        category, l2, source, hint, question, options, answer, circular, objects = QUESTIONS[
            (number - 1) % len(QUESTIONS)]
        image = draw.scene(rng, list(objects))  # the copies show the same picture
        for k in range(len(options) if circular else 1):
            shown, letter = rotated(options, answer, k)
            record = {"index": number + k * CIRCULAR_STEP, "question": question, "hint": hint, "answer": letter}
            record.update({name: shown[j] if j < len(shown) else None for j, name in enumerate(LETTERS)})
            record.update({"category": category, "image": image, "source": source, "L2-category": l2,
                           "comment": None, "split": SPLIT})
            (copies if k else originals).append(record)
    return originals + sorted(copies, key=lambda record: record["index"])


def write(root: str | Path, rows_per_split: int = 6, seed: int = 0) -> Path:
    """``rows_per_split`` original questions (plus the circular copies of the circular ones)."""
    import datasets

    dev = datasets.Dataset.from_list(rows(rows_per_split, seed), features=features())
    return write_snapshot(root, REPO_ID, {CONFIG: {SPLIT: dev}},
                          "MMBench (English): multiple-choice questions, scored with circular evaluation.")
