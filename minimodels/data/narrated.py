"""The narration-only pool: what MV-GPT pretrains on, our stand-in for HowTo100M.

MV-GPT's gain is a gain from unlabelled data (arXiv 2201.08264, introduction and experiments): about 1.2M narrated
videos for pretraining against YouCook2's ~10k captioned clips for fine-tuning. Our captioned set is 240 clips (10 %
of the training split); the pool holds ``WorldSpec.narrated_episodes`` = 8,000 further episodes, 24,000 (present,
future) utterance pairs, 100 times the captioned clips. They carry what narrated video carries and nothing an
annotator writes: scene numbers (the pixels are rendered from them) and the narration. No caption, description or
question is kept.

Nothing is stored and nothing is held in memory: pair ``p`` belongs to episode ``p // (steps - 1)``, and every
episode is drawn alone from its own random stream (``"narrated-pool"``, step = episode index), so a batch of pairs
is generated when it is read, in any order, and the same on every machine. ``pool_video`` gives the present clips'
pixels the same way, drawn batch by batch (in DataLoader workers at a full preset's size).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ..engine.rng import py_rng
from .build import WorldSpec
from .dataset import StreamedVideo, loader_workers
from .episodes import make_episode
from .world import render_clip

SCENE_KEYS = ("shape", "colour", "size", "direction", "speed", "bounced", "background", "xs", "ys")


def pool_pairs(spec: WorldSpec = WorldSpec()) -> int:
    """How many (present, future) pairs the pool holds: every step of an episode that has a next step."""
    return spec.narrated_episodes * (spec.steps - 1)


def pool_episode(index: int, spec: WorldSpec = WorldSpec()) -> list[dict]:
    """Episode ``index`` of the pool: per step the scene numbers and the utterance, nothing else."""
    if not 0 <= index < spec.narrated_episodes:
        raise IndexError(f"the narrated pool has episodes 0 .. {spec.narrated_episodes - 1}, not {index}")
    rng = py_rng(spec.seed, index, "narrated-pool")
    clips = make_episode(rng, rng, rng, index, spec.steps, spec.frames)["clips"]
    return [{**{k: c[k] for k in SCENE_KEYS}, "utterance": c["utterance"]} for c in clips]


def narrated_pairs(pairs: list[int], spec: WorldSpec = WorldSpec()) -> tuple[list[dict], list[str], list[str]]:
    """Pool pairs -> (scenes of the present clips, present utterances, future utterances), in the order given."""
    per_episode = spec.steps - 1
    episodes = {e: pool_episode(e, spec) for e in {p // per_episode for p in pairs}}
    scenes, present, future = [], [], []
    for p in pairs:
        clips, step = episodes[p // per_episode], p % per_episode
        scenes.append(clips[step])
        present.append(clips[step]["utterance"])
        future.append(clips[step + 1]["utterance"])
    return scenes, present, future


IN_PROCESS_BYTES = 2**20  # a clip smaller than this is drawn faster than a worker process can hand it over


class NarratedClips(torch.utils.data.Dataset):
    """The present clip of every pool pair, drawn when asked: ``clips[p]`` -> uint8 (frames, size, size, 3)."""

    def __init__(self, size: int, frames: int, spec: WorldSpec = WorldSpec()):
        self.size, self.frames, self.spec = size, frames, spec

    def __len__(self) -> int:
        return pool_pairs(self.spec)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), self.frames, self.size, self.size, 3)

    def __getitem__(self, p: int) -> torch.Tensor:
        (scene,), _, _ = narrated_pairs([p], self.spec)
        return torch.from_numpy(render_clip(scene, self.size, frames=self.frames))


@lru_cache(maxsize=4)
def pool_video(size: int, frames: int) -> StreamedVideo:
    """The pool's present clips as the experiments index a split: ``pool_video(32, 8)[pairs]`` -> uint8
    (B, frames, size, size, 3), drawn in this process for tiny clips and in loader workers for a full preset's."""
    clips = NarratedClips(size, frames)
    small = frames * size * size * 3 < IN_PROCESS_BYTES
    return StreamedVideo(clips, workers=0 if small else loader_workers())
