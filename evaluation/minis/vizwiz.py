"""VizWiz-VQA miniature: ``lmms-lab-encoder/VizWiz-VQA`` (lmms-eval 0.7.3's ``vizwiz_vqa_val`` reads split ``val``,
``vizwiz_vqa_test`` reads ``test``), config ``default``, the hub's columns ``question_id`` (a string, the image's
file name), ``image``, ``question``, ``answers`` (ten annotators' answers) and ``category`` ("other", "yes/no",
"number", "unanswerable"). The task reads ``image``, ``question``, ``answers`` and ``question_id``.

Each image is a label with one word (or, for unanswerable questions, a blur of grey); row ``i``'s answers hold
that word ``MATCHES[i % len(MATCHES)]`` times, as in the TextVQA mini. The ``test`` split has no answers (null).
"""

import random
from pathlib import Path

from . import draw
from .snapshot import write_snapshot
from .textvqa import MATCHES, annotator_answers

REPO_ID = "lmms-lab-encoder/VizWiz-VQA"
TASK = "vizwiz_vqa_val"
SPLITS = ("val", "test")
WORDS = ("soup", "coffee", "beans", "tea", "rice", "pasta", "milk", "unanswerable", "corn", "salt")


def features():
    import datasets

    string = datasets.Value("string")
    return datasets.Features(
        {"question_id": string, "image": datasets.Image(), "question": string,
         "answers": datasets.Sequence(string), "category": string}
    )


def rows(count: int, seed: int, split: str) -> list[dict]:
    rng = random.Random(f"frontier-minis-vizwiz-{seed}-{split}")
    records = []
    for index in range(count):
        word = WORDS[index % len(WORDS)]
        lines = ["", f"  {word.upper()}"] if word != "unanswerable" else ["", "  ~~~~~~"]
        records.append(
            {
                "question_id": f"VizWiz_{split}_{index:08d}.jpg",
                "image": draw.text_page(rng, lines, size=(160, 100)),
                "question": "what is in this can?",
                "answers": None if split == "test" else annotator_answers(rng, word, WORDS, MATCHES[index % 6]),
                "category": "unanswerable" if word == "unanswerable" else "other",
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    splits = {split: datasets.Dataset.from_list(rows(rows_per_split, seed, split), features=features())
              for split in SPLITS}
    return write_snapshot(root, REPO_ID, {"default": splits}, "VizWiz-VQA: questions from blind photographers.")
