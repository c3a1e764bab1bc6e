"""ChartQA miniature: ``lmms-lab-encoder/ChartQA`` (lmms-eval 0.7.3's ``chartqa``), config ``default``, split
``test``, the hub's columns ``type`` ("human_test" or "augmented_test"), ``question``, ``answer`` (a string:
a number, a percentage or a word) and ``image``. The task reads all four.

Rows alternate human/augmented questions over drawn bar charts: the value of a bar (a number), the bar
with the largest value (a word) and a bar's share of the total (a percentage, "40%").
"""

import random
from pathlib import Path

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/ChartQA"
TASK = "chartqa"
LABELS = ("Oslo", "Lima", "Pune", "Kiev", "Rome", "Bonn", "Doha", "Faro")


def features():
    import datasets

    string = datasets.Value("string")
    return datasets.Features({"type": string, "question": string, "answer": string, "image": datasets.Image()})


def _question(index: int, title: str, bars: dict[str, float]) -> tuple[str, str]:
    labels = list(bars)
    kind = index % 3
    if kind == 0:
        label = labels[index % len(labels)]
        return f"What is the value of {label} in the chart '{title}'?", f"{bars[label]:g}"
    if kind == 1:
        return f"Which city has the highest value in the chart '{title}'?", max(bars, key=bars.get)
    label = labels[0]
    return f"What share of the total does {label} have in the chart '{title}'?", (
        f"{round(100 * bars[label] / sum(bars.values()))}%"
    )


def rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(f"frontier-minis-chartqa-{seed}")
    records = []
    for index in range(count):
        labels = rng.sample(LABELS, 4)
        values = rng.sample(range(10, 90), 4)
        if index % 3 == 2:  # make the first bar's share a whole percentage
            values = [20, 10, 40, 30]
        bars = dict(zip(labels, map(float, values)))
        title = f"Visitors per day, survey {index + 1}"
        question, answer = _question(index, title, bars)
        records.append(
            {
                "type": "human_test" if index % 2 == 0 else "augmented_test",
                "question": question,
                "answer": answer,
                "image": draw.bar_chart(rng, title, bars),
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    test = datasets.Dataset.from_list(rows(rows_per_split, seed), features=features())
    return write_snapshot(root, REPO_ID, {"default": {"test": test}}, "ChartQA: questions about bar charts.")
