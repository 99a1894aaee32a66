"""MV-GPT's model presets: the tiny CPU one and a full one at the sizes the paper names (arXiv 2201.08264, method).

The paper names its parts and not all their sizes (there is no public code): a ViViT video encoder, a BERT-Base text
encoder, a co-attentional fusion encoder and a GPT-2 decoder. ``mvgpt-base`` reads that as: a ViViT-B-sized
factorized encoder (224², 16² patches, 16 frames), BERT-Base (12 layers, width 768, 512 positions, WordPiece 30,522),
2 co-attention layers (our choice), and a GPT-2-small-sized decoder (12 layers, 1,024 positions) with
cross-attention, sharing BERT's vocabulary.
"""

from ..nn.video_vit import VideoViTConfig
from .model import MVGPTConfig

PRESETS = {
    "mvgpt-tiny": MVGPTConfig(),
    "mvgpt-base": MVGPTConfig(
        video=VideoViTConfig(image_size=224, patch_size=16, num_frames=16, width=768, spatial_layers=12,
                             temporal_layers=4, heads=12, mlp_dim=3072, attn_impl="auto"),
        vocab_size=30_522, text_layers=12, text_length=512, fusion_layers=2, decoder_layers=12, decoder_length=1024),
}
PAPER_PARAMS: dict = {}  # the paper states no parameter count to check against
