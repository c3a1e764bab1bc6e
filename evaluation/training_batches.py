"""Batches for training: a cursor over the examples that survives resume, the collator that turns examples
into tensors (prompt masked out of the loss), and the loss computed from already-encoded image features."""

import numpy as np
import torch

from .modeling import FrontierVLM, VisionFeatures
from .prompts import PromptFormat
from .training_data import TrainingExample

IGNORE_INDEX = -100  # label of positions left out of the loss (transformers' convention)


class DataCursor:
    """Position in the example stream: epoch e visits a permutation seeded by (seed, e); batches wrap epochs."""

    def __init__(self, size: int, seed: int, epoch: int = 0, index: int = 0):
        self.size, self.seed, self.epoch, self.index = size, seed, epoch, index
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist()

    def next_indices(self, count: int) -> list[int]:
        indices = []
        while len(indices) < count:
            if self.index == self.size:
                self.epoch, self.index = self.epoch + 1, 0
                self._order = self._permutation()
            taken = self._order[self.index : self.index + count - len(indices)]
            indices += taken
            self.index += len(taken)
        return indices


class Collator:
    """Turns examples into a right-padded model batch (image placeholders expanded, answer-only labels).

    A sequence is ``human ids + answer ids`` per turn in the checkpoint's prompt format
    (``evaluation.prompts``, as evaluation renders it): plain, the answer followed by ``</s>``; a named
    conversation, the human text and the answer as its template closes it. The ``<image>`` marker is expanded
    to V image placeholders. Only answer tokens and their closing carry labels (``IGNORE_INDEX`` elsewhere),
    so the model learns to answer and to stop, exactly as ``runner.generate`` then reads it.
    """

    def __init__(self, tokenizer, image_processor, image_token_id: int, visual_tokens: int, uses_query: bool,
                 prompt_format: PromptFormat | None = None):
        self.prompt_format = prompt_format or PromptFormat()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.image_token_id = image_token_id
        self.visual_tokens = visual_tokens
        self.uses_query = uses_query

    def _ids(self, text: str, special_tokens: bool = False) -> list[int]:
        return self.tokenizer(text, add_special_tokens=special_tokens).input_ids

    def encode(self, example: TrainingExample) -> tuple[list[int], list[int]]:
        """(input_ids, labels) of one example."""
        input_ids, labels = [], []
        rendered = self.prompt_format.training_turns(example.turns, self.tokenizer)
        for turn, ((question, closed_answer), (_, answer)) in enumerate(zip(rendered, example.turns, strict=True)):
            question_ids = self._ids(question, special_tokens=turn == 0)  # the prompt as the runner encodes it
            if turn == 0:
                position = question_ids.index(self.image_token_id)
                question_ids[position : position + 1] = [self.image_token_id] * self.visual_tokens
            if closed_answer is None:
                answer_ids = [*self._ids(answer), self.tokenizer.eos_token_id]
            else:
                answer_ids = self._ids(closed_answer)
            input_ids += question_ids + answer_ids
            labels += [IGNORE_INDEX] * len(question_ids) + answer_ids
        return input_ids, labels

    def _padded(self, sequences: list[list[int]], fill: int) -> torch.Tensor:
        width = max(len(sequence) for sequence in sequences)
        return torch.tensor([sequence + [fill] * (width - len(sequence)) for sequence in sequences])

    def pixel_values(self, examples: list[TrainingExample]) -> torch.Tensor:
        return self.image_processor(images=[example.load_image() for example in examples], return_tensors="pt")[
            "pixel_values"
        ]

    def __call__(self, examples: list[TrainingExample], pixels: bool = True) -> dict[str, torch.Tensor]:
        """The batch; ``pixels=False`` leaves the images out (their encoder features are cached)."""
        encoded = [self.encode(example) for example in examples]
        input_ids = [ids for ids, _ in encoded]
        batch = {
            "input_ids": self._padded(input_ids, self.tokenizer.pad_token_id),
            "attention_mask": self._padded([[1] * len(ids) for ids in input_ids], 0),
            "labels": self._padded([labels for _, labels in encoded], IGNORE_INDEX),
        }
        if pixels:
            batch["pixel_values"] = self.pixel_values(examples)
        if self.uses_query:
            queries = [self._ids(example.query, special_tokens=True) for example in examples]
            batch["query_input_ids"] = self._padded(queries, self.tokenizer.pad_token_id)
            batch["query_attention_mask"] = self._padded([[1] * len(ids) for ids in queries], 0)
        return batch


def loss_from_features(model: FrontierVLM, batch: dict[str, torch.Tensor], features: VisionFeatures) -> torch.Tensor:
    """``model(**batch).loss`` with the frozen encoder's output given (cached) instead of computed from pixels."""
    query_embeds = None
    if model.compressor.uses_query:
        query_embeds = model.query_embedding(batch["query_input_ids"], batch["query_attention_mask"])
    visual = model.compressor.compress(
        features.patch_feats.to(model.dtype),
        features.multi_level_feats.to(model.dtype),
        query_embeds,
        cls_attention=features.cls_attention,
        patch_keys=features.patch_keys,
    )
    embeds = model.embed_inputs(batch["input_ids"])  # text embeddings; the image placeholders are filled here
    image_mask = batch["input_ids"] == model.config.image_token_id
    embeds = embeds.masked_scatter(image_mask[..., None], visual.to(embeds.dtype))
    return model.language_model(
        inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"], use_cache=False
    ).loss
