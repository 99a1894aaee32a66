"""The ``videoprism-stage1`` experiment: video–text contrastive pretraining of the tiny model on ``data_small/``.

Two text sources are paired with every training clip, as VideoPrism mixes a small set of clean captions with far
more noisy web text (arXiv 2402.13217, §2.3.1): the clean ``description`` (what is shown; how it moves in one clip in
five) and the ``alt_text`` (appearance only, with junk words and errors). Neither says much about motion, as the
paper's corpora do not, so stage 1's motion is weak by design of the data (``text_sources`` can add the annotator's
``caption``, which always states the motion, to see what motion-rich text would change). Following the paper's
alternating gradient descent (AGD, App. C.1 and Table 22), each mini-batch takes its texts from a single source,
alternating step by step, so that a batch never mixes an easy source with a hard one.

Evaluation on held-out clips and their captions: text→video and video→text retrieval (R@1/5/10 in %, median rank)
and zero-shot classification of every attribute from text prompts (class embedding = the mean embedding of every
caption-style prompt that names the class, CLIP's prompt ensembling).

``manifest`` trains on a folder of real videos instead (``data/video_folder.py``: captions, class names or
subtitles as each video's text, the videos decoded at the preset's frames and resolution in loader workers), and
evaluates retrieval on ``eval_manifest``'s videos (zero-shot attributes need the world's labels, so they are left
out).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

from ..data.dataset import as_float, clip_tensors, load_table
from ..data.episodes import ADVERBS
from ..data.video_folder import folder_split
from ..data.world import APPEARANCE, MOTION
from ..engine.batches import per_example
from ..engine.config import finite, require
from ..engine.device import pick_device
from ..engine.distributed import gather_batch
from ..engine.errors import ConfigError
from ..engine.experiment import NO_FOLDER, RunFolder
from ..engine.results import ExperimentResult, rounded
from ..engine.rng import rng, seed_everything
from ..engine.train import TrainConfig, train
from ..eval.loop import batched, evaluating
from ..eval.probes import majority_chance
from ..eval.retrieval import retrieval_chance, retrieval_metrics
from ..nn.masking import tube_keep
from ..nn.text import load_tokenizer
from .contrastive import symmetric_infonce
from .text_encoder import tokenize_texts
from .video_text import VideoTextConfig, VideoTextModel

TEXT_SOURCES = ("description", "alt_text")  # the default mix
KNOWN_SOURCES = (*TEXT_SOURCES, "caption")


@dataclass
class Stage1Config:
    model: VideoTextConfig = field(default_factory=VideoTextConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=600, batch_size=64, lr=2e-3, warmup=30))
    token_drop: float = 0.5  # FLIP-style tube dropping while training (the paper: 0.5); 0 switches it off
    text_sources: tuple[str, ...] = TEXT_SOURCES  # AGD: batch k takes its texts from text_sources[k % len]
    eval_split: str = "test"
    manifest: str = ""  # a real-video manifest to train on instead of the world (its text is the only source)
    eval_manifest: str = ""  # the videos to evaluate retrieval on then ("": the training manifest's own)

    def __post_init__(self):  # checked when the config is made, so a bad setting never starts a run
        unknown = set(self.text_sources) - set(KNOWN_SOURCES)
        if unknown or not self.text_sources:
            raise ConfigError(f"unknown text source(s) {sorted(unknown)}; choose from {KNOWN_SOURCES}")
        require(self, {"token_drop": (finite(self.token_drop) and 0 <= self.token_drop < 1,
                                      "a share in [0, 1) (0: no token dropping)")})


def text_tensors(tokenizer, split: str, sources: tuple[str, ...], length: int) -> dict[str, tuple[torch.Tensor, ...]]:
    """{source: (ids (N, length), keep (N, length))} for every clip of ``split``, in the order of ``clip_tensors``."""
    unknown = set(sources) - set(KNOWN_SOURCES)
    if unknown:
        raise ConfigError(f"unknown text source(s) {sorted(unknown)}; choose from {KNOWN_SOURCES}")
    rows = load_table("clips", split)
    return {s: tokenize_texts(tokenizer, rows[s], length) for s in sources}


def prompt_grid() -> tuple[list[str], list[dict]]:
    """Every caption-style prompt "a large red circle moves up quickly", with the attributes it names."""
    prompts, attrs = [], []
    names = {**APPEARANCE, **MOTION}
    for values in itertools.product(*names.values()):
        a = dict(zip(names, values))
        prompts.append(f"a {a['size']} {a['colour']} {a['shape']} moves {a['direction']} {ADVERBS[a['speed']]}")
        attrs.append(a)
    return prompts, attrs


def embed_videos(model: VideoTextModel, video: torch.Tensor, batch_size: int = 200) -> torch.Tensor:
    """uint8 clips (N, T, H, W, C) -> unit embeddings (N, D), every token visible."""
    device = next(model.parameters()).device
    with evaluating(model):
        return batched(lambda rows: model.encode_video(as_float(video[rows]).to(device)), len(video), batch_size)


@torch.no_grad()
def zero_shot_classes(model: VideoTextModel, tokenizer) -> dict[str, torch.Tensor]:
    """{attribute: (classes, D) unit class embeddings}: the mean of the prompts naming each class."""
    device = next(model.parameters()).device
    prompts, attrs = prompt_grid()
    ids, keep = tokenize_texts(tokenizer, prompts, model.cfg.text_length)
    text = model.encode_text(ids.to(device), keep.to(device))  # (P, D)
    out = {}
    for name, classes in {**APPEARANCE, **MOTION}.items():
        means = [text[[a[name] == c for a in attrs]].mean(0) for c in classes]
        out[name] = torch.nn.functional.normalize(torch.stack(means), dim=-1)
    return out


def evaluate(model: VideoTextModel, data: dict, texts: tuple[torch.Tensor, torch.Tensor], tokenizer) -> dict:
    """Retrieval between held-out clips and their captions, and zero-shot accuracy of every attribute."""
    device = next(model.parameters()).device
    video = embed_videos(model, data["video"])  # (N, D), on the CPU
    with torch.no_grad():
        text = model.encode_text(texts[0].to(device), texts[1].to(device)).cpu()  # (N, D)
    sim = text @ video.T  # (N texts, N videos)
    out = {**retrieval_metrics(sim, "t2v"), **retrieval_metrics(sim.T, "v2t")}
    labelled = APPEARANCE.keys() <= data.keys()  # the world's clips; a folder's videos have no attribute labels
    for name, classes in (zero_shot_classes(model, tokenizer).items() if labelled else ()):
        pred = (video @ classes.cpu().T).argmax(1)
        out[f"zs_{name}"] = round((pred == data[name]).float().mean().item(), 4)
    return out


def chance(data: dict) -> dict[str, float]:
    """Retrieval chance (a random ranking) and zero-shot chance (always the most frequent class, as the probes)."""
    n = len(data["video"])
    out = {**retrieval_chance(n, "t2v"), **retrieval_chance(n, "v2t")}
    if APPEARANCE.keys() <= data.keys():  # the world's clips, labelled: zero-shot classification too
        out.update({f"zs_{name}": round(value, 4) for name, value in majority_chance(data).items()})
    return out


def run(cfg: Stage1Config, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    tokenizer = load_tokenizer()
    train_data, train_text, eval_data, eval_text = (folder_data if cfg.manifest else world_data)(cfg, tokenizer)
    model = cfg.model.build().to(device)
    tokens_per_frame = cfg.model.video.tokens_per_frame

    sources = list(train_text)  # AGD: batch k takes its texts from sources[k % len]

    def loss_fn(model, batch, step):
        source = sources[step % len(sources)]
        ids, keep = (t[batch.idx].to(device) for t in train_text[source])
        video = as_float(train_data["video"][batch.idx]).to(device)  # (B, T, H, W, C)
        visible = None
        if cfg.token_drop > 0:  # a stream of its own, drawn afresh each step: a resumed run drops the same tokens
            drop = rng(seed, step, "token-drop")
            visible = per_example(lambda n: tube_keep(n, tokens_per_frame, cfg.token_drop, drop), batch,
                                  len(batch)).to(device)
        v, t = model(video, ids, keep, visible=visible)
        log_scale = model.clamped_log_scale()
        loss = symmetric_infonce(gather_batch(v), gather_batch(t), log_scale)  # negatives from every process
        return loss, {"temperature": log_scale.exp().reciprocal().item()}

    history = train(model, loss_fn, len(train_data["video"]), cfg.train, seed=seed, checkpoints=folder.path,
                    resume=folder.resume, log=folder.log, desc="videoprism-stage1",
                    eval_fn=lambda m: evaluate(m, eval_data, eval_text, tokenizer))
    metrics = {**history.final_eval, "final_loss": rounded(history.final_loss),
               "temperature": round(history.steps[-1]["temperature"], 4)}
    headline = ["t2v_r1", "v2t_r1", *([] if cfg.manifest else ["zs_shape", "zs_colour", "zs_direction"])]
    return ExperimentResult(metrics, chance(eval_data), headline=headline, history={"train": history})


def world_data(cfg: Stage1Config, tokenizer) -> tuple[dict, dict, dict, tuple]:
    """(train clips, {source: train texts}, eval clips, eval captions) from the world, at the preset's size."""
    size, frames, length = cfg.model.video.image_size, cfg.model.video.num_frames, cfg.model.text_length
    train_data, eval_data = (clip_tensors(split, size, frames=frames) for split in ("train", cfg.eval_split))
    train_text = text_tensors(tokenizer, "train", cfg.text_sources, length)
    return train_data, train_text, eval_data, text_tensors(tokenizer, cfg.eval_split, ("caption",), length)["caption"]


def folder_data(cfg: Stage1Config, tokenizer) -> tuple[dict, dict, dict, tuple]:
    """The same from real-video manifests: each video's one text is its only source, in training and evaluation."""
    size, frames, length = cfg.model.video.image_size, cfg.model.video.num_frames, cfg.model.text_length
    train_data = folder_split(cfg.manifest, size, frames)
    eval_data = folder_split(cfg.eval_manifest, size, frames) if cfg.eval_manifest else train_data
    text = {"manifest": tokenize_texts(tokenizer, train_data["text"], length)}
    return train_data, text, eval_data, tokenize_texts(tokenizer, eval_data["text"], length)
