"""The ``mvgpt-narration`` experiment: MV-GPT's premise, checked before its ablation is run (notebook 04).

Forward generation can only teach a decoder to look at the screen if the future utterance says things that the
present frames show and the present words do not (arXiv 2201.08264, introduction: narration is loosely aligned with the
action, so what is shown now is often said next). A model of the future utterance W is trained on the narration
pool with L_FG alone, reading the frames and the present utterance U (``frames=true``) or blank frames and U, a
text-only model (``frames=false``), with the same seed, steps and initialisation, and scored on held-out narration
(the test split's pairs, teacher forcing) at every colour, size and shape word of W: is the right word ranked first
among the words of its kind? The gain of the first over the second is what the frames add:

    python -m minimodels sweep mvgpt-narration --seeds 0 1 2 --vary frames=false,true --write-results

Beside it, from the data alone, the share of those words that are true of the present clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..data.dataset import clip_tensors, load_table
from ..engine.device import pick_device
from ..engine.experiment import NO_FOLDER, RunFolder
from ..engine.results import ExperimentResult
from ..engine.rng import seed_everything
from ..engine.train import TrainConfig
from ..nn.text import canonicalize, load_tokenizer
from .model import MVGPTConfig
from .pretraining import PRETRAIN_STEPS, VISUAL_WORDS, narration_pairs, pretrain, visual_word_accuracy, word_chance


@dataclass
class NarrationCheckConfig:
    model: MVGPTConfig = field(default_factory=MVGPTConfig)
    training: TrainConfig = field(default_factory=lambda: TrainConfig(steps=PRETRAIN_STEPS, lr=1e-3, warmup=30))
    frames: bool = True  # False: every clip blank, a text-only model of the future utterance
    eval_split: str = "test"


def true_of_present(rows: list[dict], utterance: str = "future") -> dict[str, float]:
    """From the data alone: of the colour / size / shape words in held-out ``utterance``s ("future": step k+1's, the
    forward target; "present": step k's own, the backward target), the share that name step k's clip's own value
    (the rest are about another clip, or the other ingredient)."""
    index, present, future = narration_pairs(rows)
    texts = {"future": future, "present": present}[utterance]
    out = {}
    for fact, words in VISUAL_WORDS.items():
        said = [(w, rows[i][fact]) for i, text in zip(index.tolist(), texts)
                for w in canonicalize(text).split() if w in words]
        out[f"true_of_present_{fact}"] = round(sum(w == truth for w, truth in said) / max(1, len(said)), 4)
    return out


def run(cfg: NarrationCheckConfig, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    tokenizer = load_tokenizer()
    rows = load_table("clips", cfg.eval_split).to_list()
    video = clip_tensors(cfg.eval_split, cfg.model.video.image_size, frames=cfg.model.video.num_frames)["video"]
    model = cfg.model.build().to(device)
    history = pretrain(model, "forward", cfg.training, tokenizer, seed, frames=cfg.frames, log=folder.log)
    accuracy = visual_word_accuracy(model, tokenizer, rows, video if cfg.frames else torch.zeros_like(video),
                                    ("forward",))
    metrics = {k.replace("_forward", ""): v for k, v in accuracy.items()} | true_of_present(rows)
    chance = {k.replace("_forward", ""): v for k, v in word_chance(("forward",)).items()}
    return ExperimentResult(metrics, chance, headline=[f"word_acc_{fact}" for fact in VISUAL_WORDS],
                            history={"pretraining": history},
                            info={"pool_pairs_read": cfg.training.steps * cfg.training.batch_size})
