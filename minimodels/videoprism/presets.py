"""VideoPrism's model presets: the tiny CPU ones next to the paper's sizes, and the parameter counts they must match.

Sizes from the official code's ``CONFIGS`` (``videoprism/models.py``) and the paper's App. B (arXiv 2402.13217):
288² frames in 18² patches (16 × 16 = 256 tokens a frame), 4 temporal layers at every size, B/L/g widths 768 / 1024
/ 1408 with 12 / 24 / 40 spatial layers; the LvT (video–text) models add 2 auxiliary layers over all tokens, a MAP
pooler and a 12-layer causal text encoder with a 32,000-token vocabulary and 64 text positions.
"""

from __future__ import annotations

import copy

from ..nn.video_vit import VideoViTConfig
from .video_text import VideoTextConfig

PRESETS = {
    "videoprism-tiny": VideoViTConfig(),
    # T as the public checkpoints: 16 frames for B, 8 for L and g
    "videoprism-b": VideoViTConfig(image_size=288, patch_size=18, num_frames=16, width=768, spatial_layers=12,
                                   temporal_layers=4, heads=12, mlp_dim=3072, attn_impl="auto"),
    "videoprism-l": VideoViTConfig(image_size=288, patch_size=18, num_frames=8, width=1024, spatial_layers=24,
                                   temporal_layers=4, heads=16, mlp_dim=4096, attn_impl="auto"),
    "videoprism-g": VideoViTConfig(image_size=288, patch_size=18, num_frames=8, width=1408, spatial_layers=40,
                                   temporal_layers=4, heads=16, mlp_dim=6144, attn_impl="auto"),
    "videoprism-lvt-tiny": VideoTextConfig(),
}
_LVT_TEXT = dict(aux_layers=2, text_layers=12, vocab_size=32_000, text_length=64)
PRESETS["videoprism-lvt-b"] = VideoTextConfig(video=copy.deepcopy(PRESETS["videoprism-b"]), **_LVT_TEXT)
PRESETS["videoprism-lvt-l"] = VideoTextConfig(video=copy.deepcopy(PRESETS["videoprism-l"]), **_LVT_TEXT)

# What each full preset must measure: (parameters, relative tolerance, part counted, source). Checked by the tests
# and printed by `info`.
PAPER_PARAMS = {
    "videoprism-b": (114e6, 0.01, "total", "public checkpoint videoprism_public_v1_base: 114M"),
    "videoprism-l": (354e6, 0.01, "total", "public checkpoint videoprism_public_v1_large: 354M"),
    "videoprism-g": (1.0e9, 0.02, "spatial", "paper: ViT-giant with 1B parameters in the spatial encoder"),
    "videoprism-lvt-b": (248e6, 0.02, "total", "public checkpoint videoprism_lvt_public_v1_base: 248M"),
    "videoprism-lvt-l": (580e6, 0.02, "total", "public checkpoint videoprism_lvt_public_v1_large: 580M"),
}
