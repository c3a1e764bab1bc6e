"""VQAv2 miniature: ``lmms-lab-encoder/VQAv2`` (lmms-eval 0.7.3's ``vqav2_val`` reads split ``validation``,
``vqav2_test`` reads ``test``), config ``default``, splits ``validation``, ``testdev`` and ``test``.

The hub's columns: ``question_type``, ``multiple_choice_answer`` (strings), ``answers`` (a list of ten
{``answer``, ``answer_confidence`` ("yes"/"maybe"/"no"), ``answer_id`` (int64, 1-10)}), ``image_id`` (int64),
``answer_type``, ``question_id`` (int64), ``question`` and ``image``. The task reads ``image``, ``question``,
``answers`` and ``question_id``. Its leave-one-out removes every answer *dict* equal to the current one, so the
distinct ``answer_id`` values matter to the score.

Each image is a coloured square; row ``i``'s answers name its colour ``MATCHES[i % len(MATCHES)]`` times (as in
the TextVQA mini). ``testdev`` and ``test`` have no answers (null answers and multiple_choice_answer).
"""

import random
from collections import Counter
from pathlib import Path

from PIL import ImageDraw

from . import draw
from .snapshot import write_snapshot
from .textvqa import MATCHES, annotator_answers

REPO_ID = "lmms-lab-encoder/VQAv2"
TASK = "vqav2_val"
SPLITS = ("validation", "testdev", "test")
CONFIDENCES = ("yes", "yes", "maybe", "yes", "no")


def features():
    import datasets

    string, int64 = datasets.Value("string"), datasets.Value("int64")
    return datasets.Features(
        {
            "question_type": string,
            "multiple_choice_answer": string,
            "answers": [{"answer": string, "answer_confidence": string, "answer_id": int64}],
            "image_id": int64,
            "answer_type": string,
            "question_id": int64,
            "question": string,
            "image": datasets.Image(),
        }
    )


def rows(count: int, seed: int, split: str) -> list[dict]:
    rng = random.Random(f"frontier-minis-vqav2-{seed}-{split}")
    colours = list(draw.COLOURS)
    records = []
    for index in range(count):
        colour = colours[index % len(colours)]
        image = draw.background(rng, (120, 90))
        ImageDraw.Draw(image).rectangle((30, 15, 90, 75), fill=draw.COLOURS[colour])
        answers = annotator_answers(rng, colour, colours, MATCHES[index % len(MATCHES)])
        image_id = 262148 + 17 * index + {"validation": 0, "testdev": 1, "test": 2}[split]
        labelled = split == "validation"
        records.append(
            {
                "question_type": "what color is the",
                "multiple_choice_answer": Counter(answers).most_common(1)[0][0] if labelled else None,
                "answers": [
                    {"answer": answer, "answer_confidence": CONFIDENCES[number % len(CONFIDENCES)],
                     "answer_id": number + 1}
                    for number, answer in enumerate(answers)
                ] if labelled else None,
                "image_id": image_id,
                "answer_type": "other",
                "question_id": image_id * 1000 + 2,
                "question": "What color is the square?",
                "image": image,
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    splits = {split: datasets.Dataset.from_list(rows(rows_per_split, seed, split), features=features())
              for split in SPLITS}
    return write_snapshot(root, REPO_ID, {"default": splits}, "VQAv2: open questions on COCO-like images.")
