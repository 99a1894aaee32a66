"""Every random stream of the course comes from one function: ``rng(seed, step, stream)``.

A run has one integer ``seed``. Its randomness is split into named *streams* (the batches the loop draws, the tokens
stage 1 drops, the masks of stage 2, ...), and a stream may be drawn afresh at every training ``step``. The three
are hashed together (SHA-256 of ``"stream/seed/step"``, cut to 63 bits):

    generator = torch.Generator().manual_seed( H(stream, seed, step) )

so that
- a draw depends on (seed, step, stream) alone: a resumed run replays the same batches and masks;
- two different keys never share a generator: no ``seed·K + step`` arithmetic in which seed 1 at step 0 equals
  seed 0 at step 1, and no two streams (batches and token dropping, say) that move in lock-step;
- adding a stream leaves the others untouched.

``py_rng`` gives a Python ``random.Random`` on the same key (for text and scene generation), and
``seed_everything`` seeds the global generators (weight initialisation, dropout) from the stream ``"global"``.
``STREAMS`` lists the stream names the library and the notebooks use; an unknown name is refused, so a typo cannot
silently open a new stream.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch

STREAMS = {
    "global": "the global generators: weight initialisation, dropout (seed_everything)",
    "batches": "which examples the training loop draws at each step",
    "world": "the synthetic world's scenes and texts, one stream per split (step = split index)",
    "narration": "the words narrators say in the world's splits (step = split index), drawn apart from the scenes",
    "questions": "the many-frame questions of the world's splits (step = split index), drawn apart from the rest",
    "narrated-pool": "the narration-only episodes MV-GPT pretrains on (step = episode index: any one is drawn alone)",
    "token-drop": "VideoPrism stage 1's tube token dropping",
    "stage2-mask": "VideoPrism stage 2's masks and token shuffles",
    "stage2-premise": "the masks of stage 2's premise check (masked_targets.py)",
    "stage2-jigsaw": "VideoPrism stage 2's masks and shuffles for the token-wise loss on the test clips",
    "mlm-mask": "MV-GPT's masked-language-modelling positions",
    "labelled-subset": "which training clips have captions in MV-GPT's fine-tuning",
    "prompt-subtitles": "which of MiniGPT4-Video's training prompts carry their subtitles",
    "frame-pick": "which frame of a clip the frame encoder sees",
    "question-format": "open-ended or multiple choice for each MiniGPT4-Video training question",
    "llm-text": "the freshly generated episodes the tiny LLM reads",
    "readout": "the batches of MiniGPT4-Video's linear read-out of projected frame tokens",
    "notebook": "draws a notebook makes to illustrate a mechanism (example masks, inputs, permutations)",
}


def stream_seed(seed: int, step: int = 0, stream: str = "batches") -> int:
    """The 63-bit seed of (seed, step, stream); seed and step are non-negative integers."""
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; the course's streams are: {', '.join(STREAMS)}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (seed, step)):
        raise ValueError(f"seed and step must be non-negative integers, got seed={seed!r}, step={step!r}")
    digest = hashlib.sha256(f"{stream}/{seed}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def rng(seed: int, step: int = 0, stream: str = "batches") -> torch.Generator:
    """A fresh CPU ``torch.Generator`` for (seed, step, stream)."""
    return torch.Generator().manual_seed(stream_seed(seed, step, stream))


def py_rng(seed: int, step: int = 0, stream: str = "batches") -> random.Random:
    """A fresh Python ``random.Random`` for (seed, step, stream)."""
    return random.Random(stream_seed(seed, step, stream))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (what initialises weights) from stream "global"."""
    value = stream_seed(seed, 0, "global")
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)
