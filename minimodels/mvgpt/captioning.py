"""The ``mvgpt-captioning`` experiment: pretrain on unlabelled narration, fine-tune for captioning, score captions.

Pretraining sees only what an instructional video has without annotators: each clip's frames, its own narration
(the present utterance U) and the next clip's narration in the same episode (the future utterance W). Settings
(``--set pretrain=...``), as the paper's ablation of pretraining losses (arXiv 2201.08264, experiments):

    none           no pretraining
    encoder        encoder only, masked language modelling on the fused text stream (MLM-E, our choice of variant:
                   15 % of the real utterance tokens become [MASK]; a linear head predicts them)
    forward        encoder + decoder, L_FG:          (F, U) -> W from [BOS-F]
    bidirectional  encoder + decoder, L_FG + L_BG:   (F, U) -> W, and (F, W) -> U from [BOS-B]

Fine-tuning: (frames, present utterance) -> the clip's caption, from [BOS-F] (our choice of start token), on a small
labelled subset: captions for ``labelled_fraction`` (10 %) of the training clips, while pretraining reads the narration
of all of them. The paper's gain is a gain from unlabelled data: HowTo100M's 1.2M narrated videos against YouCook2's
~10k captioned clips. Held-out
captions are decoded greedily (or by beam search) and scored with BLEU-4, METEOR, ROUGE-L and CIDEr, beside a
baseline that always answers the most frequent training caption.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.dataset import as_float, clip_tensors, load_table
from ..data.episodes import ADVERBS
from ..data.world import APPEARANCE, COLOURS, MOTION
from ..engine.errors import ConfigError
from ..engine.results import ExperimentResult
from ..engine.rng import rng, seed_everything
from ..engine.train import History, TrainConfig, pick_device, train
from ..eval.captions import caption_scores
from ..eval.loop import batched, evaluating
from ..nn.decoding import beam_search, greedy_decode
from ..nn.text import IGNORE, load_tokenizer, tokenize
from .bidirectional import START_TOKENS, decoder_tensors, generation_batches, generation_loss
from .model import MVGPTConfig, MVGPTModel

PRETRAIN = ("none", "encoder", "forward", "bidirectional")
DIRECTIONS = {"forward": ("forward",), "bidirectional": ("forward", "backward")}  # each setting's generation terms
PRETRAIN_STEPS = 400  # batches of 32: 7 passes over the 1,800 narration pairs
FINETUNE_STEPS = 300  # batches of 32: 40 passes over the 240 labelled clips


@dataclass
class CaptioningConfig:
    model: MVGPTConfig = field(default_factory=MVGPTConfig)
    pretrain: str = "bidirectional"
    pretraining: TrainConfig = field(default_factory=lambda: TrainConfig(steps=PRETRAIN_STEPS, lr=1e-3, warmup=30))
    finetuning: TrainConfig = field(default_factory=lambda: TrainConfig(steps=FINETUNE_STEPS, lr=1e-3, warmup=20))
    mask_prob: float = 0.15  # MLM-E
    labelled_fraction: float = 0.1  # of the training clips whose captions fine-tuning sees
    max_caption_len: int = 16  # decoding stops here at the latest
    beam: int = 1  # 1 = greedy
    eval_split: str = "test"

    def __post_init__(self):  # checked when the config is made, so a bad setting never starts a run
        if self.pretrain not in PRETRAIN:
            raise ConfigError(f"unknown pretrain {self.pretrain!r}; choose one of {', '.join(PRETRAIN)}")
        if not 0 < self.labelled_fraction <= 1:
            raise ConfigError(f"labelled_fraction must be in (0, 1], got {self.labelled_fraction}")


def narration_pairs(rows: list[dict]) -> tuple[torch.Tensor, list[str], list[str]]:
    """Clips that have a next clip in their episode: (clip indices (P,), present utterances, future utterances)."""
    by_step = {(r["episode"], r["step"]): r["utterance"] for r in rows}
    index, present, future = [], [], []
    for i, r in enumerate(rows):
        nxt = by_step.get((r["episode"], r["step"] + 1))
        if nxt is not None:
            index.append(i), present.append(r["utterance"]), future.append(nxt)
    return torch.tensor(index), present, future


def labelled_subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Which of ``n`` training clips have a caption for fine-tuning: a seeded random ``fraction`` of them (sorted)."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"labelled_fraction must be in (0, 1], got {fraction}")
    count = max(1, round(n * fraction))
    return torch.randperm(n, generator=rng(seed, 0, "labelled-subset"))[:count].sort().values


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


def pretrain(model: MVGPTModel, cfg: CaptioningConfig, tokenizer, rows: list[dict], video: torch.Tensor,
             seed: int) -> History | None:
    """Train ``model`` in place on the narration pairs of the training clips with the chosen objective."""
    if cfg.pretrain == "none":
        return None
    device = next(model.parameters()).device
    m = cfg.model
    clip_index, present, future = narration_pairs(rows)
    batches = generation_batches(tokenizer, present, future, m.text_length, m.decoder_length)
    parts = nn.ModuleDict({"model": model, "mlm": MLMHead(m.video.width, m.vocab_size)}).to(device)
    mask_id = tokenizer.convert_tokens_to_ids(tokenizer.mask_token)
    directions = DIRECTIONS.get(cfg.pretrain, ())

    def loss_fn(parts, idx, step):
        model = parts["model"]
        video_tokens = model.video(as_float(video[clip_index[idx]]).to(device))  # (B, T·N, D), once for FG and BG
        loss, logs = 0.0, {}
        if cfg.pretrain == "encoder":  # the encoder reads the present utterance with some words masked
            ids, keep = (batches["forward"][k][idx].to(device) for k in ("ids", "keep"))
            masked, labels = mask_tokens(ids, keep, mask_id, cfg.mask_prob, rng(seed, step, "mlm-mask"))
            memory, _ = model.fuse(video_tokens, masked, keep)
            loss = generation_loss(parts["mlm"](memory[:, -ids.shape[1]:]), labels)
            logs["loss_mlm"] = loss.item()
        for direction in directions:
            b = {k: v[idx].to(device) for k, v in batches[direction].items()}
            logits = model.decoder(b["dec_ids"], b["dec_keep"], *model.fuse(video_tokens, b["ids"], b["keep"]))
            part = generation_loss(logits, b["labels"])
            loss, logs[f"loss_{direction}"] = loss + part, part.item()
        return loss, logs

    return train(parts, loss_fn, len(clip_index), cfg.pretraining, seed=seed, desc=f"pretrain {cfg.pretrain}")


def colour_word_accuracy(model: MVGPTModel, cfg: CaptioningConfig, tokenizer, rows: list[dict], video,
                         directions=("forward", "backward")) -> dict[str, float]:
    """Is the pretrained decoder grounded? At every colour word of a held-out target utterance (teacher forcing),
    the fraction where the right colour outranks the other colours; chance 1/6. In BG the target is the *present*
    utterance, whose colour the present frames show; a text-only decoder can only guess it.
    """
    if not directions:  # no decoder was pretrained
        return {}
    device = next(model.parameters()).device
    clip_index, present, future = narration_pairs(rows)
    batches = generation_batches(tokenizer, present, future, cfg.model.text_length, cfg.model.decoder_length)
    colour_ids = torch.tensor([tokenizer.encode(c, add_special_tokens=False)[0] for c in COLOURS], device=device)
    out = {}
    with evaluating(model):
        video_tokens = model.video(as_float(video[clip_index]).to(device))  # (P, T·N, D), once for both directions
        for direction in directions:
            b = {k: v.to(device) for k, v in batches[direction].items()}
            logits = model.decoder(b["dec_ids"], b["dec_keep"], *model.fuse(video_tokens, b["ids"], b["keep"]))
            at_colour = torch.isin(b["labels"], colour_ids)
            guess = colour_ids[logits[at_colour][:, colour_ids].argmax(-1)]
            out[f"colour_word_acc_{direction}"] = round((guess == b["labels"][at_colour]).float().mean().item(), 4)
    return out


def finetune(model: MVGPTModel, cfg: CaptioningConfig, tokenizer, rows: list[dict], video: torch.Tensor,
             seed: int, out_dir=None) -> History:
    """(frames, the clip's own utterance) -> its caption, on the given (labelled) clips."""
    device = next(model.parameters()).device
    ids, keep = tokenize(tokenizer, [r["utterance"] for r in rows], cfg.model.text_length)
    dec_ids, dec_keep, labels = decoder_tensors(tokenizer, [r["caption"] for r in rows], START_TOKENS["forward"],
                                                cfg.model.decoder_length)

    def loss_fn(model, idx, step):
        logits = model(as_float(video[idx]).to(device), ids[idx].to(device), keep[idx].to(device),
                       dec_ids[idx].to(device), dec_keep[idx].to(device))
        return generation_loss(logits, labels[idx].to(device)), {}

    return train(model, loss_fn, len(ids), cfg.finetuning, seed=seed, out_dir=out_dir, desc="fine-tune captions")


CAPTION_WORDS = {**APPEARANCE, "direction": MOTION["direction"], "speed": tuple(ADVERBS.values())}


def attribute_accuracy(captions: list[str], rows: list[dict]) -> dict[str, float]:
    """Per attribute, the fraction of captions that name the clip's value and no other (bounce: says it iff it did).

    Tells which facts a captioner gets right: the utterance gives the direction (its verb) and sometimes the colour
    and speed; size, shape and bounce come from the frames alone.
    """
    hits = Counter()
    for text, row in zip(captions, rows):
        words = set(text.split())
        for attribute, values in CAPTION_WORDS.items():
            truth = ADVERBS[row[attribute]] if attribute == "speed" else row[attribute]
            hits[attribute] += words & set(values) == {truth}
        hits["bounce"] += ("bounces" in words) == row["bounced"]
    return {f"acc_{a}": round(hits[a] / len(rows), 4) for a in (*CAPTION_WORDS, "bounce")}


def generate_captions(model: MVGPTModel, cfg: CaptioningConfig, tokenizer, video, utterances: list[str],
                      batch_size: int = 100) -> list[str]:
    device = next(model.parameters()).device
    ids, keep = tokenize(tokenizer, utterances, cfg.model.text_length)
    start, end = tokenizer.convert_tokens_to_ids(START_TOKENS["forward"]), tokenizer.eos_token_id

    def decode(rows):
        memory, mask = model.encode(as_float(video[rows]).to(device), ids[rows].to(device), keep[rows].to(device))
        if cfg.beam == 1:
            tokens = greedy_decode(model.decoder, memory, mask, start, end, cfg.max_caption_len)
        else:
            tokens = beam_search(model.decoder, memory, mask, start, end, cfg.max_caption_len, cfg.beam)
        return tokenizer.batch_decode(tokens, skip_special_tokens=True)

    with evaluating(model):
        return batched(decode, len(ids), batch_size)


def run(cfg: CaptioningConfig, seed: int = 0, out_dir=None) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    tokenizer = load_tokenizer()
    size = cfg.model.video.image_size
    train_video, eval_video = clip_tensors("train", size)["video"], clip_tensors(cfg.eval_split, size)["video"]
    train_rows = load_table("clips", "train").to_list()
    model = cfg.model.build().to(device)
    pretraining = pretrain(model, cfg, tokenizer, train_rows, train_video, seed)
    eval_rows = load_table("clips", cfg.eval_split).to_list()
    grounding = colour_word_accuracy(model, cfg, tokenizer, eval_rows, eval_video, DIRECTIONS.get(cfg.pretrain, ()))
    labelled = labelled_subset(len(train_rows), cfg.labelled_fraction, seed)
    labelled_rows = [train_rows[i] for i in labelled]
    finetuning = finetune(model, cfg, tokenizer, labelled_rows, train_video[labelled], seed, out_dir)
    predictions = generate_captions(model, cfg, tokenizer, eval_video, [r["utterance"] for r in eval_rows])
    references = {i: [r["caption"]] for i, r in enumerate(eval_rows)}
    scores = caption_scores(dict(enumerate(predictions)), references)
    most_common = Counter(r["caption"] for r in labelled_rows).most_common(1)[0][0]
    baseline = caption_scores({i: most_common for i in references}, references)
    metrics = {**{k: v for k, v in scores.items() if k != "meteor_missing"},
               **attribute_accuracy(predictions, eval_rows), **grounding,
               "final_pretrain_loss": round(pretraining.final_loss, 4) if pretraining else None,
               "final_finetune_loss": round(finetuning.final_loss, 4)}
    chance = {k: v for k, v in baseline.items() if k in metrics and v is not None}
    chance.update({k: round(1 / len(COLOURS), 4) for k in grounding})
    info = {"examples": [{"utterance": r["utterance"], "generated": p, "reference": r["caption"]}
                        for r, p in zip(eval_rows[:8], predictions)],
            "labelled_clips": len(labelled_rows), "chance_is": "the most frequent labelled caption, for every clip",
            **({"meteor_missing": scores["meteor_missing"]} if "meteor_missing" in scores else {})}
    history = {"pretraining": pretraining, "finetuning": finetuning} if pretraining else {"finetuning": finetuning}
    return ExperimentResult(metrics, chance, headline=["cider", "bleu4"], history=history, info=info)
