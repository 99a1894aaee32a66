"""Named model presets: a tiny one for CPU next to the paper's own sizes, all in one place.

``get_preset(name)`` returns a fresh config dataclass; ``config.build()`` makes the model. The full presets carry
the paper's numbers (PAPERS.md §1.2) and are meant to be built on the ``meta`` device by ``python -m minimodels info``
unless a GPU is at hand.
"""

from __future__ import annotations

import copy

from .config import ConfigError
from .minigpt4video import FrameViTConfig, LLMConfig, MiniGPT4VideoConfig
from .mvgpt import MVGPTConfig
from .video_text import VideoTextConfig
from .video_vit import VideoViTConfig

PRESETS = {
    "videoprism-tiny": VideoViTConfig(),
    # 288² frames, 18² patches -> 16 × 16 = 256 tokens per frame; 4 temporal layers; T as the public checkpoints.
    "videoprism-b": VideoViTConfig(image_size=288, patch_size=18, num_frames=16, width=768, spatial_layers=12,
                                   temporal_layers=4, heads=12, mlp_dim=3072),
    "videoprism-l": VideoViTConfig(image_size=288, patch_size=18, num_frames=8, width=1024, spatial_layers=24,
                                   temporal_layers=4, heads=16, mlp_dim=4096),
    "videoprism-g": VideoViTConfig(image_size=288, patch_size=18, num_frames=8, width=1408, spatial_layers=40,
                                   temporal_layers=4, heads=16, mlp_dim=6144),
    # Stage 1 (video–text): the video encoder + 2 auxiliary layers + MAP pooler, and a 12-layer text encoder.
    "videoprism-lvt-tiny": VideoTextConfig(),
}
_LVT_TEXT = dict(aux_layers=2, text_layers=12, vocab_size=32_000, text_length=64)  # official LvT configs
PRESETS["videoprism-lvt-b"] = VideoTextConfig(video=copy.deepcopy(PRESETS["videoprism-b"]), **_LVT_TEXT)
PRESETS["videoprism-lvt-l"] = VideoTextConfig(video=copy.deepcopy(PRESETS["videoprism-l"]), **_LVT_TEXT)

# MV-GPT (PAPERS.md §2.3; sizes unverified, our choices): a ViViT-B-sized factorized encoder (224², 16² patches,
# 16 frames), BERT-Base (12 layers, 768, 512 positions, WordPiece 30,522), 2 co-attention layers, and a
# GPT-2-small-sized decoder (12 layers, 1,024 positions) with cross-attention, sharing BERT's vocabulary.
PRESETS["mvgpt-tiny"] = MVGPTConfig()
PRESETS["mvgpt-base"] = MVGPTConfig(
    video=VideoViTConfig(image_size=224, patch_size=16, num_frames=16, width=768, spatial_layers=12,
                         temporal_layers=4, heads=12, mlp_dim=3072),
    vocab_size=30_522, text_layers=12, text_length=512, fusion_layers=2, decoder_layers=12, decoder_length=1024)

# MiniGPT4-Video (PAPERS.md §3.2, official code): EVA-CLIP ViT-g/14 as BLIP-2 uses it, 64 merged tokens per frame,
# LoRA r 64 / alpha 16 on q_proj and v_proj; Llama-2-7B-chat with 45 frames, 400 subtitle words and a 4,096 context,
# Mistral-7B-Instruct-v0.2 with 90 frames, 800 words and the paper's 8,192 budget (the model itself allows 32k).
_EVA_G = dict(image_size=224, patch_size=14, width=1408, depth=39, heads=16, mlp_dim=6144)
_LLM_7B = dict(hidden_size=4096, layers=32, heads=32, vocab_size=32_000)
PRESETS["minigpt4video-tiny"] = MiniGPT4VideoConfig()
PRESETS["minigpt4video-llama2"] = MiniGPT4VideoConfig(
    vision=FrameViTConfig(**_EVA_G), num_frames=45, max_subtitle_words=400, lora_r=64,
    llm=LLMConfig(family="llama", kv_heads=32, intermediate_size=11_008, context_length=4096, **_LLM_7B))
PRESETS["minigpt4video-mistral"] = MiniGPT4VideoConfig(
    vision=FrameViTConfig(**_EVA_G), num_frames=90, max_subtitle_words=800, lora_r=64,
    llm=LLMConfig(family="mistral", kv_heads=8, intermediate_size=14_336, context_length=8192, **_LLM_7B))

# What each full preset must measure, with the source (checked by tests and printed by `info`).
PAPER_PARAMS = {
    "videoprism-b": (114e6, 0.01, "total", "public checkpoint videoprism_public_v1_base: 114M"),
    "videoprism-l": (354e6, 0.01, "total", "public checkpoint videoprism_public_v1_large: 354M"),
    "videoprism-g": (1.0e9, 0.02, "spatial", "paper: ViT-giant with 1B parameters in the spatial encoder"),
    "videoprism-lvt-b": (248e6, 0.02, "total", "public checkpoint videoprism_lvt_public_v1_base: 248M"),
    "videoprism-lvt-l": (580e6, 0.02, "total", "public checkpoint videoprism_lvt_public_v1_large: 580M"),
}


def get_preset(name: str):
    """A fresh copy of the named preset's config; unknown names raise a ConfigError listing the choices."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
