"""FrontierVLM: checkpoint format, save/load, Auto classes, splicing, generation, LLaVA checkpoints."""

import json

import pytest
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    LlavaConfig,
    LlavaForConditionalGeneration,
)

from evaluation.loading import FrontierRunner, LlavaRunner, load_vlm
from evaluation.modeling import FrontierVLM, FrontierVLMConfig
from evaluation.tiny import (
    TINY_VISION,
    build_tiny_tokenizer,
    build_tiny_vlm,
    tiny_image_processor,
    tiny_text_config,
)

PROMPT = "<image>\nquestion: what color is the square? answer:"


def red_square() -> Image.Image:
    image = Image.new("RGB", (96, 96), (250, 250, 250))
    image.paste((220, 20, 20), (24, 24, 72, 72))
    return image


def prompt_batch(model: FrontierVLM, tokenizer, question: str = "what color is the square?"):
    prompt_ids = tokenizer(f"<image>\n{question}").input_ids
    image_id = model.config.image_token_id
    position = prompt_ids.index(image_id)
    ids = prompt_ids[:position] + [image_id] * model.visual_tokens + prompt_ids[position + 1 :]
    generator = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.tensor([ids]),
        "pixel_values": torch.randn(1, 3, 96, 96, generator=generator),
        "query_input_ids": torch.tensor([tokenizer(question).input_ids]),
    }


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    """Weights come back bit for bit; logits agree to float rounding (loaded tensors are memory-mapped
    at other alignments, so CPU kernels may sum in another order) and greedy text is the same."""
    model, tokenizer = build_tiny_vlm(compressor="quecc", tokens=16, seed=5)
    model.eval()
    model.save_pretrained(tmp_path)
    loaded = FrontierVLM.from_pretrained(tmp_path, use_safetensors=True).eval()
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    batch = prompt_batch(model, tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=1e-5, atol=1e-6)
    greedy = {"max_new_tokens": 5, "min_new_tokens": 5, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    assert torch.equal(loaded.generate(**batch, **greedy), model.generate(**batch, **greedy))


def test_make_tiny_checkpoint_matches_the_in_memory_model(quecc_checkpoint):
    model, tokenizer = build_tiny_vlm(compressor="quecc", tokens=16, seed=0)
    loaded = FrontierVLM.from_pretrained(quecc_checkpoint, use_safetensors=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_checkpoint_folder_layout(quecc_checkpoint):
    files = {path.name for path in quecc_checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    config = json.loads((quecc_checkpoint / "config.json").read_text())
    assert config["model_type"] == "frontier_vlm"
    assert config["compressor_method"] == "quecc" and config["visual_tokens"] == 16
    assert config["vision_config"]["model_type"] == "clip_vision_model"
    assert config["vision_config"]["image_size"] // config["vision_config"]["patch_size"] == 24
    assert config["text_config"]["model_type"] == "qwen2"
    assert config["multi_level_layers"] == [1, 2, 3, 4] and config["vision_feature_layer"] == -2


def test_sharded_checkpoint_loads_identically(tmp_path):
    model, tokenizer = build_tiny_vlm(compressor="tokenpacker", tokens=36, seed=2)
    model.save_pretrained(tmp_path, max_shard_size="100KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    loaded = FrontierVLM.from_pretrained(tmp_path, use_safetensors=True)
    batch = prompt_batch(model, tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(**batch).logits, model.eval()(**batch).logits, rtol=1e-5, atol=1e-6)


def test_auto_classes_load_the_checkpoint(quecc_checkpoint):
    assert isinstance(AutoConfig.from_pretrained(quecc_checkpoint), FrontierVLMConfig)
    assert isinstance(AutoModel.from_pretrained(quecc_checkpoint, use_safetensors=True), FrontierVLM)
    assert isinstance(AutoModelForImageTextToText.from_pretrained(quecc_checkpoint, use_safetensors=True), FrontierVLM)


def test_unsupported_tokens_fail_at_config_time():
    with pytest.raises(ValueError, match=r"'tokenpacker' does not support V=20 .*allowed values: 1, 4, 9, 16"):
        FrontierVLMConfig(vision_config=TINY_VISION, compressor_method="tokenpacker", visual_tokens=20)


def test_vision_encoder_must_be_clip():
    with pytest.raises(ValueError, match="must be a CLIP vision model, got 'siglip_vision_model'"):
        FrontierVLMConfig(vision_config={"model_type": "siglip_vision_model"})


def test_pickle_weights_are_never_loaded(tmp_path, quecc_checkpoint, monkeypatch):
    (tmp_path / "config.json").write_text((quecc_checkpoint / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not to be unpickled")

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load must not be called")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(OSError):
        load_vlm(tmp_path)


@pytest.mark.parametrize("method", ["avgpool", "tokenpacker", "quecc", "prumerge", "mqt"])
def test_every_compressor_feeds_v_tokens_into_the_llm(method):
    model, tokenizer = build_tiny_vlm(compressor=method, tokens=4, llm_hidden=32, llm_layers=1)
    batch = prompt_batch(model.eval(), tokenizer)
    with torch.no_grad():
        query = model.query_embedding(batch["query_input_ids"]) if model.compressor.uses_query else None
        visual = model.image_embeddings(batch["pixel_values"], query)
        logits = model(**batch).logits
    assert visual.shape == (1, 4, 32)
    assert logits.shape == (1, batch["input_ids"].shape[1], len(tokenizer))


def test_visual_tokens_are_spliced_at_the_image_positions():
    model, tokenizer = build_tiny_vlm(compressor="avgpool", tokens=4, llm_hidden=32, llm_layers=1)
    batch = prompt_batch(model.eval(), tokenizer)
    with torch.no_grad():
        embeds = model.embed_inputs(batch["input_ids"], batch["pixel_values"])
        visual = model.image_embeddings(batch["pixel_values"])
        text_only = model.get_input_embeddings()(batch["input_ids"])
    image_positions = batch["input_ids"][0] == model.config.image_token_id
    torch.testing.assert_close(embeds[0, image_positions], visual[0])
    torch.testing.assert_close(embeds[0, ~image_positions], text_only[0, ~image_positions])


def test_wrong_number_of_image_tokens_is_rejected():
    model, tokenizer = build_tiny_vlm(compressor="avgpool", tokens=4, llm_hidden=32, llm_layers=1)
    batch = prompt_batch(model, tokenizer)
    batch["input_ids"] = batch["input_ids"][:, 1:]
    with pytest.raises(ValueError, match=r"exactly V=4 image tokens .* got \[3\]"):
        model(**batch)


def test_quecc_cached_query_embedding_gives_identical_output_and_question_matters():
    model, tokenizer = build_tiny_vlm(compressor="quecc", tokens=16, seed=3)
    batch = prompt_batch(model.eval(), tokenizer)
    with torch.no_grad():
        cached = model.query_embedding(batch["query_input_ids"])
        from_ids = model(**batch).logits
        from_cache = model(batch["input_ids"], batch["pixel_values"], query_embeds=cached).logits
        other_question = prompt_batch(model, tokenizer, "how many dots are there?")["query_input_ids"]
        visual = model.image_embeddings(batch["pixel_values"], cached)
        other_visual = model.image_embeddings(batch["pixel_values"], model.query_embedding(other_question))
    torch.testing.assert_close(from_cache, from_ids, rtol=0, atol=0)
    assert not torch.allclose(visual, other_visual)


def test_query_embedding_ignores_padding():
    model, tokenizer = build_tiny_vlm(compressor="quecc", tokens=4, llm_hidden=32, llm_layers=1)
    ids = torch.tensor([tokenizer("what color is it?").input_ids])
    pad = torch.full((1, 3), tokenizer.pad_token_id)
    ones, zeros = torch.ones_like(ids), torch.zeros_like(pad)
    unpadded = model.query_embedding(ids)
    right_padded = model.query_embedding(torch.cat([ids, pad], 1), torch.cat([ones, zeros], 1))
    left_padded = model.query_embedding(torch.cat([pad, ids], 1), torch.cat([zeros, ones], 1))
    assert unpadded.shape == (1, 1, 32)
    torch.testing.assert_close(right_padded, unpadded)
    torch.testing.assert_close(left_padded, unpadded, rtol=1e-4, atol=1e-5)


def test_runner_generates_text_from_a_pil_image(quecc_checkpoint):
    runner = load_vlm(quecc_checkpoint)
    assert isinstance(runner, FrontierRunner) and runner.visual_tokens == 16
    new_ids = runner.generate_ids([red_square()], [PROMPT], max_new_tokens=6)
    texts = runner.generate([red_square()], [PROMPT], max_new_tokens=6)
    assert 1 <= new_ids.shape[1] <= 6
    assert texts == runner.tokenizer.batch_decode(new_ids, skip_special_tokens=True)
    assert isinstance(texts[0], str)


def test_runner_batches_prompts_of_different_lengths(quecc_checkpoint):
    runner = load_vlm(quecc_checkpoint)
    short_prompt = "<image>\ncolor?"
    alone = runner.generate_ids([red_square()], [short_prompt], max_new_tokens=4, min_new_tokens=4)
    batched = runner.generate_ids([red_square()] * 2, [PROMPT, short_prompt], max_new_tokens=4, min_new_tokens=4)
    assert torch.equal(batched[1], alone[0])
    assert len(runner._query_cache) == 2


def test_n_is_counted_from_the_llm_weights_only(pooling_checkpoint):
    runner = load_vlm(pooling_checkpoint)
    standalone_llm = AutoModelForCausalLM.from_config(runner.model.config.text_config)
    assert runner.llm_param_count == sum(p.numel() for p in standalone_llm.parameters())
    assert runner.compressor_param_count == sum(p.numel() for p in runner.model.compressor.parameters())
    everything = sum(p.numel() for p in runner.model.parameters())
    vision = sum(p.numel() for p in runner.model.vision_tower.parameters())
    assert everything == runner.llm_param_count + runner.compressor_param_count + vision


def test_llava_checkpoint_loads_as_a_576_token_mlp_entry(tmp_path):
    tokenizer = build_tiny_tokenizer()
    text_config = tiny_text_config(
        "llama", len(tokenizer), 32, 1, {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    )
    config = LlavaConfig(
        vision_config=TINY_VISION,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    tiny_image_processor().save_pretrained(tmp_path)

    runner = load_vlm(tmp_path)
    assert isinstance(runner, LlavaRunner)
    assert runner.visual_tokens == 576
    standalone_llm = AutoModelForCausalLM.from_config(runner.model.config.text_config)
    assert runner.llm_param_count == sum(p.numel() for p in standalone_llm.parameters())
    assert runner.compressor_param_count == (32 + 1) * 32 + (32 + 1) * 32
    new_ids = runner.generate_ids([red_square()], [PROMPT], max_new_tokens=3, min_new_tokens=3)
    assert new_ids.shape == (1, 3)
    assert isinstance(runner.generate([red_square()], [PROMPT], max_new_tokens=3)[0], str)


def test_unknown_model_type_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="unsupported model_type 'bert'"):
        load_vlm(tmp_path)
