"""MiniGPT4-Video's model (arXiv 2404.03413, §3.1; official ``minigpt4/models/mini_gpt4_llama_v2.py``): a frozen
image encoder per frame, 4→1 token merging, one trainable
linear projection into a frozen LLM that learns only through LoRA on its q and v projections.

    frame (H, W, C) --ViT, frozen--> (1 + G², Dv) --LayerNorm, frozen; drop CLS--> (G², Dv)
                    --merge 4→1--> (G²/4, 4·Dv) --Linear, trainable--> (G²/4, D_llm)    one frame = G²/4 positions

Full presets: EVA-CLIP ViT-g/14 sizes as BLIP-2 uses it (224², patch 14 -> 16×16 = 256 patches, depth 39 = the
40-layer model less its last, width 1408, 16 heads, MLP 6144, no final norm inside the ViT), so a frame is
256 × 1408 -> 64 × 5632 -> 64 × 4096; the LLM is Llama-2-7B (45 frames) or Mistral-7B (90 frames), built by
``transformers`` from a config (or loaded from a folder: ``official_weights.py``, which also reads EVA-CLIP and the
released checkpoints by their official names), and LoRA (r 64, alpha 16, dropout 0.05) comes from ``peft``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..engine.config import finite, require, whole
from ..nn.attention import Transformer
from ..nn.video_vit import patchify
from .token_merge import merge_tokens

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LLM_FAMILIES = ("llama", "mistral")


def llm_classes(family: str) -> tuple[type, type]:
    """transformers' (config class, causal-LM class) of an LLM family. Imported here, not at the top: the model
    classes pull in most of torch.distributed (~2 s), and every `python -m minimodels` process imports this module
    through the catalog, whatever it runs."""
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    return {"llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM)}[family]


@dataclass
class FrameViTConfig:
    """The per-frame image encoder. Defaults: tiny (32² frames, 4² patches -> 8×8 = 64 patches, 16 after merging)."""

    image_size: int = 32
    patch_size: int = 4
    channels: int = 3
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_dim: int = 256
    ln_eps: float = 1e-6
    imagenet_normalize: bool = False  # EVA-CLIP: pixels normalised with ImageNet's mean and std, as the official
    # processors do (``blip_processors.py`` overrides the CLIP statistics it defines); the tiny ViT reads [0, 1]

    def __post_init__(self):
        require(self, {
            "image_size": (whole(self.image_size), "a whole number of pixels >= 1"),
            "patch_size": (whole(self.patch_size) and self.image_size % self.patch_size == 0,
                           f"a whole number >= 1 that divides image_size={self.image_size}"),
            "channels": (whole(self.channels), "a whole number >= 1"),
            "width": (whole(self.width), "a whole number >= 1"),
            "depth": (whole(self.depth), "a whole number >= 1"),
            "heads": (whole(self.heads) and self.width % self.heads == 0,
                      f"a whole number >= 1 that divides width={self.width}"),
            "mlp_dim": (whole(self.mlp_dim), "a whole number >= 1"),
            "ln_eps": (finite(self.ln_eps) and self.ln_eps > 0, "a number > 0")})

    @property
    def patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class FrameViT(nn.Module):
    """EVA/BLIP-2-style ViT: linear patch embedding, a CLS token, learned positions, pre-LN blocks, no final norm."""

    def __init__(self, cfg: FrameViTConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_proj = nn.Linear(cfg.patch_size**2 * cfg.channels, cfg.width)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos = nn.Parameter(torch.randn(1 + cfg.patches, cfg.width) * 0.02)  # (1 + G², Dv)
        self.blocks = Transformer(cfg.depth, cfg.width, cfg.heads, cfg.mlp_dim, logit_cap=None, eps=cfg.ln_eps)

    def forward(self, images):  # (B, H, W, C) -> (B, 1 + G², Dv), CLS first
        x = self.patch_proj(patchify(images[:, None], self.cfg.patch_size)[:, 0])  # (B, G², Dv)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.pos
        return self.blocks(x)


@dataclass
class LLMConfig:
    """A decoder-only LLM built by ``transformers`` from these sizes. Defaults: a tiny Llama for CPU."""

    family: str = "llama"  # or "mistral"
    hidden_size: int = 128  # 64 could not learn the look-ups (tiny_llm.py)
    layers: int = 2
    heads: int = 4
    kv_heads: int = 4
    intermediate_size: int = 344
    vocab_size: int = 336  # the course tokenizer (325 tokens); Llama 2 and Mistral: 32,000
    context_length: int = 1024  # the paper's budgets: 4,096 (Llama 2) and 8,192 (Mistral)

    def __post_init__(self):
        require(self, {
            "family": (self.family in LLM_FAMILIES, f"one of {', '.join(LLM_FAMILIES)}"),
            "hidden_size": (whole(self.hidden_size), "a whole number >= 1"),
            "layers": (whole(self.layers), "a whole number >= 1"),
            "heads": (whole(self.heads) and self.hidden_size % self.heads == 0,
                      f"a whole number >= 1 that divides hidden_size={self.hidden_size}"),
            "kv_heads": (whole(self.kv_heads) and self.heads % self.kv_heads == 0,
                         f"a whole number >= 1 that divides heads={self.heads}"),
            "intermediate_size": (whole(self.intermediate_size), "a whole number >= 1"),
            "vocab_size": (whole(self.vocab_size, 2), "a whole number >= 2"),
            "context_length": (whole(self.context_length, 2), "a whole number >= 2")})

    def hf_config(self):
        return llm_classes(self.family)[0](
            hidden_size=self.hidden_size, num_hidden_layers=self.layers, num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads, intermediate_size=self.intermediate_size,
            vocab_size=self.vocab_size, max_position_embeddings=self.context_length)

    def build(self):
        return llm_classes(self.family)[1](self.hf_config())


@dataclass
class MiniGPT4VideoConfig:
    vision: FrameViTConfig = field(default_factory=FrameViTConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    num_frames: int = 8  # frames sampled per video: Llama 2 45, Mistral 90
    max_subtitle_words: int = 60  # Llama 2 400, Mistral 800
    merge: bool = True  # 4→1 token merging
    # The official stage-2 and stage-3 configs' LoRA (train_configs/224_v2_llama2_video_stage_{2,3}.yaml), at every
    # size: its scale alpha / r = 0.25 is what the recipe trains with; r 8 at alpha 16 would scale the update 8x.
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.05

    def __post_init__(self):
        require(self, {
            "num_frames": (whole(self.num_frames), "a whole number >= 1"),
            "max_subtitle_words": (whole(self.max_subtitle_words, 0), "a whole number >= 0 (0: no subtitles)"),
            "lora_r": (whole(self.lora_r), "a whole number >= 1"),
            "lora_alpha": (whole(self.lora_alpha), "a whole number >= 1"),
            "lora_dropout": (finite(self.lora_dropout) and 0 <= self.lora_dropout < 1, "a share in [0, 1)")})

    @property
    def tokens_per_frame(self) -> int:
        return self.vision.patches // 4 if self.merge else self.vision.patches

    def token_budget(self) -> dict[str, int]:
        """LLM positions the frames take, and what the context leaves for the rest (paper §3.2: 45 × 64 = 2,880)."""
        visual = self.num_frames * self.tokens_per_frame
        return {"visual_tokens": visual, "context_length": self.llm.context_length,
                "left_for_text": self.llm.context_length - 1 - visual, "max_subtitle_words": self.max_subtitle_words}

    def build(self) -> "MiniGPT4Video":
        return MiniGPT4Video(self)


class MiniGPT4Video(nn.Module):
    # Its frozen parts are loaded from their own files whenever it is built (the shipped tiny ones, or EVA-CLIP and
    # the LLM by path), so a checkpoint keeps what trains, the projection and LoRA, as the official runner's do.
    reloaded_parts = ("vision.", "ln_vision.", "llm.")

    def __init__(self, cfg: MiniGPT4VideoConfig, llm: nn.Module | None = None):
        """``llm``: a trained base LLM to wrap (else a fresh one from ``cfg.llm``); it is frozen, LoRA is added."""
        super().__init__()
        self.cfg = cfg
        self.vision = FrameViT(cfg.vision)
        self.ln_vision = nn.LayerNorm(cfg.vision.width, eps=cfg.vision.ln_eps)
        for p in [*self.vision.parameters(), *self.ln_vision.parameters()]:
            p.requires_grad_(False)
        merged = 4 * cfg.vision.width if cfg.merge else cfg.vision.width
        self.proj = nn.Linear(merged, cfg.llm.hidden_size)  # the code's llama_proj: 5632 -> 4096
        base = llm if llm is not None else cfg.llm.build()
        for p in base.parameters():
            p.requires_grad_(False)
        from peft import LoraConfig, get_peft_model  # here, not at the top, as llm_classes says why

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=["q_proj", "v_proj"], bias="none", task_type="CAUSAL_LM")
        self.llm = get_peft_model(base, lora)

    @torch.no_grad()
    def visual_tokens(self, video):
        """(B, N, H, W, C) frames in [0, 1] -> the frozen side's output (B, N, K, 4·Dv): K = G²/4 merged tokens per
        frame (unmerged: G² tokens of Dv). Nothing here trains, so it can be computed once per video."""
        if video.ndim != 5 or video.shape[-1] != self.cfg.vision.channels:
            raise ValueError(f"expected frames (B, N, H, W, {self.cfg.vision.channels}), got {tuple(video.shape)}")
        B, N = video.shape[:2]
        if self.cfg.vision.imagenet_normalize:
            video = (video - video.new_tensor(IMAGENET_MEAN)) / video.new_tensor(IMAGENET_STD)
        self.vision.eval()  # frozen: no dropout, no running statistics
        tokens = self.ln_vision(self.vision(video.flatten(0, 1)))[:, 1:]  # (B·N, G², Dv), CLS dropped
        if self.cfg.merge:
            tokens = merge_tokens(tokens)  # (B·N, G²/4, 4·Dv)
        return tokens.view(B, N, *tokens.shape[1:])

    def frame_embeddings(self, video):
        """(B, N, H, W, C) -> (B, N, K, D_llm): each frame's visual tokens projected to the LLM width."""
        return self.project(self.visual_tokens(video))

    def project(self, tokens):
        """Visual tokens (..., K, 4·Dv), kept in any dtype (bf16 on a GPU) -> (..., K, D_llm)."""
        return self.proj(tokens.to(self.proj.weight.dtype))

    @property
    def embed(self) -> nn.Embedding:
        return self.llm.get_input_embeddings()
