"""MiniGPT4-Video's model: frozen frame encoder, merging, trainable projection, frozen LLM with LoRA on q/v."""

import pytest
import torch

from minimodels.info import info
from minimodels.minigpt4video import MiniGPT4VideoConfig

LLAMA2_7B = 6_738_415_616  # meta-llama/Llama-2-7b-hf, as counted by transformers
MISTRAL_7B = 7_241_732_096  # mistralai/Mistral-7B-v0.1 / Instruct-v0.2


@pytest.mark.parametrize("preset, frames, base_llm, lora_v_out", [
    ("minigpt4video-llama2", 45, LLAMA2_7B, 4096),
    ("minigpt4video-mistral", 90, MISTRAL_7B, 1024),  # Mistral's v_proj maps 4096 -> 8 KV heads x 128
])
def test_full_presets_counts_on_meta(preset, frames, base_llm, lora_v_out):
    out = info(preset)
    params = out["params"]
    projection = 5632 * 4096 + 4096  # llama_proj: merged EVA tokens to the LLM width
    lora = 32 * 64 * ((4096 + 4096) + (4096 + lora_v_out))  # r = 64: A (r x in) + B (out x r) on q and v
    assert params["proj"] == projection
    assert params["llm"] == base_llm + lora
    assert params["trainable"] == projection + lora
    assert 0.98e9 < params["vision"] < 0.99e9  # EVA-CLIP ViT-g/14 less its last layer, as BLIP-2 uses it
    assert out["tokens_per_frame"] == 64 and out["frames"] == frames
    assert out["token_budget"]["visual_tokens"] == frames * 64  # 2,880 for Llama 2 (paper §3.2)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return MiniGPT4VideoConfig().build()


def test_only_the_projection_and_lora_on_q_and_v_train(tiny):
    trainable = [n for n, p in tiny.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("proj.") or "lora_" in n for n in trainable)
    lora_targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable if "lora_" in n}
    assert lora_targets == {"q_proj", "v_proj"}
    frozen_before = {n: p.detach().clone() for n, p in tiny.named_parameters() if not p.requires_grad}
    lora_b_before = {n: p.detach().clone() for n, p in tiny.named_parameters() if "lora_B" in n}
    optimizer = torch.optim.AdamW([p for p in tiny.parameters() if p.requires_grad], lr=1e-2)
    frames = tiny.frame_embeddings(torch.rand(2, 3, 32, 32, 3))  # (2, 3, 16, D)
    out = tiny.llm(inputs_embeds=frames.flatten(1, 2), labels=torch.randint(0, 320, (2, 48)))
    out.loss.backward()
    optimizer.step()
    assert all(torch.equal(p, frozen_before[n]) for n, p in tiny.named_parameters() if not p.requires_grad)
    assert any(not torch.equal(p, lora_b_before[n]) for n, p in tiny.named_parameters() if "lora_B" in n)


def test_frame_embeddings_shape_and_bad_input(tiny):
    assert tiny.frame_embeddings(torch.rand(1, 5, 32, 32, 3)).shape == (1, 5, 16, 64)
    unmerged = MiniGPT4VideoConfig(merge=False).build()
    assert unmerged.frame_embeddings(torch.rand(1, 5, 32, 32, 3)).shape == (1, 5, 64, 64)
    with pytest.raises(ValueError, match=r"expected frames \(B, N, H, W, 3\), got \(5, 32, 32, 3\)"):
        tiny.frame_embeddings(torch.rand(5, 32, 32, 3))
