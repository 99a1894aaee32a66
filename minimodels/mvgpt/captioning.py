"""The ``mvgpt-captioning`` experiment: pretrain on unlabelled narration, fine-tune for captioning, score captions.

Pretraining (``pretraining.py``) reads only what narrated video has without annotators: the narration-only pool's
frames, present and future utterances, 24,000 pairs drawn as they are read. Settings (``--set pretrain=...``), as the
paper's ablation of pretraining losses (arXiv 2201.08264, experiments):

    none                no pretraining
    encoder             encoder only, masked language modelling on the encoder's output (MLM-E)
    forward             encoder + decoder, L_FG:          (F, U) -> W from [BOS-F]
    bidirectional       encoder + decoder, L_FG + L_BG:   (F, U) -> W, and (F, W) -> U from [BOS-B]
    bidirectional+mlm   L_FG + L_BG + L_MLM-D, the paper's full objective (MLM-D: our reading, pretraining.py)

Fine-tuning: (frames, present utterance) -> the clip's caption, from [BOS-F] (our choice of start token), on a small
labelled set: captions for ``labelled_fraction`` (10 %) of the training clips, 240 clips, a hundredth of the pool, as
MV-GPT pretrains on HowTo100M's 1.2M narrated videos and fine-tunes on YouCook2's ~10k captioned clips. Held-out
captions are decoded greedily (or by beam search) and scored with BLEU-4, METEOR, ROUGE-L and CIDEr, beside a
baseline that always answers the most frequent training caption.

On real video (``data/narrated_folder.py``): ``pretrain_manifest`` lists narrated videos with their transcripts
(HowTo100M-style: the pairs are every utterance and the next), ``manifest`` captioned segments (YouCook2-style:
video, start, end, caption, and the transcript when there is one: its words within the segment are the present
utterance), fine-tuned on in full (each segment with its first caption), and ``eval_manifest`` the held-out
segments, scored against all their captions. ``init`` starts the model from a run folder (an earlier pretraining,
say, with ``pretrain=none`` to fine-tune it alone). The text goes through the course's tokenizer, made for the
world's words: real sentences fall apart into pieces of words and are cut at ``text_length`` tokens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from ..data.dataset import LoaderConfig, as_float, clip_tensors, load_table, take, usable
from ..data.episodes import ADVERBS
from ..data.narrated_folder import captioned_segments, narration_pairs
from ..data.world import APPEARANCE, MOTION
from ..engine.batches import nothing_to_learn
from ..engine.checkpoint import init_from
from ..engine.config import finite, require, whole
from ..engine.device import pick_device
from ..engine.errors import ConfigError
from ..engine.experiment import NO_FOLDER, RunFolder
from ..engine.history import History
from ..engine.results import ExperimentResult, rounded
from ..engine.rng import rng, seed_everything
from ..engine.train import TrainConfig, train
from ..eval.captions import caption_scores
from ..eval.loop import batched, evaluating
from ..nn.decoding import beam_search, greedy_decode
from ..nn.text import IGNORE, load_tokenizer, tokenize
from .bidirectional import START_TOKENS, decoder_tensors, generation_loss
from .model import MVGPTConfig, MVGPTModel
from .pretraining import GENERATION, OBJECTIVES, PRETRAIN_STEPS, pretrain, visual_word_accuracy, word_chance

PRETRAIN = ("none", *OBJECTIVES)
FINETUNE_STEPS = 300  # batches of 32: 40 passes over the 240 labelled clips


@dataclass
class CaptioningConfig:
    model: MVGPTConfig = field(default_factory=MVGPTConfig)
    pretrain: str = "bidirectional"
    pretraining: TrainConfig = field(default_factory=lambda: TrainConfig(steps=PRETRAIN_STEPS, lr=1e-3, warmup=30))
    finetuning: TrainConfig = field(default_factory=lambda: TrainConfig(steps=FINETUNE_STEPS, lr=1e-3, warmup=20))
    mask_prob: float = 0.15  # MLM-E and MLM-D
    labelled_fraction: float = 0.1  # of the training clips whose captions fine-tuning sees
    max_caption_len: int = 16  # decoding stops here at the latest
    beam: int = 1  # 1 = greedy
    eval_split: str = "test"
    pretrain_manifest: str = ""  # narrated videos with transcripts to pretrain on (with manifest; pretrain!=none)
    manifest: str = ""  # captioned segments to fine-tune on instead of the world's clips
    eval_manifest: str = ""  # held-out captioned segments ("": the manifest's own)
    init: str = ""  # start from these weights: a run folder (model.safetensors + config.json)
    loader: LoaderConfig = field(default_factory=LoaderConfig)  # how a folder's videos are decoded

    def __post_init__(self):  # checked when the config is made, so a bad setting never starts a run
        if self.pretrain not in PRETRAIN:
            raise ConfigError(f"unknown pretrain {self.pretrain!r}; choose one of {', '.join(PRETRAIN)}")
        require(self, {
            "mask_prob": (finite(self.mask_prob) and 0 < self.mask_prob < 1, "a share in (0, 1)"),
            "labelled_fraction": (finite(self.labelled_fraction) and 0 < self.labelled_fraction <= 1,
                                  "a share in (0, 1]"),
            "max_caption_len": (whole(self.max_caption_len), "a whole number of tokens >= 1"),
            "beam": (whole(self.beam), "a whole number >= 1 (1: greedy)")})
        if self.manifest and self.pretrain != "none" and not self.pretrain_manifest:
            raise ConfigError(f"pretrain={self.pretrain!r} on a folder needs pretrain_manifest (narrated videos with "
                              f"their transcripts); or pretrain=none to fine-tune alone")
        if (self.pretrain_manifest or self.eval_manifest) and not self.manifest:
            raise ConfigError("pretrain_manifest and eval_manifest are for a folder run: give manifest (captioned "
                              "segments to fine-tune on) too")


def labelled_subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Which of ``n`` training clips have a caption for fine-tuning: a seeded random ``fraction`` of them (sorted)."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"labelled_fraction must be in (0, 1], got {fraction}")
    count = max(1, round(n * fraction))
    return torch.randperm(n, generator=rng(seed, 0, "labelled-subset"))[:count].sort().values


def finetune(model: MVGPTModel, cfg: CaptioningConfig, tokenizer, rows: list[dict], video: torch.Tensor,
             seed: int, folder: RunFolder = NO_FOLDER) -> History:
    """(frames, the clip's own utterance) -> its caption, on the given (labelled) clips; the run's last stage, so it
    checkpoints into (and resumes from) the run's folder."""
    device = next(model.parameters()).device
    ids, keep = tokenize(tokenizer, [r["utterance"] for r in rows], cfg.model.text_length)
    dec_ids, dec_keep, labels = decoder_tensors(tokenizer, [r["caption"] for r in rows], START_TOKENS["forward"],
                                                cfg.model.decoder_length)

    def loss_fn(model, batch, step):
        idx = batch.idx
        clips, decoded = take(video, idx)  # a folder's segment that failed to decode takes no part
        if not decoded.any():
            return nothing_to_learn(model), {}
        logits = model(as_float(clips).to(device), ids[idx].to(device), keep[idx].to(device),
                       dec_ids[idx].to(device), dec_keep[idx].to(device))
        return generation_loss(logits, labels[idx].masked_fill(~decoded[:, None], IGNORE).to(device)), {}

    return train(model, loss_fn, len(ids), cfg.finetuning, seed=seed, checkpoints=folder.path, resume=folder.resume,
                 log=folder.log, desc="fine-tune captions", prefetch=(video,))


CAPTION_WORDS = {**APPEARANCE, "direction": MOTION["direction"], "speed": tuple(ADVERBS.values())}


def attribute_accuracy(captions: list[str], rows: list[dict]) -> dict[str, float]:
    """Per attribute, the fraction of captions that name the clip's value and no other (bounce: says it iff it did).

    Tells which facts a captioner gets right: the utterance gives the direction (its verb) and often the colour and
    speed; size, shape and bounce only in remarks, which may be about the clip before, so the frames must decide.
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


def run(cfg: CaptioningConfig, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    tokenizer = load_tokenizer()
    model = cfg.model.build()
    info = {"init": init_from(model, cfg.init)} if cfg.init else {}
    model.to(device)
    if cfg.manifest:
        return run_on_folder(cfg, seed, folder, model, tokenizer, info)
    size, frames = cfg.model.video.image_size, cfg.model.video.num_frames
    train_video, eval_video = (clip_tensors(split, size, frames=frames)["video"] for split in ("train", cfg.eval_split))
    train_rows = load_table("clips", "train").to_list()
    pretraining = None if cfg.pretrain == "none" else pretrain(model, cfg.pretrain, cfg.pretraining, tokenizer, seed,
                                                                cfg.mask_prob, log=folder.log)
    eval_rows = load_table("clips", cfg.eval_split).to_list()
    directions = GENERATION.get(cfg.pretrain, ())  # a decoder was pretrained: does it read the frames?
    grounding = visual_word_accuracy(model, tokenizer, eval_rows, eval_video, directions) if directions else {}
    labelled = labelled_subset(len(train_rows), cfg.labelled_fraction, seed)
    labelled_rows = [train_rows[i] for i in labelled]
    finetuning = finetune(model, cfg, tokenizer, labelled_rows, train_video[labelled], seed, folder)
    predictions = generate_captions(model, cfg, tokenizer, eval_video, [r["utterance"] for r in eval_rows])
    references = {i: [r["caption"]] for i, r in enumerate(eval_rows)}
    scores = caption_scores(dict(enumerate(predictions)), references)
    most_common = Counter(r["caption"] for r in labelled_rows).most_common(1)[0][0]
    baseline = caption_scores({i: most_common for i in references}, references)
    metrics = {**{k: v for k, v in scores.items() if k != "meteor_missing"},
               **attribute_accuracy(predictions, eval_rows), **grounding,
               "final_pretrain_loss": rounded(pretraining.final_loss) if pretraining else None,
               "final_finetune_loss": rounded(finetuning.final_loss)}
    chance = {k: v for k, v in baseline.items() if k in metrics and v is not None}
    chance.update(word_chance(directions))
    info = {**info, "examples": [{"utterance": r["utterance"], "generated": p, "reference": r["caption"]}
                                 for r, p in zip(eval_rows[:8], predictions)],
            "labelled_clips": len(labelled_rows), "chance_is": "the most frequent labelled caption, for every clip",
            **({"meteor_missing": scores["meteor_missing"]} if "meteor_missing" in scores else {})}
    history = {"pretraining": pretraining, "finetuning": finetuning} if pretraining else {"finetuning": finetuning}
    return ExperimentResult(metrics, chance, headline=["cider", "bleu4"], history=history, info=info)


def run_on_folder(cfg: CaptioningConfig, seed: int, folder: RunFolder, model: MVGPTModel, tokenizer,
                  info: dict) -> ExperimentResult:
    """Pretraining on a folder's narration pairs, fine-tuning on its captioned segments, captions of the held-out
    segments scored against all their references (segments that failed to decode left out)."""
    size, frames = cfg.model.video.image_size, cfg.model.video.num_frames
    pretraining = None
    if cfg.pretrain != "none":
        pairs = narration_pairs(cfg.pretrain_manifest, size, frames, cfg.loader)
        pretraining = pretrain(model, cfg.pretrain, cfg.pretraining, tokenizer, seed, cfg.mask_prob, log=folder.log,
                               pairs=pairs)
    segments = captioned_segments(cfg.manifest, size, frames, cfg.loader)
    held_out = captioned_segments(cfg.eval_manifest, size, frames, cfg.loader) if cfg.eval_manifest else segments
    rows = [{"utterance": u, "caption": c[0]} for u, c in zip(segments["utterance"], segments["captions"])]
    finetuning = finetune(model, cfg, tokenizer, rows, segments["video"], seed, folder)
    predictions = generate_captions(model, cfg, tokenizer, held_out["video"], held_out["utterance"])
    kept = [i for i, ok in enumerate(usable(held_out["video"]).tolist()) if ok]
    references = {i: held_out["captions"][i] for i in kept}
    scores = caption_scores({i: predictions[i] for i in kept}, references)
    most_common = Counter(r["caption"] for r in rows).most_common(1)[0][0]
    baseline = caption_scores({i: most_common for i in kept}, references)
    metrics = {**{k: v for k, v in scores.items() if k != "meteor_missing"},
               "final_pretrain_loss": rounded(pretraining.final_loss) if pretraining else None,
               "final_finetune_loss": rounded(finetuning.final_loss)}
    chance = {k: v for k, v in baseline.items() if k in metrics and v is not None}
    info = {**info, "examples": [{"utterance": held_out["utterance"][i], "generated": predictions[i],
                                  "references": held_out["captions"][i]} for i in kept[:8]],
            "segments": len(rows), "held_out": len(kept), "chance_is": "the most frequent training caption",
            **({"pretraining_pairs": len(pairs["video"])} if pretraining else {}),
            **({"meteor_missing": scores["meteor_missing"]} if "meteor_missing" in scores else {})}
    history = {"pretraining": pretraining, "finetuning": finetuning} if pretraining else {"finetuning": finetuning}
    return ExperimentResult(metrics, chance, headline=["cider", "bleu4"], history=history, info=info)
