"""A QueCC checkpoint in the paper's code layout converts, uploads, validates as quecc and evaluates (issue #17).

The folder is written as LLaVA's train.py leaves it (tests/llava_reference.py), converted by the command a
user runs (``python -m evaluation convert-llava``, a subprocess), uploaded as an archive through the REST
API, validated on the cpu queue and scored on the gpu-eval queue by real workers. The run's stamps carry the
v1 conversation, pad preprocessing and the QueCC compressor; the checkpoint page names the conversation.
"""

import hashlib
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from frontier_processes import REPO
from llava_reference import write_llava_quecc
from test_llava_hf_prompt_format import PASSWORD, page_of, stamps_of, upload_and_evaluate

from evaluation.prompts import CONVERSATION_TEMPLATES

pytestmark = pytest.mark.integration

ITEMS = 4


def test_a_converted_quecc_checkpoint_uploads_validates_and_evaluates(
    start_worker, start_web, process_env, local_media, tmp_path, client_for
):
    folders = write_llava_quecc(tmp_path)
    out = tmp_path / "frontier"
    converted = subprocess.run(
        [sys.executable, "-m", "evaluation", "convert-llava", str(folders["src"]), "--out", str(out),
         "--vision-tower", str(folders["tower_dir"]), "--conversation", "v1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert converted.stdout.strip() == str(out)
    env = {**process_env, "MEDIA_ROOT": str(local_media), "FRONTIER_AUTO_EVAL_LIMIT": str(ITEMS)}
    start_worker("converted", queues="cpu,gpu-eval", env=env)
    base_url = start_web({"MEDIA_ROOT": str(local_media)})
    owner = get_user_model().objects.create_user("bob", password=PASSWORD)

    checkpoint = upload_and_evaluate(client_for(owner), out, "paper-layout quecc")

    assert (checkpoint.compressor.method, checkpoint.visual_tokens) == ("quecc", 36)
    template_sha256 = hashlib.sha256(CONVERSATION_TEMPLATES["v1"].encode()).hexdigest()
    expected = {"name": "llava_v1", "source": "config.json:conversation", "template_sha256": template_sha256}
    assert checkpoint.validation_report["prompt_format"] == expected
    stamps = stamps_of(checkpoint)
    assert set(stamps) == {"shapes", "glyphs"}
    for stamp in stamps.values():
        assert stamp["prompt_format"] == expected
        assert stamp["model_args"]["compressor"] == "quecc" and stamp["visual_tokens"] == 36
        assert stamp["image_preprocessing"]["aspect_ratio"] == "pad"
    _, prompt_line = page_of(base_url, checkpoint)
    assert "LLaVA's conversation v1" in prompt_line and template_sha256[:10] in prompt_line
