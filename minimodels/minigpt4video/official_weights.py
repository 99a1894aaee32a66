"""MiniGPT4-Video's real parts, loaded by the official names: EVA-CLIP ViT-g into our ``FrameViT``, the LLM from a
folder saved by ``transformers``, and a released MiniGPT4-Video checkpoint's projection and LoRA into our model.

What the names rest on (github.com/Vision-CAIR/MiniGPT4-video; arXiv 2404.03413):

- ``minigpt4/models/eva_vit.py``: ``create_eva_vit_g`` builds the EVA ``VisionTransformer`` (224², patch 14, width
  1408, depth 39, 16 heads, MLP 6144, q and v biases, no final norm) and loads BLIP-2's ``eva_vit_g.pth``, a plain
  state dict of that class, with ``strict=False``: the file's 40th block, and anything else it holds, is ignored.
- ``minigpt4/models/mini_gpt4_llama_v2.py``: the model's parts are ``visual_encoder``, ``ln_vision`` (a fresh
  ``LayerNorm``, frozen), ``llama_proj`` and ``llama_model`` (``LlamaForCausalLM``/``MistralForCausalLM`` wrapped by
  peft's ``get_peft_model``); a checkpoint is read with ``load_state_dict(torch.load(path)["model"], strict=False)``.
- ``minigpt4/runners/runner_base.py``: ``_save_checkpoint`` writes ``{"model": state_dict, "optimizer", "config",
  "scaler", "epoch"}`` and drops every parameter that does not train, so a released checkpoint
  (``video_llama_checkpoint_last.pth``, ``video_mistral_checkpoint_last.pth``) holds the projection and the LoRA
  matrices only: EVA, ``ln_vision`` and the LLM come from their own files, and ``ln_vision`` stays at (1, 0).

EVA ViT, theirs -> ours (``vision.`` in ``MiniGPT4Video``; a block's ``blocks.i`` is our ``blocks.blocks.i``):

    cls_token (1, 1, D), pos_embed (1, 1+G², D)    cls, pos (1+G², D)
    patch_embed.proj  Conv2d (D, C, p, p)          patch_proj  Linear (D, p·p·C) on (row, col, channel) patches
    blocks.i.norm1, norm2                          blocks.i.ln1, ln2
    blocks.i.attn.qkv.weight (3D, D)               blocks.i.attn.qkv.weight
    blocks.i.attn.q_bias, v_bias (D,)              blocks.i.attn.qkv.bias = [q_bias, 0, v_bias] (EVA has no k bias)
    blocks.i.attn.proj                             blocks.i.attn.out
    blocks.i.mlp.fc1, fc2                          blocks.i.mlp.0, mlp.2

MiniGPT4-Video checkpoint ``["model"]``, theirs -> ours:

    llama_proj.weight, .bias                       proj.weight, .bias
    llama_model.base_model.model.<module>.lora_A.weight          llm.base_model.model.<module>.lora_A.default.weight
    llama_model.base_model.model.<module>.lora_A.default.weight  (the same; and lora_B alike)
    ln_vision.weight, .bias (if a checkpoint holds them)         ln_vision.weight, .bias

What is not known: the official requirements pin peft 0.2.0, whose LoRA matrices are named ``lora_A.weight``; peft
0.3 and later name them ``lora_A.default.weight``. The released files could not be opened here (the course has no
internet), so both forms are read, and the loader reports which one it found; any other name is refused, by name.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from einops import rearrange

from ..engine.errors import CheckpointError, ConfigError
from .model import FrameViT, FrameViTConfig, LLMConfig, llm_classes


def eva_state_to_ours(theirs: dict[str, torch.Tensor], cfg: FrameViTConfig) -> tuple[dict[str, torch.Tensor], list]:
    """An EVA ``VisionTransformer`` state dict -> (our ``FrameViT`` state dict, the names left out). Blocks past
    ``cfg.depth`` are left out, as BLIP-2 leaves out EVA-g's last (depth 39 of 40: penultimate-layer features)."""
    need = ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    block_names = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.q_bias", "attn.v_bias", "attn.proj.weight",
                   "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                   "mlp.fc2.bias"]
    need += [f"blocks.{i}.{name}" for i in range(cfg.depth) for name in block_names]
    missing = [name for name in need if name not in theirs]
    if missing:
        raise CheckpointError(f"not an EVA ViT of depth {cfg.depth}: {len(missing)} tensors missing (first: "
                              f"{missing[:3]}); give BLIP-2's eva_vit_g.pth (see the README)")
    ours = {"cls": theirs["cls_token"], "pos": theirs["pos_embed"][0],
            # a (p, p) convolution with stride p is a Linear on each patch flattened as (row, col, channel)
            "patch_proj.weight": rearrange(theirs["patch_embed.proj.weight"], "d c p q -> d (p q c)"),
            "patch_proj.bias": theirs["patch_embed.proj.bias"]}
    renamed = {"norm1": "ln1", "norm2": "ln2", "attn.proj": "attn.out", "mlp.fc1": "mlp.0", "mlp.fc2": "mlp.2"}
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        for name, our_name in renamed.items():
            for part in ("weight", "bias"):
                ours[f"blocks.{b}{our_name}.{part}"] = theirs[f"{b}{name}.{part}"]
        q_bias, v_bias = theirs[f"{b}attn.q_bias"], theirs[f"{b}attn.v_bias"]
        ours[f"blocks.{b}attn.qkv.weight"] = theirs[f"{b}attn.qkv.weight"]
        ours[f"blocks.{b}attn.qkv.bias"] = torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])
    return ours, sorted(set(theirs) - set(need))


