"""Prompts as the model was trained: each checkpoint's conversation format around a task's prompt.

A llava-hf checkpoint carries its chat template (``chat_template.jinja`` written by
``processor.save_pretrained``, ``chat_template.json``, or ``chat_template`` in the processor's or the
tokenizer's config); a user turn holds the image and the task's text, and the template adds the
assistant's turn. A FrontierVLM may name one of LLaVA's conversations in its config.json
(``conversation``: ``v1``, ``qwen_1_5``, ``plain``), written here as chat templates that render what
LLaVA's ``conv_templates[...].get_prompt()`` does. Without either, and for FrontierVLMs trained on exactly
this, the prompt is fed as ``<image>\\n`` + the task's text ("plain"). The format's name and the SHA-256 of
its template go into every result's stamp. No torch here: validation reads ``template_of`` on CPU workers.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .vlm_spec import CONVERSATIONS, IMAGE_TOKEN

PLAIN = "plain"
CHAT_TEMPLATE = "chat_template"
CONVERSATION_PREFIX = "llava_"  # a named conversation's format name: llava_v1, llava_qwen_1_5, llava_plain
V1_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
# LLaVA's conversations as chat templates over user/assistant messages (content: "<image>\n" + question).
CONVERSATION_TEMPLATES = {
    # conv_vicuna_v1: system, " ", then "USER: q " and "ASSISTANT: a</s>"; the open turn is "ASSISTANT:".
    "v1": (
        "{{ '" + V1_SYSTEM.replace("'", "\\'") + " ' }}{% for message in messages %}"
        "{% if message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
        "{% else %}{{ 'ASSISTANT: ' + message['content'] + '</s>' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    ),
    # LLaVA-NeXT's conv_qwen (ChatML with Qwen's default system prompt).
    "qwen_1_5": (
        "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
    # conv_llava_plain: each message followed by a newline, no roles, no system prompt.
    "plain": "{% for message in messages %}{{ message['content'] + '\\n' }}{% endfor %}",
}
assert set(CONVERSATION_TEMPLATES) == set(CONVERSATIONS)
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

    def training_turns(self, turns, tokenizer=None) -> list[tuple[str, str | None]]:
        """(human text, answer text) per (question, answer) turn, rendered as the model reads them: the human
        text holds the template's part before the answer (the first one the image marker), the answer text
        the answer and what the template closes it with (LLaVA v1's ``</s>``, ChatML's ``<|im_end|>\\n``), or
        None without a template (the answer, then the tokenizer's end-of-sequence token)."""
        if self.template is None:
            return [(question if turn else self.render(question), None) for turn, (question, _) in enumerate(turns)]
        marks = [f"\x00answer{index}\x00" for index in range(len(turns))]
        messages = []
        for turn, ((question, _), mark) in enumerate(zip(turns, marks, strict=True)):
            text = question.replace(IMAGE_TOKEN, "").strip()
            content = ([{"type": "image"}, {"type": "text", "text": text}] if self.content == "items" else
                       f"{IMAGE_TOKEN}\n{text}") if turn == 0 else text
            messages += [{"role": "user", "content": content}, {"role": "assistant", "content": mark}]
        rendered = tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False)
        pieces, rest = [], rendered
        for mark in marks:
            human, rest = rest.split(mark, 1)
            pieces.append(human)
        # What the template puts between the open assistant turn (the prompt evaluation feeds) and the answer
        # (v1: a space), and after the answer: both belong to the answer, so each human text ends as that prompt.
        probe = [{"role": "user", "content": "q"}, {"role": "assistant", "content": marks[0]}]
        rendered_probe = tokenizer.apply_chat_template(probe, chat_template=self.template, tokenize=False)
        before, closing = rendered_probe.split(marks[0])
        opened = tokenizer.apply_chat_template(probe[:1], chat_template=self.template, add_generation_prompt=True,
                                               tokenize=False)
        lead = before.removeprefix(opened) if before.startswith(opened) else ""
        humans = [pieces[0]] + [piece.removeprefix(closing) for piece in pieces[1:]]
        return [(human.removesuffix(lead) if lead else human, lead + answer + closing)
                for human, (_, answer) in zip(humans, turns, strict=True)]

    def stamp(self) -> dict:
        digest = hashlib.sha256(self.template.encode()).hexdigest() if self.template is not None else None
        return {"name": self.name, "source": self.source, "template_sha256": digest}


def conversation_format(name: str) -> PromptFormat:
    """One of LLaVA's named conversations (``CONVERSATIONS``)."""
    if name not in CONVERSATION_TEMPLATES:
        raise ValueError(f"unknown conversation {name!r}; known: {', '.join(CONVERSATION_TEMPLATES)}")
    return PromptFormat(CONVERSATION_PREFIX + name, CONVERSATION_TEMPLATES[name], "config.json:conversation")


def format_of_conversation(conversation: str | None) -> PromptFormat:
    """A FrontierVLM config's ``conversation``: the named one, or plain when it names none."""
    return PromptFormat() if conversation is None else conversation_format(conversation)


def prompt_format_of(path: str | Path, model_type: str) -> PromptFormat:
    """The checkpoint's format: its chat template (llava-hf), its named conversation (FrontierVLM), else plain."""
    if model_type != "llava":
        try:
            conversation = json.loads((Path(path) / "config.json").read_text()).get("conversation")
        except (OSError, ValueError, AttributeError):
            conversation = None
        return format_of_conversation(conversation)
    found = template_of(path)
    if found is None:
        return PromptFormat()
    template, source, kind = found
    return PromptFormat(CHAT_TEMPLATE, template, source, "items" if kind == "processor" else "text")
