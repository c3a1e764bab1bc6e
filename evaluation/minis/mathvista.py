"""MathVista miniature: ``AI4Math/MathVista`` (lmms-eval 0.7.3's ``mathvista_testmini_format`` reads split
``testmini``), config ``default``; only that split is written (the hub also has ``test``).

The hub's columns: ``pid`` (a string number), ``question``, ``image`` (the file name in the hub's image
archive, "images/<pid>.jpg"), ``decoded_image`` (the picture), ``choices`` (a list of strings for
``multi_choice`` questions, None for ``free_form``), ``unit`` (string or None), ``precision`` (float64: 1.0 or
2.0 for float answers, else None), ``answer`` (a string: the right choice's *text*, or the number / list),
``question_type`` ("multi_choice" | "free_form"), ``answer_type`` ("text" for multiple choice, else
"integer" | "float" | "list"), ``metadata`` (a struct: category, context, grade, img_height, img_width,
language, skills (list of strings), source, split, task) and ``query`` (the dataset's own prompt, "Hint: ...
Question: ... Choices: (A) ..."). The task builds its own prompt from question, unit, choices, precision and
the types, and sends ``query`` to the judge along with the model's response; it aggregates over ``metadata``.
"""

import random
from pathlib import Path

from . import draw
from .snapshot import write_snapshot

REPO_ID = "AI4Math/MathVista"
TASK = "mathvista_testmini_format"
SPLIT = "testmini"
_HINTS = {
    "text": "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.",
    "integer": "Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, "
               "at the end.",
    1.0: "Please answer the question requiring a floating-point number with one decimal place and provide the final "
         "value, e.g., 1.2, 1.3, 1.4, at the end.",
    2.0: "Please answer the question requiring a floating-point number with two decimal places and provide the "
         "final value, e.g., 1.23, 1.34, 1.45, at the end.",
    "list": "Please answer the question requiring a Python list as an answer and provide the final list, e.g., "
            "[1, 2, 3], [1.2, 1.3, 1.4], at the end.",
}
# (question, choices, unit, precision, answer, answer type, category, context, grade, skills, source, task, bars)
QUESTIONS = (
    ("How many sides does the shape in the figure have?", ["3", "4", "5", "6"], None, None, "4", "text",
     "math-targeted-vqa", "geometry diagram", "elementary school", ["geometry reasoning"], "IconQA",
     "figure question answering", {"sides": 4}),
    ("Which bar is the tallest?", ["red", "blue", "green"], None, None, "blue", "text", "general-vqa", "bar chart",
     "daily life", ["statistical reasoning"], "FigureQA", "figure question answering",
     {"red": 3, "blue": 7, "green": 5}),
    ("What is the sum of the two bars?", None, None, None, "12", "integer", "math-targeted-vqa", "bar chart",
     "elementary school", ["arithmetic reasoning", "statistical reasoning"], "ChartQA",
     "figure question answering", {"a": 5, "b": 7}),
    ("How long is the blue bar?", None, "cm", None, "7", "integer", "math-targeted-vqa", "bar chart",
     "elementary school", ["arithmetic reasoning"], "TabMWP", "math word problem", {"red": 4, "blue": 7}),
    ("What is the value of the green bar?", None, None, 1.0, "2.5", "float", "math-targeted-vqa", "bar chart",
     "high school", ["statistical reasoning"], "ChartQA", "figure question answering", {"green": 2.5, "red": 1}),
    ("What fraction of the total is the red bar?", None, None, 2.0, "0.25", "float", "math-targeted-vqa",
     "bar chart", "high school", ["arithmetic reasoning"], "FigureQA", "figure question answering",
     {"red": 1, "blue": 3}),
    ("Between which two years is the value highest?", None, None, None, "[2007, 2008]", "list",
     "math-targeted-vqa", "line plot", "high school", ["statistical reasoning"], "ChartQA",
     "figure question answering", {"2006": 2, "2007": 6, "2008": 6, "2009": 3}),
    ("Is the left bar taller than the right bar?", ["Yes", "No"], None, None, "No", "text", "general-vqa",
     "bar chart", "daily life", ["statistical reasoning"], "FigureQA", "figure question answering",
     {"left": 2, "right": 5}),
)


def features():
    import datasets

    string = datasets.Value("string")
    metadata = {"category": string, "context": string, "grade": string, "img_height": datasets.Value("int64"),
                "img_width": datasets.Value("int64"), "language": string, "skills": datasets.Sequence(string),
                "source": string, "split": string, "task": string}
    return datasets.Features(
        {
            "pid": string,
            "question": string,
            "image": string,
            "decoded_image": datasets.Image(),
            "choices": datasets.Sequence(string),
            "unit": string,
            "precision": datasets.Value("float64"),
            "answer": string,
            "question_type": string,
            "answer_type": string,
            "metadata": metadata,
            "query": string,
        }
    )


def query(question: str, choices, unit, precision, answer_type: str) -> str:
    """The dataset's ``query``: its hint, the question (with the unit), the choices as "(A) ..."."""
    text = f"Hint: {_HINTS[precision if answer_type == 'float' else answer_type]}\nQuestion: {question}"
    if unit:
        text += f" (Unit: {unit})"
    if choices:
        text += "\nChoices:\n" + "\n".join(f"({chr(ord('A') + i)}) {choice}" for i, choice in enumerate(choices))
    return text


def rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(f"frontier-minis-mathvista-{seed}")
    records = []
    for index in range(count):
        (question, choices, unit, precision, answer, answer_type, category, context, grade, skills, source, task,
         bars) = QUESTIONS[index % len(QUESTIONS)]
        image = draw.bar_chart(rng, question[:28], bars)
        pid = str(index + 1)
        records.append(
            {
                "pid": pid,
                "question": question,
                "image": f"images/{pid}.jpg",
                "decoded_image": image,
                "choices": choices,
                "unit": unit,
                "precision": precision,
                "answer": answer,
                "question_type": "multi_choice" if choices else "free_form",
                "answer_type": answer_type,
                "metadata": {"category": category, "context": context, "grade": grade, "img_height": image.height,
                             "img_width": image.width, "language": "english", "skills": skills, "source": source,
                             "split": SPLIT, "task": task},
                "query": query(question, choices, unit, precision, answer_type),
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    testmini = datasets.Dataset.from_list(rows(rows_per_split, seed), features=features())
    return write_snapshot(root, REPO_ID, {"default": {SPLIT: testmini}},
                          "MathVista: mathematical reasoning on figures, charts and diagrams.")
