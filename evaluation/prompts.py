"""Prompts as the model was trained: each checkpoint's conversation format around a task's prompt.

A llava-hf checkpoint carries its chat template (``chat_template.jinja`` written by
``processor.save_pretrained``, ``chat_template.json``, or ``chat_template`` in the processor's or the
tokenizer's config); a user turn holds the image and the task's text, and the template adds the
assistant's turn. Without one, and for FrontierVLM (trained on exactly this), the prompt is fed as
``<image>\\n`` + the task's text ("plain"). The format's name and the SHA-256 of its template go into every
result's stamp. No torch here: validation reads ``template_of`` on CPU workers.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .vlm_spec import IMAGE_TOKEN

PLAIN = "plain"
CHAT_TEMPLATE = "chat_template"
# Where a checkpoint folder keeps its chat template, in the order transformers reads them. A processor's
# template (``processor``) takes the image as a content item; a tokenizer's takes text with the marker.
TEMPLATE_SOURCES = (
    ("chat_template.jinja", None, "processor"),
    ("chat_template.json", "chat_template", "processor"),
    ("processor_config.json", "chat_template", "processor"),
    ("tokenizer_config.json", "chat_template", "tokenizer"),
)


def template_of(path: str | Path) -> tuple[str, str, str] | None:
    """(template, the file it is in, "processor" or "tokenizer") of a checkpoint folder, or None."""
    root = Path(path)
    for name, key, kind in TEMPLATE_SOURCES:
        file = root / name
        if not file.is_file():
            continue
        if key is None:
            text = file.read_text()
        else:
            try:
                text = json.loads(file.read_text()).get(key)
            except (ValueError, AttributeError):
                continue
        if isinstance(text, str) and text.strip():
            if name == "chat_template.jinja" and not (root / "processor_config.json").is_file():
                kind = "tokenizer"  # saved by a tokenizer alone
            return text, name, kind
    return None


@dataclass(frozen=True)
class PromptFormat:
    """How a task's prompt becomes the model's input text."""

    name: str = PLAIN
    template: str | None = None
    source: str | None = None  # the file the template came from
    content: str = "text"  # "items": the user turn's content is [image, text] items (processor templates)

    def render(self, prompt: str, tokenizer=None) -> str:
        """The text the model sees: the prompt (its ``<image>`` marker removed) in the user turn, then the
        assistant's turn opened; or, plain, the prompt with ``<image>\\n`` in front unless it has the marker."""
        if self.template is None:
            return prompt if IMAGE_TOKEN in prompt else f"{IMAGE_TOKEN}\n{prompt}"
        text = prompt.replace(IMAGE_TOKEN, "").strip()
        if self.content == "items":
            content = [{"type": "image"}, {"type": "text", "text": text}]
        else:
            content = f"{IMAGE_TOKEN}\n{text}"
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], chat_template=self.template, add_generation_prompt=True,
            tokenize=False,
        )
        if rendered.count(IMAGE_TOKEN) != 1:
            raise ValueError(
                f"the chat template in {self.source} places {rendered.count(IMAGE_TOKEN)} {IMAGE_TOKEN} markers "
                f"for one image: {rendered[:200]!r}"
            )
        return rendered

    def stamp(self) -> dict:
        digest = hashlib.sha256(self.template.encode()).hexdigest() if self.template is not None else None
        return {"name": self.name, "source": self.source, "template_sha256": digest}


def prompt_format_of(path: str | Path, model_type: str) -> PromptFormat:
    """The checkpoint's format: its chat template (llava-hf), else plain."""
    found = template_of(path) if model_type == "llava" else None
    if found is None:
        return PromptFormat()
    template, source, kind = found
    return PromptFormat(CHAT_TEMPLATE, template, source, "items" if kind == "processor" else "text")
