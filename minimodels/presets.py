"""Named model presets: a tiny one for CPU next to the paper's own sizes, all in one place.

``get_preset(name)`` returns a fresh config dataclass; ``config.build()`` makes the model. The full presets carry
the paper's numbers (PAPERS.md §1.2) and are meant to be built on the ``meta`` device by ``python -m minimodels info``
unless a GPU is at hand.
"""

from __future__ import annotations

import copy

from .config import ConfigError
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