def load_eva_vit(vision: FrameViT, path: str | Path) -> list[str]:
    """Load BLIP-2's ``eva_vit_g.pth`` (or any EVA ``VisionTransformer`` state dict of the config's sizes) into
    ``vision`` (``MiniGPT4Video.vision``) -> the file's names left out (its blocks past the config's depth, and any
    other names)."""
    theirs = _torch_file(path)
    ours, left_out = eva_state_to_ours(theirs, vision.cfg)
    _load_exactly(vision, ours, path)
    return left_out


def load_llm(cfg: LLMConfig, folder: str | Path):
    """A ``save_pretrained`` folder (Llama-2-7b-chat-hf, Mistral-7B-Instruct-v0.2, ...) -> (LLM, its tokenizer), after
    checking that its sizes are the config's. Its pad token is "$$" when it has none, as in the official code."""
    from transformers import AutoConfig, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"llm_path={folder}: no config.json there; give a folder written by transformers' "
                              f"save_pretrained (see the README)")
    hf = AutoConfig.from_pretrained(folder)
    theirs = {"family": hf.model_type, "hidden_size": hf.hidden_size, "layers": hf.num_hidden_layers,
              "heads": hf.num_attention_heads, "kv_heads": hf.num_key_value_heads,
              "intermediate_size": hf.intermediate_size, "vocab_size": hf.vocab_size}
    differ = [f"model.llm.{k}={v}" for k, v in theirs.items() if getattr(cfg, k) != v]
    if differ:
        raise ConfigError(f"llm_path={folder} holds another LLM than the preset's; to run it anyway, --set "
                          f"{' '.join(differ)}")
    llm = llm_classes(cfg.family)[1].from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "$$"
    return llm, tokenizer


# a LoRA matrix of the peft-wrapped LLM: (module path, "A" or "B", peft >= 0.3's adapter name or None)
LORA_NAME = re.compile(r"llama_model\.base_model\.model\.(.+)\.lora_([AB])\.(default\.)?weight")


def checkpoint_state_to_ours(theirs: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """A MiniGPT4-Video checkpoint's ``["model"]`` -> (our names, which LoRA naming it used). Names it does not know
    are refused: a silently ignored tensor would leave the model half loaded."""
    ours, namings, unknown = {}, set(), []
    for name, tensor in theirs.items():
        lora = LORA_NAME.fullmatch(name)
        if name.startswith(("llama_proj.", "ln_vision.")):
            ours[name.replace("llama_proj.", "proj.")] = tensor
        elif lora:
            module, matrix, default = lora.groups()
            namings.add("peft >= 0.3 (lora_A.default.weight)" if default else "peft 0.2 (lora_A.weight)")
            ours[f"llm.base_model.model.{module}.lora_{matrix}.default.weight"] = tensor
        else:
            unknown.append(name)
    if unknown:
        raise CheckpointError(f"{len(unknown)} tensors of the checkpoint are not the projection, ln_vision or LoRA "
                              f"(first: {unknown[:3]}); this loader reads MiniGPT4-Video's released checkpoints")
    return ours, " and ".join(sorted(namings)) or "no LoRA"


def load_minigpt4video_checkpoint(model, path: str | Path) -> str:
    """Load a released MiniGPT4-Video checkpoint (``torch.save({"model": ...})``) into ``model``: the projection and
    every LoRA matrix must be there -> a line saying what was loaded."""
    saved = _torch_file(path)
    if "model" not in saved:
        raise CheckpointError(f"{path}: no 'model' entry (it has {sorted(saved)[:5]}); a MiniGPT4-Video checkpoint "
                              f"is a dict with the weights under 'model'")
    ours, naming = checkpoint_state_to_ours(saved["model"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(trainable - set(ours))
    if missing:
        raise CheckpointError(f"{path}: {len(missing)} of the model's trainable tensors are not in it (first: "
                              f"{missing[:2]}); check model.lora_r and the LLM's layers against the checkpoint")
    state = model.state_dict()
    for name, tensor in ours.items():
        if name not in state or state[name].shape != tensor.shape:
            have = tuple(state[name].shape) if name in state else "nothing"
            raise CheckpointError(f"{path}: {name} is {tuple(tensor.shape)} there, {have} here; the LoRA rank is "
                                  f"the checkpoint's r (--set model.lora_r=…) and the LLM must be its LLM")
    model.load_state_dict(ours, strict=False)
    ln = "ln_vision from the checkpoint" if "ln_vision.weight" in ours else "ln_vision at (1, 0), as the official"
    return f"{path}: projection + {sum('.lora_' in n for n in ours)} LoRA matrices ({naming}); {ln}"


def _torch_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (see the README for where the official files come from)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file, or one that pickles more than tensors and plain containers
        raise CheckpointError(f"{path}: not a readable torch.save file of tensors ({err})") from None


def _load_exactly(module: torch.nn.Module, state: dict[str, torch.Tensor], path) -> None:
    want = module.state_dict()
    wrong = [f"{k} {tuple(v.shape)} there, {tuple(want[k].shape)} here" for k, v in state.items()
             if want[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"{path} does not fit the preset's sizes: {wrong[:2]}; --set model.vision.… to its "
                              f"sizes")
    module.load_state_dict(state)

