"""``python -m minimodels data build``: regenerate ``data_small/`` from the world's seed.

What it writes (all deterministic: a test rebuilds into a temporary folder and compares, ``differing_files``):
- ``clips/{split}.jsonl``    one row per clip: scene numbers, labels, caption, description, alt-text, utterance, times
- ``episodes/{split}.jsonl`` one row per episode: ingredients and the subtitle cues
- ``qa/{split}.jsonl``       one row per question: kind, question, 5 options, answer
- ``tokenizer/``             a BPE tokenizer trained here with `tokenizers`, saved for ``AutoTokenizer``
- ``videos/``                a few test episodes as real .mp4 files with .vtt subtitles, to exercise the loader
Two folders are not written here and are left alone: the hand-picked real video in ``real/``, and the trained
models in ``checkpoints/`` (only each run's model.safetensors and config.json ship), made by
- ``python -m minimodels run videoprism-stage1 --seed N --out data_small/checkpoints/videoprism-stage1/seedN``: the
  stage-1 teachers that notebook 03 distils from (N = 0, 1, 2);
- ``python -m minimodels run minigpt4video-frame-encoder --out data_small/checkpoints/minigpt4video-frame-encoder``
  and ``python -m minimodels run minigpt4video-tiny-llm --out data_small/checkpoints/minigpt4video-tiny-llm``:
  MiniGPT4-Video's frozen parts.

Splits are separate random streams of whole episodes (stream "world", one step per split, and "narration" for the
words narrators say), so no clip, utterance or question crosses a split. A fourth, much larger split is never written:
the narration-only pool MV-GPT pretrains on (``narrated.py``), drawn episode by episode when it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.paths import DATA_DIR, writable
from ..engine.rng import py_rng
from .episodes import make_episode
from .video_io import decode_frames, write_video
from .world import render_clip

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "[MASK]", "[CLS]", "[BOS-F]", "[BOS-B]"]
# Marker strings of the MiniGPT4-Video prompt: plain text for the tokenizer, as in the official code.
PROMPT_TEXT = "[INST] <Img> <ImageHere> <Cap> [/INST] option 0: 1: 2: 3: 4: choose one suitable answer"
# The vocabulary is fixed, as an LLM's is: words that came into the world later (the many-frame questions' "times",
# "last") are split by its merges ("▁t i m es"), as Llama's tokenizer splits a word it never saw whole. Training it
# again on them would renumber every token under the shipped text encoders (VideoPrism's stage-1 teachers).
TOKENIZER_QUESTION_KINDS = ("frames", "subtitles", "both")


@dataclass(frozen=True)
class WorldSpec:
    seed: int = 0
    episodes: tuple = (("train", 600), ("val", 100), ("test", 100))
    steps: int = 4  # clips per episode
    frames: int = 8  # frames per clip
    vocab_size: int = 512
    video_episodes: int = 3  # test episodes written as .mp4
    video_size: int = 64
    narrated_episodes: int = 8000  # the narration-only pool (narrated.py): 24,000 pairs, 100x the captioned clips


def generate(spec: WorldSpec = WorldSpec()) -> dict[str, dict[str, list]]:
    """All rows of every split, as plain Python objects: {split: {"clips"|"episodes"|"qa": [rows]}}."""
    out, next_id = {}, 0
    for index, (split, count) in enumerate(spec.episodes):
        rng, voice = py_rng(spec.seed, index, "world"), py_rng(spec.seed, index, "narration")
        asker = py_rng(spec.seed, index, "questions")
        rows = {"clips": [], "episodes": [], "qa": []}
        for _ in range(count):
            ep = make_episode(rng, voice, asker, next_id, spec.steps, spec.frames)
            next_id += 1
            rows["clips"] += ep["clips"]
            rows["episodes"].append(ep["episode"])
            rows["qa"] += ep["qa"]
        out[split] = rows
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")


def corpus(data: dict) -> list[str]:
    """The texts the tokenizer is trained on: every clip's, and the questions of ``TOKENIZER_QUESTION_KINDS``."""
    texts = [PROMPT_TEXT]
    for rows in data.values():
        for clip in rows["clips"]:
            texts += [clip["caption"], clip["description"], clip["alt_text"], clip["utterance"]]
        for q in rows["qa"]:
            if q["kind"] in TOKENIZER_QUESTION_KINDS:
                texts += [q["question"], " ".join(q["options"])]
    return texts


def train_tokenizer(texts: list[str], vocab_size: int, out_dir: Path) -> None:
    """A SentencePiece-style BPE (Metaspace marks word starts), saved as a transformers tokenizer folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        mask_token="[MASK]", cls_token="[CLS]", additional_special_tokens=["[BOS-F]", "[BOS-B]"],
    )
    fast.save_pretrained(str(out_dir))


def to_vtt(cues: list[dict]) -> str:
    def stamp(t):
        return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}"

    blocks = [f"{stamp(c['start'])} --> {stamp(c['end'])}\n{c['text']}" for c in cues]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


def write_episode_videos(data: dict, spec: WorldSpec, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for episode in data["test"]["episodes"][: spec.video_episodes]:
        clips = [c for c in data["test"]["clips"] if c["episode"] == episode["episode"]]
        frames = np.concatenate([render_clip(c, spec.video_size) for c in clips])  # (steps·T, S, S, 3)
        stem = out_dir / f"episode_{episode['episode']:04d}"
        write_video(stem.with_suffix(".mp4"), frames, fps=episode["fps"])
        stem.with_suffix(".vtt").write_text(to_vtt(episode["cues"]))


def build(out: Path = DATA_DIR, spec: WorldSpec = WorldSpec()) -> Path:
    out = Path(out)
    writable(out, "data build --out")  # before a minute of generating, not after
    data = generate(spec)
    for split, rows in data.items():
        for kind, table in rows.items():
            _write_jsonl(out / kind / f"{split}.jsonl", table)
    train_tokenizer(corpus(data), spec.vocab_size, out / "tokenizer")
    write_episode_videos(data, spec, out / "videos")
    (out / "world.json").write_text(json.dumps(spec.__dict__, sort_keys=True, indent=2) + "\n")
    return out


def built_files(folder: Path) -> dict[str, Path]:
    """The files ``build`` writes under ``folder``, by relative path (``real/`` and ``checkpoints/`` left out)."""
    files = {p.relative_to(folder): p for p in sorted(Path(folder).rglob("*")) if p.is_file()}
    return {str(name): p for name, p in files.items() if name.parts[0] not in ("real", "checkpoints")}


def differing_files(first: Path, second: Path) -> list[str]:
    """The built files that differ between two folders (say a fresh build and ``data_small/``), or that only one
    holds. Byte for byte, except the .mp4 videos: x264 has been seen to change a few container bytes (an mdat size)
    between builds on some machines, so for them what the course reads is compared, the decoded frames, within one
    grey level."""
    a, b = built_files(first), built_files(second)
    return sorted(name for name in a.keys() | b.keys() if name not in a or name not in b or not _same(a[name], b[name]))


def _same(first: Path, second: Path) -> bool:
    if first.suffix != ".mp4":
        return first.read_bytes() == second.read_bytes()
    x, y = decode_frames(first).astype(int), decode_frames(second).astype(int)
    return x.shape == y.shape and np.abs(x - y).max() <= 1
