"""The premise of MiniGPT4-Video's stages 2 and 3, counted in the world's data before anything is trained: how much
of what a stage teaches could be read off the subtitles, without a look at the frames.

The paper's stage 2 (arXiv 2404.03413, §3.2) teaches captions of what is on screen: WebVid's alt-text, and the
Condensed Movies clips whose subtitles are dialogue, not a description of the picture. Its stage 3 asks about the
video's content (VideoInstruct-100K). In both, the answer is on screen and the subtitles do not state it, so the
frames are what the model must learn to read. Where the subtitles do state the answer, the cheaper route for a
model is to copy it from them; the share of such targets is what these counts give (the blank-frames baseline of
``qa.py``, ``blank_frames=true``, measures what a model actually learns from the text alone).
"""

from __future__ import annotations

from ..data.dataset import load_table
from .evaluation import CAPTION_FACTS


def caption_words_said(split: str = "train") -> dict[str, float]:
    """Stage 2: of each clip's caption facts (shape, colour, size, direction, speed), the share that the clip's own
    subtitle (its narrated step) says in the same word."""
    said = {fact: [] for fact in CAPTION_FACTS}
    for clip in load_table("clips", split).to_list():
        words = set(clip["utterance"].split())
        caption = set(clip["caption"].split())
        for fact, values in CAPTION_FACTS.items():
            truth = (caption & set(values)).pop()
            said[fact].append(truth in words)
    return {fact: round(sum(hits) / len(hits), 4) for fact, hits in said.items()}


def answers_said(split: str = "train") -> dict[str, float]:
    """Stage 3: per question kind, the share of questions whose answer word is said somewhere in the episode's
    subtitles (an upper bound on what the subtitles alone could answer: a shape said may be another object's)."""
    cues = {e["episode"]: set(" ".join(c["text"] for c in e["cues"]).split())
            for e in load_table("episodes", split).to_list()}
    said: dict[str, list[bool]] = {}
    for q in load_table("qa", split).to_list():
        said.setdefault(q["kind"], []).append(q["answer"] in cues[q["episode"]])
    return {kind: round(sum(hits) / len(hits), 4) for kind, hits in sorted(said.items())}
