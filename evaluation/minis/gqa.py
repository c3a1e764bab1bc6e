"""GQA miniature: ``lmms-lab-encoder/GQA`` with the two configs lmms-eval 0.7.3's ``gqa`` reads, both split
``testdev``: ``testdev_balanced_instructions`` (its ``dataset_name``) and ``testdev_balanced_images``, which
the task's ``process_docs`` loads *by hub id* (``load_dataset("lmms-lab-encoder/GQA", "testdev_balanced_images",
split="testdev")``, not through ``dataset_path``) and joins on ``imageId`` -> ``id``. A mirror must therefore
answer that hub id too, not only the task's ``dataset_path``.

Instruction columns as on the hub card: ``id``, ``imageId``, ``question``, ``answer``, ``fullAnswer`` (strings),
``isBalanced`` (bool), ``groups`` {global, local}, ``entailed``, ``equivalent`` (strings), ``types``
{structural, semantic, detailed}, ``annotations`` (sequence of {question, answer, fullAnswer}, each a sequence
of {objectId, value}), ``semantic`` (sequence of {operation, argument, dependencies: sequence of int32}) and
``semanticStr`` (the nested layouts of ``annotations`` and ``semantic`` are read off a card diff, unconfirmed).
Image columns: ``id`` and ``image``. The task reads ``imageId``, ``question`` and ``answer`` (and the images'
``id``, ``image``). The hub repository holds many more configs (train/val/test/challenge, all/balanced); only
these two are written.
"""

import random
from pathlib import Path

from . import draw
from .snapshot import write_snapshot

REPO_ID = "lmms-lab-encoder/GQA"
TASK = "gqa"
CONFIG = "testdev_balanced_instructions"
IMAGES_CONFIG = "testdev_balanced_images"
SPLIT = "testdev"
OBJECTS = ("cup", "lamp", "book", "phone", "plate", "chair")


def features():
    import datasets

    string = datasets.Value("string")
    pointer = datasets.Sequence({"objectId": string, "value": string})
    return datasets.Features(
        {
            "id": string,
            "imageId": string,
            "question": string,
            "answer": string,
            "fullAnswer": string,
            "isBalanced": datasets.Value("bool"),
            "groups": {"global": string, "local": string},
            "entailed": string,
            "equivalent": string,
            "types": {"structural": string, "semantic": string, "detailed": string},
            "annotations": datasets.Sequence({"question": pointer, "answer": pointer, "fullAnswer": pointer}),
            "semantic": datasets.Sequence(
                {"operation": string, "argument": string, "dependencies": datasets.Sequence(datasets.Value("int32"))}
            ),
            "semanticStr": string,
        }
    )


def image_features():
    import datasets

    return datasets.Features({"id": datasets.Value("string"), "image": datasets.Image()})


def scenes(count: int, seed: int) -> list[tuple[str, list[str]]]:
    """(image id, the objects drawn left to right), one scene per two questions."""
    rng = random.Random(f"frontier-minis-gqa-scenes-{seed}")
    return [(f"n{161313 + 1000 * index}", rng.sample(OBJECTS, 3)) for index in range((count + 1) // 2)]


def _question(index: int, objects: list[str]) -> tuple[str, str, str, str]:
    """(question, answer, full answer, semantic type): which object is leftmost, or is X in the picture."""
    if index % 2 == 0:
        return (f"Which object is on the left side of picture {index + 1}?", objects[0],
                f"The object on the left is a {objects[0]}.", "rel")
    absent = next(name for name in OBJECTS if name not in objects)
    asked, answer = (objects[1], "yes") if index % 4 == 1 else (absent, "no")
    return (f"Is there a {asked} in picture {index + 1}?", answer,
            f"{answer.capitalize()}, there is {'a' if answer == 'yes' else 'no'} {asked}.", "obj")


def rows(count: int, seed: int) -> list[dict]:
    records = []
    for index in range(count):
        image_id, objects = scenes(count, seed)[index // 2]
        question, answer, full_answer, semantic = _question(index, objects)
        records.append(
            {
                "id": f"20{index:07d}",
                "imageId": image_id,
                "question": question,
                "answer": answer,
                "fullAnswer": full_answer,
                "isBalanced": True,
                "groups": {"global": answer if semantic == "rel" else None, "local": f"{semantic}-{index % 3}"},
                "entailed": "",
                "equivalent": f"['20{index:07d}']",
                "types": {"structural": "choose" if semantic == "rel" else "verify", "semantic": semantic,
                          "detailed": "positionQuery" if semantic == "rel" else "existRelS"},
                # Sequence(dict) columns hold a dict of lists (datasets' representation of the card's "sequence:")
                "annotations": {"question": [{"objectId": [], "value": []}],
                                "answer": [{"objectId": [f"{index}"], "value": ["0"]}],
                                "fullAnswer": [{"objectId": [], "value": []}]},
                "semantic": {"operation": ["select", "query" if semantic == "rel" else "exist"],
                             "argument": [objects[0], "name"], "dependencies": [[], [0]]},
                "semanticStr": f"select: {objects[0]} ->{'query: name' if semantic == 'rel' else 'exist: ?'} [0]",
            }
        )
    return records


def write(root: str | Path, rows_per_split: int = 8, seed: int = 0) -> Path:
    import datasets

    rng = random.Random(f"frontier-minis-gqa-images-{seed}")
    images = [{"id": image_id, "image": draw.scene(rng, objects)} for image_id, objects in scenes(rows_per_split, seed)]
    configs = {
        CONFIG: {SPLIT: datasets.Dataset.from_list(rows(rows_per_split, seed), features=features())},
        IMAGES_CONFIG: {SPLIT: datasets.Dataset.from_list(images, features=image_features())},
    }
    return write_snapshot(root, REPO_ID, configs, "GQA: compositional questions on scenes (testdev, balanced).")
