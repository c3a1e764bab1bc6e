"""DocVQA miniature: ``lmms-lab-encoder/DocVQA`` config ``DocVQA`` (lmms-eval 0.7.3's ``docvqa_val`` reads split
``validation``, ``docvqa_test`` reads ``test``), splits ``train``, ``validation`` and ``test``.

The hub's columns: ``questionId`` (string), ``question``, ``question_types`` (list of strings), ``image``,
``docId`` (int64), ``ucsf_document_id``, ``ucsf_document_page_no`` (strings), ``answers`` (list of strings) and
``data_split``. The task reads ``image``, ``question`` and ``answers`` (scored by ANLS against the closest
answer), and ``questionId`` for the test split's submission file. The ``test`` split has no answers (null).

Each page is a small typed form (sender, date, amount, reference); each question asks one field, with the
field's text as the answer and, for dates and amounts, a second written form ("12 May 1998", "12/05/1998").
"""

import random
from pathlib import Path

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/DocVQA"
TASK = "docvqa_val"
CONFIG = "DocVQA"
SPLITS = ("train", "validation", "test")
SENDERS = ("Acme Tobacco Co.", "R. J. Miller", "Brown & Sons", "Lorillard Research", "Philip Morris")
MONTHS = ("January", "March", "May", "July", "September", "November")


def features():
    import datasets

    string, strings = datasets.Value("string"), datasets.Sequence(datasets.Value("string"))
    return datasets.Features(
        {
            "questionId": string,
            "question": string,
            "question_types": strings,
            "image": datasets.Image(),
            "docId": datasets.Value("int64"),
            "ucsf_document_id": string,
            "ucsf_document_page_no": string,
            "answers": strings,
            "data_split": string,
        }
    )


def _page(rng: random.Random) -> dict[str, list[str]]:
    day, month, year = rng.randint(1, 28), rng.randrange(len(MONTHS)), rng.randint(1975, 1999)
    amount = rng.randint(100, 9999)
    month_number = 2 * month + 1
    return {
        "sender": [rng.choice(SENDERS)],
        "date": [f"{day} {MONTHS[month]} {year}", f"{day:02d}/{month_number:02d}/{year}"],
        "amount": [f"${amount:,}.00", f"{amount}"],
        "reference": [f"{rng.choice('ABCDEFGH')}{rng.randint(100, 999)}-{rng.randint(10, 99)}"],
    }


QUESTIONS = {
    "sender": ("Who is the letter from?", ["handwritten"]),
    "date": ("What is the date mentioned in the letter?", ["form"]),
    "amount": ("What is the total amount?", ["table/list", "form"]),
    "reference": ("What is the reference number?", ["layout"]),
}


def rows(count: int, seed: int, split: str) -> list[dict]:
    rng = random.Random(f"frontier-minis-docvqa-{seed}-{split}")
    records = []
    doc_id = {"train": 1000, "validation": 2000, "test": 3000}[split]
    page, image = {}, None
    for index in range(count):
        if index % len(QUESTIONS) == 0:  # four questions per page, as DocVQA asks several per document
            page, doc_id = _page(rng), doc_id + 1
            image = draw.text_page(
                rng,
                [f"From: {page['sender'][0]}", f"Date: {page['date'][0]}", f"Total: {page['amount'][0]}",
                 f"Ref.: {page['reference'][0]}"],
                size=(260, 100),
            )
        field = list(QUESTIONS)[index % len(QUESTIONS)]
        question, kinds = QUESTIONS[field]
        records.append(
            {
                "questionId": str(50000 + 10 * doc_id + index),
                "question": question,
                "question_types": kinds,
                "image": image,
                "docId": doc_id,
                "ucsf_document_id": f"{rng.choice('fghjklmnpq')}{rng.choice('fghjklmnpq')}{rng.randint(1000, 9999)}",
                "ucsf_document_page_no": str(1 + index % 3),
                "answers": None if split == "test" else page[field],
                "data_split": "val" if split == "validation" else split,
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    splits = {split: datasets.Dataset.from_list(rows(rows_per_split, seed, split), features=features())
              for split in SPLITS}
    return write_snapshot(root, REPO_ID, {CONFIG: splits}, "DocVQA: questions about scanned documents.")
