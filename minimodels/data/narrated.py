"""The narration-only pool: what MV-GPT pretrains on, our stand-in for HowTo100M.

MV-GPT's gain is a gain from unlabelled data (arXiv 2201.08264, introduction and experiments): about 1.2M narrated
videos for pretraining against YouCook2's ~10k captioned clips for fine-tuning. Our captioned set is 240 clips (10 %
of the training split); the pool holds ``WorldSpec.narrated_episodes`` = 8,000 further episodes, 24,000 (present,
future) utterance pairs, 100 times the captioned clips. They carry what narrated video carries and nothing an
annotator writes: scene numbers (the pixels are rendered from them) and the narration. No caption, description or
question is kept.

Nothing is stored and nothing is held in memory: pair ``p`` belongs to episode ``p // (steps - 1)``, and every
episode is drawn alone from its own random stream (``"narrated-pool"``, step = episode index), so a batch of pairs
is generated when it is read, in any order, and the same on every machine.
"""

from __future__ import annotations

from .build import WorldSpec
from .episodes import make_episode
from ..engine.rng import py_rng

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
