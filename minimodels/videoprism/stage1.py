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
subtitles as each video's text, the videos decoded at the preset's frames and resolution in loader workers, a file
that fails while decoding left out of its batch), and evaluates on ``eval_manifest``'s videos by what they come
with: captions (or subtitles) are ranked against their videos (retrieval), class names become zero-shot classes,
each class embedded from the prompt "a video of <class>." as the public colab prompts. ``init`` starts the model
from a run folder or a public LvT (a transformers ``save_pretrained`` folder), and ``tokenizer`` reads the text
with the tokenizer saved in a folder (LvT's SentencePiece one) instead of the course's; with ``train.steps=0`` and
``eval_manifest`` alone the run only evaluates, so that zero-shot retrieval or classification of the public model
on one's own videos is one command:

    python -m minimodels run videoprism-stage1 --preset videoprism-lvt-b --set init=videoprism-lvt-b
        tokenizer=videoprism-lvt-b train.steps=0 eval_manifest=kinetics/test.csv
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch

from ..data.dataset import LoaderConfig, as_float, clip_tensors, load_table, take, usable
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
from .contrastive import symmetric_infonce, warn_of_micro_batch_negatives
from .text_encoder import text_tokenizer, tokenize_texts
from .transformers_weights import init_videoprism
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
    eval_manifest: str = ""  # the videos to evaluate on then ("": the training manifest's own); with train.steps=0
    # and no manifest, the run only evaluates
    init: str = ""  # start from these weights: a run folder, or a public LvT's save_pretrained folder
    tokenizer: str = ""  # a folder with the tokenizer to read text with ("": the course's); LvT's for public weights
    loader: LoaderConfig = field(default_factory=LoaderConfig)  # how a folder's videos are decoded

    def __post_init__(self):  # checked when the config is made, so a bad setting never starts a run
        unknown = set(self.text_sources) - set(KNOWN_SOURCES)
        if unknown or not self.text_sources:
            raise ConfigError(f"unknown text source(s) {sorted(unknown)}; choose from {KNOWN_SOURCES}")
        require(self, {"token_drop": (finite(self.token_drop) and 0 <= self.token_drop < 1,
                                      "a share in [0, 1) (0: no token dropping)")})
        if self.eval_manifest and not self.manifest and self.train.steps:
            raise ConfigError(f"eval_manifest={self.eval_manifest!r} without a manifest: give the manifest to train "
                              f"on, or train.steps=0 to evaluate alone")


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


def embed_texts(model: VideoTextModel, texts: tuple[torch.Tensor, torch.Tensor], batch_size: int = 512) -> torch.Tensor:
    """(ids, keep) (N, L) -> unit text embeddings (N, D), on the CPU."""
    device = next(model.parameters()).device
    ids, keep = texts
    with evaluating(model):
        return batched(lambda rows: model.encode_text(ids[rows].to(device), keep[rows].to(device)), len(ids),
                       batch_size)


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
    """Retrieval between held-out clips and their texts (a folder's videos that failed to decode left out), and
    zero-shot accuracy: of every attribute on the world's clips, of the classes of a labelled folder."""
    video, ok = embed_videos(model, data["video"]), usable(data["video"])  # (N, D), on the CPU; (N,)
    if "classes" in data:  # a labelled folder: its class names are the prompts, no text to rank
        classes = embed_texts(model, texts)  # (K, D)
        pred = (video[ok] @ classes.T).argmax(1)
        return {"zs_label": round((pred == data["label"][ok]).float().mean().item(), 4)}
    sim = embed_texts(model, texts)[ok] @ video[ok].T  # (N texts, N videos)
    out = {**retrieval_metrics(sim, "t2v"), **retrieval_metrics(sim.T, "v2t")}
    labelled = APPEARANCE.keys() <= data.keys()  # the world's clips; a folder's videos have no attribute labels
    for name, classes in (zero_shot_classes(model, tokenizer).items() if labelled else ()):
        pred = (video @ classes.cpu().T).argmax(1)
        out[f"zs_{name}"] = round((pred == data[name]).float().mean().item(), 4)
    return out


def chance(data: dict) -> dict[str, float]:
    """Retrieval chance (a random ranking) and zero-shot chance (always the most frequent class, as the probes), of
    the videos that decoded."""
    ok = usable(data["video"])
    if "classes" in data:
        return {"zs_label": round(majority_chance(data, ("label",))["label"], 4)}
    n = int(ok.sum())
    out = {**retrieval_chance(n, "t2v"), **retrieval_chance(n, "v2t")}
    if APPEARANCE.keys() <= data.keys():  # the world's clips, labelled: zero-shot classification too
        out.update({f"zs_{name}": round(value, 4) for name, value in majority_chance(data).items()})
    return out


def run(cfg: Stage1Config, seed: int = 0, folder: RunFolder = NO_FOLDER) -> ExperimentResult:
    seed_everything(seed)
    device = pick_device()
    tokenizer = text_tokenizer(cfg.tokenizer, cfg.model)
    from_folder = bool(cfg.manifest or cfg.eval_manifest)
    train_data, train_text, eval_data, eval_text = (folder_data if from_folder else world_data)(cfg, tokenizer)
    model = cfg.model.build()
    info = {"init": init_videoprism(model, cfg.init)} if cfg.init else {}
    model.to(device)
    tokens_per_frame = cfg.model.video.tokens_per_frame
    warn_of_micro_batch_negatives(cfg.train, "videoprism-stage1")

    sources = list(train_text)  # AGD: batch k takes its texts from sources[k % len]

    def loss_fn(model, batch, step):
        source = sources[step % len(sources)]
        ids, keep = (t[batch.idx].to(device) for t in train_text[source])
        video, decoded = take(train_data["video"], batch.idx)  # (B, T, H, W, C); a file that failed: left out
        visible = None
        if cfg.token_drop > 0:  # a stream of its own, drawn afresh each step: a resumed run drops the same tokens
            drop = rng(seed, step, "token-drop")
            visible = per_example(lambda n: tube_keep(n, tokens_per_frame, cfg.token_drop, drop), batch,
                                  len(batch)).to(device)
        v, t = model(as_float(video).to(device), ids, keep, visible=visible)
        log_scale = model.clamped_log_scale()
        loss = symmetric_infonce(gather_batch(v), gather_batch(t), log_scale,  # negatives from every process
                                 gather_batch(decoded.to(device)))
        return loss, {"temperature": log_scale.exp().reciprocal().item()}

    history = train(model, loss_fn, len(train_data["video"]), cfg.train, seed=seed, checkpoints=folder.path,
                    resume=folder.resume, log=folder.log, desc="videoprism-stage1", prefetch=(train_data["video"],),
                    eval_fn=lambda m: evaluate(m, eval_data, eval_text, tokenizer))
    metrics = {**history.final_eval, "final_loss": rounded(history.final_loss),
               "temperature": round(history.steps[-1]["temperature"] if history.steps
                                    else model.clamped_log_scale().exp().reciprocal().item(), 4)}
    if "classes" in eval_data:
        headline = ["zs_label"]
    else:
        headline = ["t2v_r1", "v2t_r1", *([] if from_folder else ["zs_shape", "zs_colour", "zs_direction"])]
    return ExperimentResult(metrics, chance(eval_data), headline=headline, history={"train": history}, info=info)


def world_data(cfg: Stage1Config, tokenizer) -> tuple[dict, dict, dict, tuple]:
    """(train clips, {source: train texts}, eval clips, eval captions) from the world, at the preset's size."""
    size, frames, length = cfg.model.video.image_size, cfg.model.video.num_frames, cfg.model.text_length
    train_data, eval_data = (clip_tensors(split, size, frames=frames) for split in ("train", cfg.eval_split))
    train_text = text_tensors(tokenizer, "train", cfg.text_sources, length)
    return train_data, train_text, eval_data, text_tensors(tokenizer, cfg.eval_split, ("caption",), length)["caption"]


def folder_data(cfg: Stage1Config, tokenizer) -> tuple[dict, dict, dict, tuple]:
    """The same from real-video manifests: each video's one text is its only source in training; the held-out
    videos come with texts to rank, or with classes (then the texts are the classes' prompts, in ``classes``
    order, and the split gains "classes" and "label")."""
    size, frames, length = cfg.model.video.image_size, cfg.model.video.num_frames, cfg.model.text_length
    split = lambda manifest: folder_split(manifest, size, frames, cfg.loader)
    train_data = split(cfg.manifest) if cfg.manifest else None
    eval_data = split(cfg.eval_manifest) if cfg.eval_manifest else train_data
    train_data = train_data or eval_data  # no manifest: the run only evaluates (train.steps=0)
    text = {"manifest": tokenize_texts(tokenizer, train_data["text"], length)}
    if eval_data["column"] != "label":
        return train_data, text, eval_data, tokenize_texts(tokenizer, eval_data["text"], length)
    classes = sorted(set(eval_data["text"]))
    eval_data = {**eval_data, "classes": classes,
                 "label": torch.tensor([classes.index(label) for label in eval_data["text"]])}
    return train_data, text, eval_data, tokenize_texts(tokenizer, [f"a video of {c}" for c in classes], length)
