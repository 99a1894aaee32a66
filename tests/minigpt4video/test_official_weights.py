"""MiniGPT4-Video's real parts by the official names: EVA ViT files, LLM folders and released checkpoints, written
here at tiny sizes in the official formats (nothing is downloaded)."""

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import LlamaForCausalLM, MistralForCausalLM

from minimodels import cli
from minimodels.catalog import get_preset
from minimodels.engine.checkpoint import load_weights
from minimodels.engine.errors import CheckpointError, ConfigError
from minimodels.minigpt4video.model import IMAGENET_MEAN, IMAGENET_STD, FrameViT, LLMConfig, MiniGPT4VideoConfig
from minimodels.minigpt4video.official_weights import (
    eva_state_to_ours,
    load_eva_vit,
    load_llm,
    load_minigpt4video_checkpoint,
)
from minimodels.nn.text import load_tokenizer


def official_eva_state(cfg, extra_blocks: int = 1, seed: int = 0, std: float = 0.2) -> dict:
    """Random weights under the names of the official ``eva_vit.py`` VisionTransformer, one block more than the
    config (as eva_vit_g.pth has 40 for BLIP-2's 39), plus a name the model does not have."""
    g = torch.Generator().manual_seed(seed)
    D, M, p = cfg.width, cfg.mlp_dim, cfg.patch_size

    def rand(*shape):
        return torch.randn(*shape, generator=g) * std

    state = {"cls_token": rand(1, 1, D), "pos_embed": rand(1, 1 + cfg.patches, D),
             "patch_embed.proj.weight": rand(D, 3, p, p), "patch_embed.proj.bias": rand(D), "head.weight": rand(5, D)}
    for i in range(cfg.depth + extra_blocks):
        b = f"blocks.{i}."
        state |= {b + "norm1.weight": 1 + rand(D), b + "norm1.bias": rand(D), b + "attn.qkv.weight": rand(3 * D, D),
                  b + "attn.q_bias": rand(D), b + "attn.v_bias": rand(D), b + "attn.proj.weight": rand(D, D),
                  b + "attn.proj.bias": rand(D), b + "norm2.weight": 1 + rand(D), b + "norm2.bias": rand(D),
                  b + "mlp.fc1.weight": rand(M, D), b + "mlp.fc1.bias": rand(M), b + "mlp.fc2.weight": rand(D, M),
                  b + "mlp.fc2.bias": rand(D)}
    return state


def official_eva_forward(state: dict, images: torch.Tensor, cfg) -> torch.Tensor:
    """The official EVA forward, written from ``eva_vit.py``: images (B, 3, H, W) -> (B, 1 + G², D), CLS first."""
    x = F.conv2d(images, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=cfg.patch_size)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state["cls_token"].expand(len(x), -1, -1), x], 1) + state["pos_embed"]
    B, N, D = x.shape
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        h = F.layer_norm(x, (D,), state[b + "norm1.weight"], state[b + "norm1.bias"], eps=cfg.ln_eps)
        bias = torch.cat([state[b + "attn.q_bias"], torch.zeros(D), state[b + "attn.v_bias"]])
        q, k, v = F.linear(h, state[b + "attn.qkv.weight"], bias).reshape(B, N, 3, cfg.heads, -1).permute(2, 0, 3, 1, 4)
        attn = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        h = (attn @ v).transpose(1, 2).reshape(B, N, D)
        x = x + F.linear(h, state[b + "attn.proj.weight"], state[b + "attn.proj.bias"])
        h = F.layer_norm(x, (D,), state[b + "norm2.weight"], state[b + "norm2.bias"], eps=cfg.ln_eps)
        h = F.linear(F.gelu(F.linear(h, state[b + "mlp.fc1.weight"], state[b + "mlp.fc1.bias"])),
                     state[b + "mlp.fc2.weight"], state[b + "mlp.fc2.bias"])
        x = x + h
    return x


@pytest.fixture
def eva_file(tmp_path):
    cfg = replace(MiniGPT4VideoConfig().vision, imagenet_normalize=True)
    path = tmp_path / "eva_vit_g.pth"
    torch.save(official_eva_state(cfg), path)
    return cfg, path


