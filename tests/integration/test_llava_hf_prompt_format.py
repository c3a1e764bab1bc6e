"""A llava-hf checkpoint uploaded through the REST API is evaluated in its chat template (issue #17): real
workers validate it (cpu queue) and score it on the synthetic suite (gpu-eval queue); the template's name
and SHA-256 are in the validation report, in every result's stamp and on the checkpoint page. The same model
uploaded without a template is accepted with a warning and stamped "plain". The checkpoint is written with
transformers' own classes (``LlavaForConditionalGeneration``, ``LlavaProcessor.save_pretrained``), as in
tests/evaluation/test_llava_parity.py, and the expected hash is computed here from the file written."""

import hashlib
import html
import re

import pytest
import requests
from django.contrib.auth import get_user_model
from frontier_processes import archive_of, wait_for

from webapp.jobs.models import Job
from webapp.registry.models import Checkpoint, CheckpointStatus, HarnessOutput

pytestmark = pytest.mark.integration

ITEMS = 4
PASSWORD = "prompt-format-test"
# LLaVA-1.5-style conversation (the tiny tokenizer is lowercase), as in test_llava_parity.py.
TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}user: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% else %}{{ item['text'] }}"
    "{% endif %}{% endfor %} {% else %}assistant: {{ message['content'][0]['text'] }} {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def write_llava_hf(folder, with_template: bool):
    """A tiny random llava-hf checkpoint: the model, then its processor (which writes chat_template.jinja)."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    from evaluation.tiny import build_tiny_tokenizer, tiny_image_processor, tiny_text_config
    from evaluation.vlm_spec import TINY_VISION

    tokenizer = build_tiny_tokenizer()
    token_ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    config = LlavaConfig(
        vision_config=TINY_VISION, text_config=tiny_text_config("llama", len(tokenizer), 32, 1, token_ids),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    LlavaProcessor(
        image_processor=tiny_image_processor(), tokenizer=tokenizer, patch_size=TINY_VISION["patch_size"],
        vision_feature_select_strategy=config.vision_feature_select_strategy, num_additional_image_tokens=1,
        chat_template=TEMPLATE if with_template else None,
    ).save_pretrained(folder)
    return folder


def upload_and_evaluate(client, folder, name: str) -> Checkpoint:
    """POST the archive as the CLI does, wait for validation and for every benchmark job of its run."""
    response = client.post(
        "/api/v1/checkpoints/",
        {"file": archive_of(folder, "llava-hf.tar.gz"), "name": name, "visibility": "private", "suites": ["synthetic"]},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    checkpoint_id = response.json()["id"]
    wait_for(
        lambda: Checkpoint.objects.get(pk=checkpoint_id).status in (CheckpointStatus.READY, CheckpointStatus.REJECTED),
        timeout=120, message=f"validation of {name}",
    )
    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    assert checkpoint.status == CheckpointStatus.READY, checkpoint.rejection_reason
    run = checkpoint.runs.get()
    jobs = [link.job_id for link in run.benchmark_jobs.all()]
    assert len(jobs) == 2
    wait_for(
        lambda: all(Job.objects.get(pk=pk).is_terminal for pk in jobs), timeout=240, message=f"evaluation of {name}"
    )
    detail = client.get(f"/api/v1/evaluations/{run.pk}/").json()
    assert detail["status"]["state"] == "succeeded", detail
    return checkpoint


def stamps_of(checkpoint: Checkpoint) -> dict:
    outputs = HarnessOutput.objects.filter(run__checkpoint=checkpoint).select_related("benchmark")
    return {output.benchmark.key: output.stamp for output in outputs}


def page_of(base_url: str, checkpoint: Checkpoint) -> tuple[str, str]:
    """(the page's text, the Prompt format line) of the checkpoint page, as its owner sees it."""
    session = requests.Session()
    session.get(f"{base_url}/accounts/login/", timeout=30)
    login = session.post(
        f"{base_url}/accounts/login/", timeout=30,
        data={"username": checkpoint.owner.username, "password": PASSWORD,
              "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base_url}/accounts/login/"},
    )
    assert login.ok and "sessionid" in session.cookies, login.text[-2000:]
    response = session.get(f"{base_url}/checkpoints/{checkpoint.pk}/", timeout=30)
    assert response.status_code == 200
    page = html.unescape(response.text)
    line = re.search(r'<dd id="checkpoint-prompt-format">(.*?)</dd>', page, re.S)
    assert line, "the page has no Prompt format line"
    return page, re.sub(r"<[^>]+>", "", line.group(1))


def test_a_llava_hf_checkpoint_is_evaluated_in_its_chat_template_and_says_so(
    start_worker, start_web, process_env, local_media, tmp_path, client_for
):
    with_template = write_llava_hf(tmp_path / "with-template", with_template=True)
    without_template = write_llava_hf(tmp_path / "without-template", with_template=False)
    assert (with_template / "chat_template.jinja").is_file() and not (without_template / "chat_template.jinja").exists()
    template_sha256 = hashlib.sha256((with_template / "chat_template.jinja").read_text().encode()).hexdigest()
    env = {**process_env, "MEDIA_ROOT": str(local_media), "FRONTIER_AUTO_EVAL_LIMIT": str(ITEMS)}
    start_worker("llava", queues="cpu,gpu-eval", env=env)
    base_url = start_web({"MEDIA_ROOT": str(local_media)})
    owner = get_user_model().objects.create_user("alice", password=PASSWORD)
    client = client_for(owner)

    templated = upload_and_evaluate(client, with_template, "tiny llava-hf")

    expected = {"name": "chat_template", "source": "chat_template.jinja", "template_sha256": template_sha256}
    report = client.get(f"/api/v1/checkpoints/{templated.pk}/").json()["validation_report"]
    assert report["model_type"] == "llava" and report["prompt_format"] == expected
    assert not any("chat template" in warning for warning in report["warnings"])
    stamps = stamps_of(templated)
    assert set(stamps) == {"shapes", "glyphs"}
    assert all(stamp["prompt_format"] == expected and stamp["model_args"]["model_type"] == "llava"
               for stamp in stamps.values()), stamps
    page, prompt_line = page_of(base_url, templated)
    assert "chat template" in prompt_line and "chat_template.jinja" in prompt_line
    shown = re.search(r"SHA-256 ([0-9a-f]{8,64})", prompt_line)
    assert shown and template_sha256.startswith(shown.group(1)), prompt_line
    assert f'"template_sha256": "{template_sha256}"' in page  # the stamp of the run on the same page
    assert 'id="checkpoint-warnings"' not in page

    plain = upload_and_evaluate(client, without_template, "tiny llava-hf without a template")

    detail = client.get(f"/api/v1/checkpoints/{plain.pk}/").json()
    assert detail["duplicate_of"] is None
    plain_format = {"name": "plain", "source": None, "template_sha256": None}
    assert detail["validation_report"]["prompt_format"] == plain_format
    warnings = [warning for warning in detail["validation_report"]["warnings"] if "no chat template" in warning]
    assert len(warnings) == 1 and "processor.save_pretrained" in warnings[0]
    stamps = stamps_of(plain)
    assert set(stamps) == {"shapes", "glyphs"} and all(s["prompt_format"] == plain_format for s in stamps.values())
    page, prompt_line = page_of(base_url, plain)
    assert prompt_line.startswith("plain") and "SHA-256" not in prompt_line
    shown_warnings = re.search(r'<dd id="checkpoint-warnings">(.*?)</dd>', page, re.S)
    assert shown_warnings and warnings[0] in shown_warnings.group(1)
    assert template_sha256 not in page
