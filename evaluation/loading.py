"""Load any supported checkpoint folder behind one interface: images + prompts in, text out.

``load_vlm(path)`` reads ``config.json`` and dispatches on its ``model_type``:
``"frontier_vlm"`` (this project's format) or ``"llava"`` (llava-hf ``LlavaForConditionalGeneration``,
treated as an MLP-projector entry with V = number of CLIP patch tokens, 576 for ViT-L/14-336).
Weights are read from safetensors only (``use_safetensors=True``): a folder holding only pickle
files (``*.bin``, ``*.pt``) is refused, never unpickled.
"""

import json
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from PIL import Image
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    BaseImageProcessor,
    CLIPImageProcessorPil,
    LlavaForConditionalGeneration,
    LlavaImageProcessorPil,
    PreTrainedModel,
)

from .flops import count_parameters
from .modeling import IMAGE_TOKEN, FrontierVLM, from_pretrained_complete
from .prompts import PromptFormat, prompt_format_of


class VLMRunner(ABC):
    """Tokenizes plain prompts, preprocesses images, and generates with a loaded VLM.

    A prompt is rendered in the checkpoint's conversation format (``evaluation.prompts``: its chat template,
    or ``<image>\n`` + prompt); its one ``<image>`` marker is expanded to the V image placeholder tokens the
    model fills with visual tokens. Batches are left-padded for generation.
    """

    model_type: str

    def __init__(self, model: PreTrainedModel, tokenizer, image_processor: BaseImageProcessor,
                 prompt_format: PromptFormat | None = None):
        self.model = model.eval()
        self.prompt_format = prompt_format or PromptFormat()
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:  # padding only fills masked positions
            tokenizer.pad_token = tokenizer.eos_token
        self.image_processor = image_processor
        self.image_token_id = model.config.image_token_id

    @property
    @abstractmethod
    def visual_tokens(self) -> int:
        """V: visual tokens per image the LLM sees."""

    @property
    @abstractmethod
    def llm(self) -> torch.nn.Module:
        """The LLM whose parameters are N."""

    @property
    def llm_param_count(self) -> int:
        """N: all parameters of the LLM, embeddings and LM head included (see ``evaluation.flops``)."""
        return count_parameters(self.llm)

    @property
    @abstractmethod
    def compressor_param_count(self) -> int:
        """Parameters of the compressor / projector (not part of N)."""

    @property
    def device(self) -> torch.device:
        return self.model.device

    def _model_inputs(self, images: list[Image.Image], prompts: list[str]) -> dict:
        """Model keyword arguments for a batch; subclasses add what their model also needs."""
        if len(images) != len(prompts):
            raise ValueError(f"got {len(images)} images for {len(prompts)} prompts")
        batch = self.tokenizer.pad(
            {"input_ids": [self._prompt_ids(prompt) for prompt in prompts]}, padding_side="left", return_tensors="pt"
        )
        pixel_values = self.image_processor(images=[image.convert("RGB") for image in images], return_tensors="pt")[
            "pixel_values"
        ]
        return {
            "input_ids": batch["input_ids"].to(self.device),
            "attention_mask": batch["attention_mask"].to(self.device),
            "pixel_values": pixel_values.to(self.device, self.model.dtype),
        }

    def render(self, prompt: str) -> str:
        """The input text for a task's prompt, in the checkpoint's conversation format (``evaluation.prompts``)."""
        return self.prompt_format.render(prompt, self.tokenizer)

    def _prompt_ids(self, prompt: str, continuation: str = "") -> list[int]:
        """Token ids of the rendered prompt (then `continuation`, the answer being scored), the image marker
        expanded to V placeholders."""
        prompt = self.render(prompt) + continuation
        ids = self.tokenizer(prompt).input_ids
        if ids.count(self.image_token_id) != 1:
            raise ValueError(f"a prompt must hold exactly one {IMAGE_TOKEN}: {prompt!r}")
        position = ids.index(self.image_token_id)
        return ids[:position] + [self.image_token_id] * self.visual_tokens + ids[position + 1 :]

    def _generate_new_ids(self, inputs: dict, **generation_kwargs) -> torch.Tensor:
        return self.model.generate(**inputs, **generation_kwargs)

    @torch.no_grad()
    def generate_ids(self, images: list[Image.Image], prompts: list[str], **generation_kwargs) -> torch.Tensor:
        """Newly generated token ids (B, G); greedy unless ``generation_kwargs`` say otherwise."""
        generation_kwargs = {
            "do_sample": False,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
            **generation_kwargs,
        }
        return self._generate_new_ids(self._model_inputs(images, prompts), **generation_kwargs)

    def generate(
        self, images: list[Image.Image], prompts: list[str], max_new_tokens: int = 32, **generation_kwargs
    ) -> list[str]:
        new_ids = self.generate_ids(images, prompts, max_new_tokens=max_new_tokens, **generation_kwargs)
        return self.tokenizer.batch_decode(new_ids, skip_special_tokens=True)

    @torch.no_grad()
    def continuation_scores(
        self, images: list[Image.Image], contexts: list[str], continuations: list[str]
    ) -> list[tuple[float, bool]]:
        """Per item: the summed log-probability of `continuation` after the rendered context (the answer
        turn of its conversation) and whether greedy decoding would produce it. Image features and (QueCC)
        the query come from the context alone."""
        inputs = self._model_inputs(images, contexts)
        sequences, spans = [], []
        for context, continuation in zip(contexts, continuations, strict=True):
            context_ids = self._prompt_ids(context)
            continuation_ids = self._prompt_ids(context, continuation)[len(context_ids):]
            sequences.append(context_ids + continuation_ids)
            spans.append((len(context_ids), len(context_ids) + len(continuation_ids)))
        padded = self.tokenizer.pad({"input_ids": sequences}, padding_side="right", return_tensors="pt")
        inputs["input_ids"] = padded["input_ids"].to(self.device)
        inputs["attention_mask"] = padded["attention_mask"].to(self.device)
        log_probs = self.model(**inputs).logits.float().log_softmax(dim=-1)
        scores = []
        for row, (start, end) in enumerate(spans):
            targets = inputs["input_ids"][row, start:end]
            predicted = log_probs[row, start - 1 : end - 1]
            scores.append((predicted.gather(-1, targets[:, None]).sum().item(),
                           bool((predicted.argmax(dim=-1) == targets).all())))
        return scores


