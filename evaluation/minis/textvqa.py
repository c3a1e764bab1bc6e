"""TextVQA miniature: ``lmms-lab-encoder/textvqa`` (lmms-eval 0.7.3's ``textvqa_val`` reads split ``validation``
of config ``default``; ``textvqa_test`` reads ``test``), splits ``train``, ``validation`` and ``test``.

The hub's columns: ``image_id`` (string), ``question_id`` (int32), ``question``, ``question_tokens`` (list of
strings), ``image``, ``image_width``/``image_height`` (int32), ``flickr_original_url``, ``flickr_300k_url``,
``answers`` (ten annotator answers), ``image_classes`` (list), ``set_name`` and ``ocr_tokens`` (list). The task
reads ``image``, ``question``, ``answers``, ``question_id`` and, with ``ocr: true``, ``ocr_tokens``.

Each image is a sign with one word; row ``i``'s ten answers hold that word ``MATCHES[i % len(MATCHES)]``
times (the rest are other words), so VQA accuracy (min(#matches among the other nine / 3, 1), averaged
over the ten leave-one-out subsets) takes several values. The ``test`` split has no answers (null, which
the task checks for).
"""

import random
from pathlib import Path

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/textvqa"
TASK = "textvqa_val"
SPLITS = ("train", "validation", "test")
WORDS = ("stop", "exit", "open", "sale", "taxi", "hotel", "bank", "cafe", "park", "menu", "gate", "pharmacy")
MATCHES = (10, 3, 2, 1, 0, 4)
ANNOTATORS = 10


def features():
    import datasets

    string, strings, int32 = datasets.Value("string"), datasets.Sequence(datasets.Value("string")), datasets.Value(
        "int32"
    )
    return datasets.Features(
        {
            "image_id": string,
            "question_id": int32,
            "question": string,
            "question_tokens": strings,
            "image": datasets.Image(),
            "image_width": int32,
            "image_height": int32,
            "flickr_original_url": string,
            "flickr_300k_url": string,
            "answers": strings,
            "image_classes": strings,
            "set_name": string,
            "ocr_tokens": strings,
        }
    )


def annotator_answers(rng: random.Random, word: str, vocabulary, matches: int) -> list[str]:
    """Ten annotators' answers, ``matches`` of them ``word`` and the rest other words of ``vocabulary``."""
    others = [other for other in vocabulary if other != word]
    answers = [word] * matches + [rng.choice(others) for _ in range(ANNOTATORS - matches)]
    rng.shuffle(answers)
    return answers


def rows(count: int, seed: int, split: str) -> list[dict]:
    rng = random.Random(f"frontier-minis-textvqa-{seed}-{split}")
    offset = {"train": 0, "validation": 34602, "test": 39602}[split]
    records = []
    for index in range(count):
        word = WORDS[index % len(WORDS)]
        answers = annotator_answers(rng, word, WORDS, MATCHES[index % len(MATCHES)])
        image = draw.text_page(rng, ["", f"   {word.upper()}"], size=(160, 100))
        question = "what word is written on the sign?"
        image_id = f"{rng.getrandbits(64):016x}"
        records.append(
            {
                "image_id": image_id,
                "question_id": offset + index,
                "question": question,
                "question_tokens": question.rstrip("?").split() + ["?"],
                "image": image,
                "image_width": image.width,
                "image_height": image.height,
                "flickr_original_url": f"https://example.invalid/flickr/{image_id}_o.jpg",
                "flickr_300k_url": f"https://example.invalid/flickr/{image_id}_z.jpg",
                "answers": None if split == "test" else answers,
                "image_classes": ["Street sign", "Signage"],
                "set_name": "val" if split == "validation" else split,
                "ocr_tokens": [word.upper()],
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    splits = {split: datasets.Dataset.from_list(rows(rows_per_split, seed, split), features=features())
              for split in SPLITS}
    return write_snapshot(root, REPO_ID, {"default": splits}, "TextVQA: questions about text in images.")
