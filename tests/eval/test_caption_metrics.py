"""Captioning metrics: the COCO evaluation's numbers, and a clear report when Java (METEOR's runtime) is missing."""

import pytest

from minimodels.eval import captions
from minimodels.eval.captions import caption_scores

PREDICTIONS = {1: "a red circle moves left quickly", 2: "add two spoons of salt", 3: "stir the pot slowly"}
REFERENCES = {1: ["a red circle moves left quickly", "the red circle moves to the left"],
              2: ["add one spoon of sugar", "now add the sugar"],
              3: ["heat the oil", "stir the pot"]}

needs_java = pytest.mark.skipif(not captions.java_available(), reason="METEOR and the PTB tokenizer need Java")


def reference_scores(predictions, references):
    """The COCO caption evaluation's own pipeline, called directly: each caption set tokenized on its own, then the
    four scorers. METEOR is the one pycocoevalcap ``Meteor`` process that ``caption_scores`` keeps (its start loads
    the paraphrase tables: 7 s); called here after ``caption_scores`` has used it, so a process that scored once
    must score the same again."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in references.items()})
    res = tok.tokenize({k: [{"caption": v}] for k, v in predictions.items()})
    return {"bleu4": 100 * Bleu(4).compute_score(gts, res, verbose=0)[0][3],
            "meteor": 100 * captions._meteor().compute_score(gts, res)[0],
            "rouge_l": 100 * Rouge().compute_score(gts, res)[0], "cider": 100 * Cider().compute_score(gts, res)[0]}


@pytest.fixture(scope="module")
def java_scores():
    return caption_scores(PREDICTIONS, REFERENCES)  # each Java step starts a JVM: compute once


@needs_java
def test_scores_agree_with_pycocoevalcap(java_scores):
    ours, theirs = java_scores, reference_scores(PREDICTIONS, REFERENCES)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-3), key
    assert 0 < ours["bleu4"] < 100 and ours["cider"] > 0


def test_a_perfect_caption_set_scores_full_bleu_and_rouge(monkeypatch):
    monkeypatch.setattr(captions, "java_available", lambda: False)  # BLEU, ROUGE, CIDEr need no Java
    perfect = {k: v[0] for k, v in REFERENCES.items()}
    scores = caption_scores(perfect, REFERENCES)
    assert scores["bleu4"] == pytest.approx(100, abs=1e-3) and scores["rouge_l"] == pytest.approx(100, abs=1e-3)
    worse = caption_scores({k: "the" for k in REFERENCES}, REFERENCES)
    assert all(worse[k] < scores[k] for k in ("bleu4", "rouge_l", "cider"))


def test_without_java_meteor_is_reported_missing_not_zero(monkeypatch):
    monkeypatch.setattr(captions, "java_available", lambda: False)
    scores = caption_scores(PREDICTIONS, REFERENCES)
    assert scores["meteor"] is None and "Java" in scores["meteor_missing"]
    assert scores["bleu4"] > 0 and scores["cider"] > 0


@needs_java
def test_python_tokenizer_matches_ptb_on_course_captions(java_scores, monkeypatch):
    with_java = java_scores
    monkeypatch.setattr(captions, "java_available", lambda: False)
    without = caption_scores(PREDICTIONS, REFERENCES)
    for key in ("bleu4", "rouge_l", "cider"):
        assert without[key] == pytest.approx(with_java[key], abs=1e-3)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="same clips"):
        caption_scores({1: "a"}, {2: ["a"]})
    with pytest.raises(ValueError, match="no captions"):
        caption_scores({}, {})
    with pytest.raises(ValueError, match="at least one reference"):
        caption_scores({1: "a"}, {1: []})