def test_an_official_eva_file_gives_the_official_frame_tokens(eva_file):
    cfg, path = eva_file
    torch.manual_seed(0)
    model = replace(MiniGPT4VideoConfig(), vision=cfg).build()
    left_out = load_eva_vit(model.vision, path)
    assert left_out[0] == "blocks.2.attn.proj.bias" and "head.weight" in left_out  # the extra block, and the head
    frames = torch.rand(2, 3, cfg.image_size, cfg.image_size, 3)  # (B, N, H, W, C) in [0, 1]
    pixels = (frames.flatten(0, 1) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    theirs = official_eva_forward(torch.load(path), pixels.permute(0, 3, 1, 2), cfg)
    theirs = F.layer_norm(theirs, (cfg.width,), eps=cfg.ln_eps)[:, 1:]  # ln_vision at (1, 0), CLS dropped
    theirs = theirs.reshape(2, 3, cfg.patches // 4, 4 * cfg.width)  # the code's view(bs, pn / 4, hs * 4)
    assert (model.visual_tokens(frames) - theirs).abs().max() < 1e-5


@pytest.mark.slow
def test_eva_clip_g_at_its_real_size_gives_the_official_tokens():
    """EVA-CLIP ViT-g/14 as BLIP-2 uses it (39 of 40 blocks, width 1408, 985.95M parameters), random weights, on two
    224² frames (about a minute and 9 GB on a CPU)."""
    cfg = get_preset("minigpt4video-llama2").vision
    state = official_eva_state(cfg, extra_blocks=1, seed=0, std=0.02)  # EVA's initial scale: activations stay O(1)
    torch.manual_seed(0)
    vision = FrameViT(cfg)
    ours, left_out = eva_state_to_ours(state, cfg)
    vision.load_state_dict(ours)
    assert sum(p.numel() for p in vision.parameters()) == 985_949_440 and len(left_out) == 14
    images = torch.rand(2, cfg.image_size, cfg.image_size, 3)
    with torch.no_grad():
        theirs = official_eva_forward(state, images.permute(0, 3, 1, 2), cfg)
        assert (vision(images) - theirs).abs().max() < 1e-4


def test_an_eva_file_that_does_not_fit_is_refused_by_name(eva_file, tmp_path):
    cfg, path = eva_file
    model = replace(MiniGPT4VideoConfig(), vision=replace(cfg, depth=4)).build()
    with pytest.raises(CheckpointError, match=r"not an EVA ViT of depth 4: 13 tensors missing \(first: \['blocks.3"):
        load_eva_vit(model.vision, path)
    model = replace(MiniGPT4VideoConfig(), vision=replace(cfg, mlp_dim=128)).build()
    with pytest.raises(CheckpointError, match=r"blocks.blocks.0.mlp.0.weight \(256, 64\) there, \(128, 64\) here"):
        load_eva_vit(model.vision, path)
    (tmp_path / "broken.pth").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="broken.pth: not a readable torch.save file"):
        load_eva_vit(model.vision, tmp_path / "broken.pth")


def save_llm(folder, family: str = "llama", seed: int = 0):
    """A random LLM of the tiny preset's sizes, saved as ``save_pretrained`` saves Llama-2 or Mistral, with the
    course's tokenizer beside it."""
    torch.manual_seed(seed)
    llm = replace(LLMConfig(), family=family).build()
    llm.save_pretrained(folder)
    load_tokenizer().save_pretrained(folder)
    return llm


@pytest.mark.parametrize("family, cls", [("llama", LlamaForCausalLM), ("mistral", MistralForCausalLM)])
def test_an_llm_folder_loads_as_saved_and_a_wrong_size_is_named(tmp_path, family, cls):
    saved = save_llm(tmp_path, family)
    llm, tokenizer = load_llm(replace(LLMConfig(), family=family), tmp_path)
    ids = torch.tensor([tokenizer("we need five spoons of salt")["input_ids"]])
    assert type(llm) is cls and torch.equal(llm(ids).logits, saved(ids).logits)
    with pytest.raises(ConfigError, match="--set model.llm.hidden_size=128 model.llm.layers=2$"):
        load_llm(replace(LLMConfig(), family=family, hidden_size=64, layers=4), tmp_path)


def official_checkpoint(cfg: MiniGPT4VideoConfig, peft_0_2: bool, seed: int = 1, r: int | None = None) -> dict:
    """A checkpoint as the official runner saves it: {"model": the trainable tensors under the official names, ...}.
    peft 0.2 (the official requirements) names a LoRA matrix ``lora_A.weight``, later peft ``lora_A.default.weight``."""
    g = torch.Generator().manual_seed(seed)
    r, H, kv = r or cfg.lora_r, cfg.llm.hidden_size, cfg.llm.hidden_size // cfg.llm.heads * cfg.llm.kv_heads
    model = {"llama_proj.weight": torch.randn(H, 4 * cfg.vision.width, generator=g),
             "llama_proj.bias": torch.randn(H, generator=g)}
    for i in range(cfg.llm.layers):
        for proj, out in (("q_proj", H), ("v_proj", kv)):
            stem = f"llama_model.base_model.model.model.layers.{i}.self_attn.{proj}.lora_"
            suffix = "weight" if peft_0_2 else "default.weight"
            model[f"{stem}A.{suffix}"] = torch.randn(r, H, generator=g)
            model[f"{stem}B.{suffix}"] = torch.randn(out, r, generator=g)
    return {"model": model, "optimizer": {"state": {}, "param_groups": []}, "config": {"run": {}}, "scaler": None,
            "epoch": 49}


@pytest.mark.parametrize("peft_0_2", [True, False])
def test_a_released_checkpoint_sets_the_projection_and_lora_by_the_official_names(tmp_path, peft_0_2):
    cfg = MiniGPT4VideoConfig()
    saved = official_checkpoint(cfg, peft_0_2)
    torch.save(saved, tmp_path / "video_llama_checkpoint_last.pth")
    model = cfg.build().eval()
    said = load_minigpt4video_checkpoint(model, tmp_path / "video_llama_checkpoint_last.pth")
    assert f"projection + {4 * cfg.llm.layers} LoRA matrices (peft {'0.2' if peft_0_2 else '>= 0.3'}" in said
    assert torch.equal(model.proj.weight, saved["model"]["llama_proj.weight"])
    # layer 1's q_proj now computes W x + (alpha / r) B A x with the checkpoint's A and B
    q = model.llm.base_model.model.model.layers[1].self_attn.q_proj
    stem = "llama_model.base_model.model.model.layers.1.self_attn.q_proj.lora_"
    suffix = "weight" if peft_0_2 else "default.weight"
    A, B = saved["model"][f"{stem}A.{suffix}"], saved["model"][f"{stem}B.{suffix}"]
    x = torch.randn(3, cfg.llm.hidden_size)
    expected = F.linear(x, q.base_layer.weight) + cfg.lora_alpha / cfg.lora_r * x @ A.T @ B.T
    assert torch.allclose(q(x), expected, atol=1e-4)


def test_a_checkpoint_that_does_not_fit_is_refused_by_name(tmp_path):
    cfg = MiniGPT4VideoConfig()
    path = tmp_path / "checkpoint.pth"
    torch.save(official_checkpoint(cfg, True, r=4), path)
    refusal = rf"lora_A.default.weight is \(4, 128\) there, \({cfg.lora_r}, 128\) here"
    with pytest.raises(CheckpointError, match=refusal):
        load_minigpt4video_checkpoint(cfg.build(), path)
    saved = official_checkpoint(cfg, True)
    saved["model"]["llama_model.base_model.model.lm_head.weight"] = torch.zeros(1)
    torch.save(saved, path)
    with pytest.raises(CheckpointError, match=r"1 tensors .* \(first: \['llama_model.base_model.model.lm_head"):
        load_minigpt4video_checkpoint(cfg.build(), path)
    del saved["model"]["llama_model.base_model.model.lm_head.weight"], saved["model"]["llama_proj.bias"]
    torch.save(saved, path)
    with pytest.raises(CheckpointError, match=r"1 of the model's trainable tensors are not in it .*'proj.bias"):
        load_minigpt4video_checkpoint(cfg.build(), path)


def test_the_experiment_runs_on_real_parts_from_the_command_line(tmp_path, capsys):
    """``run minigpt4video-qa --set llm_path=… vision_path=… checkpoint=…``: the path a full preset takes on a GPU,
    here with tiny files in the official formats and one step per stage."""
    cfg = MiniGPT4VideoConfig()
    save_llm(tmp_path / "llm")
    torch.save(official_eva_state(cfg.vision), tmp_path / "eva_vit_g.pth")
    torch.save(official_checkpoint(cfg, True), tmp_path / "checkpoint.pth")
    steps = [f"{stage}.{k}={v}" for stage in ("image_stage", "caption_stage", "qa_stage")
             for k, v in (("steps", 1), ("batch_size", 2), ("progress", "false"))]
    code = cli.main(["run", "minigpt4video-qa", "--out", str(tmp_path / "run"), "--json", "--set",
                     f"llm_path={tmp_path / 'llm'}", f"vision_path={tmp_path / 'eva_vit_g.pth'}",
                     f"checkpoint={tmp_path / 'checkpoint.pth'}", "recompute_activations=true", "eval_limit=4",
                     "sight=false",
                     *steps])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "left out of the file: 14 tensors" in out and "projection + 8 LoRA matrices (peft 0.2" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert "mcq_ranking_subtitles_subs" in result["metrics"]
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["config"]["llm_path"] == str(tmp_path / "llm")
    # the checkpoint keeps what trains (the frozen ViT and LLM come from their files), and loads back into a model
    # built from those files
    saved = load_file(str(run / "model.safetensors"))
    fresh = cfg.build()
    assert set(saved) == {n for n, p in fresh.named_parameters() if p.requires_grad}
    load_weights(fresh, run / "model.safetensors")
    assert torch.equal(fresh.proj.bias, saved["proj.bias"])
    assert not torch.equal(saved["proj.bias"], official_checkpoint(cfg, True)["model"]["llama_proj.bias"])  # trained


@pytest.mark.parametrize("preset", ["minigpt4video-llama2", "minigpt4video-mistral"])
def test_a_full_preset_names_the_real_parts_it_still_needs(tmp_path, capsys, preset):
    assert cli.main(["run", "minigpt4video-qa", "--preset", preset, "--out", str(tmp_path / "a")]) == 2
    assert "--set llm_path=<folder>" in capsys.readouterr().err
    assert cli.main(["run", "minigpt4video-qa", "--preset", preset, "--out", str(tmp_path / "b"), "--set",
                     f"llm_path={tmp_path}", "vision_path=eva_vit_g.pth"]) == 2
    assert f"not found: llm_path={tmp_path}, vision_path=eva_vit_g.pth" in capsys.readouterr().err