class FrontierRunner(VLMRunner):
    """FrontierVLM; QueCC query embeddings are cached per question text."""

    model_type = "frontier_vlm"

    def __init__(self, model: FrontierVLM, tokenizer, image_processor: BaseImageProcessor,
                 prompt_format: PromptFormat | None = None):
        super().__init__(model, tokenizer, image_processor, prompt_format)
        self._query_cache: dict[str, torch.Tensor] = {}

    @property
    def visual_tokens(self) -> int:
        return self.model.visual_tokens

    @property
    def llm(self) -> torch.nn.Module:
        return self.model.language_model

    @property
    def compressor_param_count(self) -> int:
        return self.model.compressor_param_count

    def query_embeds(self, questions: list[str]) -> torch.Tensor:
        """(B, 1, D) QueCC query embeddings, computed once per distinct question text."""
        for question in set(questions) - self._query_cache.keys():
            ids = torch.tensor([self.tokenizer(question).input_ids], device=self.device)
            self._query_cache[question] = self.model.query_embedding(ids)[0]
        return torch.stack([self._query_cache[question] for question in questions])

    def _model_inputs(self, images, prompts):
        inputs = super()._model_inputs(images, prompts)
        if self.model.compressor.uses_query:
            questions = [prompt.split(IMAGE_TOKEN, 1)[-1].strip() for prompt in prompts]
            inputs["query_embeds"] = self.query_embeds(questions)
        return inputs


class LlavaRunner(VLMRunner):
    """llava-hf ``LlavaForConditionalGeneration``: CLIP -> MLP projector, every patch token kept."""

    model_type = "llava"

    @property
    def visual_tokens(self) -> int:
        config = self.model.config
        patches = (config.vision_config.image_size // config.vision_config.patch_size) ** 2
        return patches + 1 if config.vision_feature_select_strategy == "full" else patches

    @property
    def llm(self) -> torch.nn.Module:
        return torch.nn.ModuleList([self.model.model.language_model, self.model.lm_head])

    @property
    def compressor_param_count(self) -> int:
        return count_parameters(self.model.model.multi_modal_projector)

    def _generate_new_ids(self, inputs, **generation_kwargs):
        return self.model.generate(**inputs, **generation_kwargs)[:, inputs["input_ids"].shape[1] :]


RUNNERS = {runner.model_type: runner for runner in (FrontierRunner, LlavaRunner)}
MODEL_CLASSES = {"frontier_vlm": FrontierVLM, "llava": LlavaForConditionalGeneration}


def checkpoint_model_type(path: str | Path) -> str:
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"no config.json in checkpoint folder {path}")
    return json.loads(config_file.read_text()).get("model_type", "")


def load_image_processor(path: Path, image_size: int, aspect_ratio: str = "crop") -> BaseImageProcessor:
    """The checkpoint's image processor, or CLIP preprocessing at the encoder's resolution. With
    ``aspect_ratio="pad"`` (a FrontierVLM config's ``image_aspect_ratio``) images are first padded to a square
    in the processor's mean colour, as LLaVA-1.5 trains (transformers' ``LlavaImageProcessorPil``, do_pad)."""
    if (path / "preprocessor_config.json").is_file():
        processor = AutoImageProcessor.from_pretrained(path)
    else:
        processor = CLIPImageProcessorPil(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        )
    if aspect_ratio != "pad" or getattr(processor, "do_pad", False):
        return processor
    return LlavaImageProcessorPil(
        do_pad=True, size=dict(processor.size), crop_size=dict(processor.crop_size), resample=processor.resample,
        image_mean=processor.image_mean, image_std=processor.image_std, rescale_factor=processor.rescale_factor,
        do_convert_rgb=True,
    )


def preprocessing_stamp(processor: BaseImageProcessor) -> dict:
    """How images were prepared: padded to a square first or not, then resized and cropped to what size."""
    return {
        "aspect_ratio": "pad" if getattr(processor, "do_pad", False) else "crop",
        "processor": type(processor).__name__,
        "size": dict(getattr(processor, "size", None) or {}),
        "crop_size": dict(getattr(processor, "crop_size", None) or {}),
        "image_mean": list(getattr(processor, "image_mean", None) or []),
    }


def load_vlm(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> VLMRunner:
    """Load a FrontierVLM or llava-hf checkpoint folder (safetensors only) behind ``VLMRunner``."""
    path = Path(path)
    model_type = checkpoint_model_type(path)
    if model_type not in RUNNERS:
        raise ValueError(f"unsupported model_type {model_type!r} in {path}; supported: {', '.join(RUNNERS)}")
    model = from_pretrained_complete(MODEL_CLASSES[model_type], path, dtype=dtype).to(device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    image_processor = load_image_processor(
        path, model.config.vision_config.image_size, getattr(model.config, "image_aspect_ratio", "crop")
    )
    return RUNNERS[model_type](model, tokenizer, image_processor, prompt_format_of(path, model_type))
