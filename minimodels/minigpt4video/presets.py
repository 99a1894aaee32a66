"""MiniGPT4-Video's model presets: the tiny CPU one and the paper's two (arXiv 2404.03413, §3.1; official configs).

EVA-CLIP ViT-g/14 as BLIP-2 uses it (224², patch 14, depth 39, width 1408), 64 merged tokens per frame, LoRA r 64 /
alpha 16 on q_proj and v_proj (the default, the tiny preset's too); Llama-2-7B-chat with 45 frames, 400 subtitle
words and a 4,096 context, or Mistral-7B-Instruct-v0.2 with 90 frames, 800 words and the paper's 8,192 budget (the
model itself allows 32k).
"""

from .model import FrameViTConfig, LLMConfig, MiniGPT4VideoConfig

_EVA_G = dict(image_size=224, patch_size=14, width=1408, depth=39, heads=16, mlp_dim=6144, imagenet_normalize=True)
_LLM_7B = dict(hidden_size=4096, layers=32, heads=32, vocab_size=32_000)
PRESETS = {
    "minigpt4video-tiny": MiniGPT4VideoConfig(),
    "minigpt4video-llama2": MiniGPT4VideoConfig(
        vision=FrameViTConfig(**_EVA_G), num_frames=45, max_subtitle_words=400,
        llm=LLMConfig(family="llama", kv_heads=32, intermediate_size=11_008, context_length=4096, **_LLM_7B)),
    "minigpt4video-mistral": MiniGPT4VideoConfig(
        vision=FrameViTConfig(**_EVA_G), num_frames=90, max_subtitle_words=800,
        llm=LLMConfig(family="mistral", kv_heads=8, intermediate_size=14_336, context_length=8192, **_LLM_7B)),
}
PAPER_PARAMS: dict = {}  # counts are checked against the LLMs' own (see tests); the paper states none
