"""The ``mvgpt`` experiment: pretrain on unlabelled narration, fine-tune for captioning, score held-out captions.

Pretraining sees only what an instructional video has without annotators: each clip's frames, its own narration
(the present utterance U) and the next clip's narration in the same episode (the future utterance W). Settings
(``--set pretrain=...``), as the paper's ablation (PAPERS.md §2.5):

    none           no pretraining
    encoder        encoder only, masked language modelling on the fused text stream (MLM-E, our choice of variant:
                   15 % of the real utterance tokens become [MASK]; a linear head predicts them)
    forward        encoder + decoder, L_FG:          (F, U) -> W from [BOS-F]
    bidirectional  encoder + decoder, L_FG + L_BG:   (F, U) -> W, and (F, W) -> U from [BOS-B]

Fine-tuning: (frames, present utterance) -> the clip's caption, from [BOS-F] (our choice of start token). Held-out
captions are decoded greedily (or by beam search) and scored with BLEU-4, METEOR, ROUGE-L and CIDEr, beside a
baseline that always answers the most frequent training caption.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

from .bidirectional import IGNORE, START_TOKENS, decoder_tensors, generation_batches, generation_loss
from .caption_metrics import caption_scores
from .data.dataset import as_float, clip_tensors, load_table
from .decoding import beam_search, greedy_decode
from .mvgpt import MVGPTConfig, MVGPTModel
from .stage1 import load_tokenizer
from .text_encoder import tokenize
from .train import TrainConfig, pick_device, seed_everything, train

PRETRAIN = ("none", "encoder", "forward", "bidirectional")


@dataclass
class MVGPTExperimentConfig:
    model: MVGPTConfig = field(default_factory=MVGPTConfig)
    pretrain: str = "bidirectional"
    pretraining: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=32, lr=1e-3, warmup=30))
    finetuning: TrainConfig = field(default_factory=lambda: TrainConfig(steps=400, batch_size=32, lr=1e-3, warmup=20))
    mask_prob: float = 0.15  # MLM-E
    max_caption_len: int = 16  # decoding stops here at the latest
    beam: int = 1  # 1 = greedy
    eval_split: str = "test"


def narration_pairs(rows: list[dict]) -> tuple[torch.Tensor, list[str], list[str]]:
    """Clips that have a next clip in their episode: (clip indices (P,), present utterances, future utterances)."""
    by_step = {(r["episode"], r["step"]): r["utterance"] for r in rows}
    index, present, future = [], [], []
    for i, r in enumerate(rows):
        nxt = by_step.get((r["episode"], r["step"] + 1))
        if nxt is not None:
            index.append(i), present.append(r["utterance"]), future.append(nxt)
    return torch.tensor(index), present, future


def mask_tokens(ids: torch.Tensor, keep: torch.Tensor, mask_id: int, prob: float, generator=None):
    """Replace a random ``prob`` of the real tokens by [MASK]: (masked ids, labels with -100 where not masked)."""
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & keep.cpu()
    return ids.masked_fill(chosen.to(ids.device), mask_id), ids.masked_fill(~chosen.to(ids.device), IGNORE)


class MLMHead(nn.Module):
    """Predicts masked utterance tokens from the text stream of the fused memory (MLM-E)."""

    def __init__(self, width: int, vocab_size: int):
        super().__init__()
        self.norm, self.out = nn.LayerNorm(width), nn.Linear(width, vocab_size)

    def forward(self, text_stream):  # (B, L, D) -> (B, L, V)
        return self.out(self.norm(text_stream))


def pretrain(model: MVGPTModel, cfg: MVGPTExperimentConfig, tokenizer, rows: list[dict], video: torch.Tensor,
             seed: int) -> list:
    """Train ``model`` in place on the narration pairs of the training clips with the chosen objective."""
    if cfg.pretrain not in PRETRAIN:
        raise ValueError(f"unknown pretrain {cfg.pretrain!r}; choose one of {', '.join(PRETRAIN)}")
    if cfg.pretrain == "none":
        return []
    device = next(model.parameters()).device
    m = cfg.model
    clip_index, present, future = narration_pairs(rows)
    batches = generation_batches(tokenizer, present, future, m.text_length, m.decoder_length)
    parts = nn.ModuleDict({"model": model, "mlm": MLMHead(m.video.width, m.vocab_size)}).to(device)
    mask_id = tokenizer.convert_tokens_to_ids(tokenizer.mask_token)
    directions = {"forward": ("forward",), "bidirectional": ("forward", "backward")}.get(cfg.pretrain, ())

    def loss_fn(parts, idx, step):
        frames = as_float(video[clip_index[idx]]).to(device)  # (B, T, H, W, C)
        loss, logs = 0.0, {}
        if cfg.pretrain == "encoder":  # the encoder reads the present utterance with some words masked
            ids, keep = (batches["forward"][k][idx].to(device) for k in ("ids", "keep"))
            masked, labels = mask_tokens(ids, keep, mask_id, cfg.mask_prob, torch.Generator().manual_seed(seed + step))
            memory, _ = parts["model"].encode(frames, masked, keep)
            loss = generation_loss(parts["mlm"](memory[:, -ids.shape[1]:]), labels)
            logs["loss_mlm"] = loss.item()
        for direction in directions:
            b = {k: v[idx].to(device) for k, v in batches[direction].items()}
            logits = parts["model"](frames, b["ids"], b["keep"], b["dec_ids"], b["dec_keep"])
            part = generation_loss(logits, b["labels"])
            loss, logs[f"loss_{direction}"] = loss + part, part.item()
        return loss, logs

    return train(parts, loss_fn, len(clip_index), cfg.pretraining, seed=seed, desc=f"pretrain {cfg.pretrain}")


def finetune(model: MVGPTModel, cfg: MVGPTExperimentConfig, tokenizer, rows: list[dict], video: torch.Tensor,
             seed: int, out_dir=None, config_json: str = "{}") -> list:
    """(frames, the clip's own utterance) -> its caption, on every training clip."""
    device = next(model.parameters()).device
    ids, keep = tokenize(tokenizer, [r["utterance"] for r in rows], cfg.model.text_length)
    dec_ids, dec_keep, labels = decoder_tensors(tokenizer, [r["caption"] for r in rows], START_TOKENS["forward"],
                                                cfg.model.decoder_length)

    def loss_fn(model, idx, step):
        logits = model(as_float(video[idx]).to(device), ids[idx].to(device), keep[idx].to(device),
                       dec_ids[idx].to(device), dec_keep[idx].to(device))
        return generation_loss(logits, labels[idx].to(device)), {}

    return train(model, loss_fn, len(ids), cfg.finetuning, seed=seed, out_dir=out_dir, config_json=config_json,
                 desc="fine-tune captions")


@torch.no_grad()
def generate_captions(model: MVGPTModel, cfg: MVGPTExperimentConfig, tokenizer, video, utterances: list[str],
                      batch_size: int = 100) -> list[str]:
    device = next(model.parameters()).device
    model.eval()
    ids, keep = tokenize(tokenizer, utterances, cfg.model.text_length)
    start, end = tokenizer.convert_tokens_to_ids(START_TOKENS["forward"]), tokenizer.eos_token_id
    out = []
    for i in range(0, len(ids), batch_size):
        memory, mask = model.encode(as_float(video[i:i + batch_size]).to(device), ids[i:i + batch_size].to(device),
                                    keep[i:i + batch_size].to(device))
        if cfg.beam == 1:
            tokens = greedy_decode(model.decoder, memory, mask, start, end, cfg.max_caption_len)
        else:
            tokens = beam_search(model.decoder, memory, mask, start, end, cfg.max_caption_len, cfg.beam)
        out += tokenizer.batch_decode(tokens, skip_special_tokens=True)
    return out


def run_mvgpt(cfg: MVGPTExperimentConfig, seed: int = 0, out_dir=None, config_json: str = "{}") -> dict:
    seed_everything(seed)
    device = pick_device()
    tokenizer = load_tokenizer()
    size = cfg.model.video.image_size
    train_video, eval_video = clip_tensors("train", size)["video"], clip_tensors(cfg.eval_split, size)["video"]
    train_rows = load_table("clips", "train").to_list()
    model = cfg.model.build().to(device)
    pretraining = pretrain(model, cfg, tokenizer, train_rows, train_video, seed)
    finetuning = finetune(model, cfg, tokenizer, train_rows, train_video, seed, out_dir, config_json)
    eval_rows = load_table("clips", cfg.eval_split)
    predictions = generate_captions(model, cfg, tokenizer, eval_video, eval_rows["utterance"])
    references = {i: [c] for i, c in enumerate(eval_rows["caption"])}
    scores = caption_scores(dict(enumerate(predictions)), references)
    most_common = Counter(r["caption"] for r in train_rows).most_common(1)[0][0]
    baseline = caption_scores({i: most_common for i in references}, references)
    out = {**scores, **{f"{k}_baseline": v for k, v in baseline.items() if k != "meteor_missing"},
           "examples": [{"utterance": u, "generated": p, "reference": r}
                        for u, p, r in list(zip(eval_rows["utterance"], predictions, eval_rows["caption"]))[:8]],
           "final_pretrain_loss": round(pretraining[-1]["loss"], 4) if pretraining else None,
           "final_finetune_loss": round(finetuning[-1]["loss"], 4),
           "headline": [("cider", "cider_baseline"), ("bleu4", "bleu4_baseline")],
           "history": {"pretraining": pretraining, "finetuning": finetuning}}
    return out
