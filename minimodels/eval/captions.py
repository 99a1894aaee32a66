"""Captioning metrics exactly as the COCO caption evaluation computes them: BLEU-4, METEOR, ROUGE-L, CIDEr(-D).

MV-GPT reports these four (arXiv 2201.08264, experiments). We do not re-implement them: ``pycocoevalcap`` is the
reference code the papers ran, and it works offline. Its pipeline, which we follow:

    captions --PTB tokenizer (lower-case, punctuation dropped)--> Bleu(4), Meteor, Rouge, Cider

Scores are reported ×100 (the convention of the MSR-VTT table; YouCook2 tables often give CIDEr unscaled, 2.21 =
221 here). The PTB tokenizer and METEOR are Java programs. Without ``java`` on the PATH the captions are tokenized
by a Python stand-in that does what PTB does to our captions (lower-case, split, drop punctuation), and METEOR is
reported as ``None`` with the reason under ``"meteor_missing"``: never a silent zero.
"""

from __future__ import annotations

import functools
import re
import shutil

PUNCTUATION = re.compile(r"[^\w\s']|''|``")


def java_available() -> bool:
    return shutil.which("java") is not None


def _ptb_tokenize(*caption_sets: dict) -> list[dict]:
    """Each {key: [captions]} tokenized, all in one run of the PTB tokenizer (a Java process starts once: about a
    second; it tokenizes line by line, so together or apart gives the same tokens)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    merged = {(i, k): [{"caption": c} for c in v] for i, captions in enumerate(caption_sets)
              for k, v in captions.items()}
    tokens = PTBTokenizer().tokenize(merged)
    return [{k: tokens[(i, k)] for k in captions} for i, captions in enumerate(caption_sets)]


def _python_tokenize(*caption_sets: dict) -> list[dict]:
    return [{k: [" ".join(PUNCTUATION.sub(" ", c.lower()).split()) for c in v] for k, v in captions.items()}
            for captions in caption_sets]


@functools.cache
def _meteor():
    """One METEOR process per Python process: its first score loads the paraphrase tables (~7 s), every later one
    takes milliseconds, so a notebook or a test file that scores several caption sets pays the start once.
    pycocoevalcap's Meteor serialises its calls with a lock and ends the Java process when the object is collected
    (here: at exit)."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def caption_scores(predictions: dict, references: dict[object, list[str]]) -> dict:
    """{clip id: generated caption}, {clip id: [reference captions]} -> {"bleu4", "meteor", "rouge_l", "cider"},
    each ×100."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(predictions) != set(references):
        raise ValueError(f"predictions and references must cover the same clips: {len(predictions)} predicted, "
                         f"{len(references)} referenced, {len(set(predictions) ^ set(references))} in only one")
    if not predictions:
        raise ValueError("no captions to score")
    if any(not refs for refs in references.values()):
        raise ValueError("every clip needs at least one reference caption")
    java = java_available()
    tokenize = _ptb_tokenize if java else _python_tokenize
    res, gts = tokenize({k: [v] for k, v in predictions.items()}, references)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {"bleu4": 100 * bleu[3], "rouge_l": 100 * Rouge().compute_score(gts, res)[0],
              "cider": 100 * Cider().compute_score(gts, res)[0], "meteor": None}
    if java:
        scores["meteor"] = 100 * _meteor().compute_score(gts, res)[0]
    else:
        scores["meteor_missing"] = "METEOR needs Java (no `java` on the PATH); the other three are computed"
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in scores.items()}
