"""Text utilities every paper shares: the course tokenizer, text canonicalisation, padding, and the ignore label.

- ``load_tokenizer()``: the BPE tokenizer that ``python -m minimodels data build`` trains on the world's text and
  saves in ``data_small/tokenizer`` as an ordinary transformers tokenizer folder (loaded offline).
- ``canonicalize``: ASCII punctuation to spaces, lower-case, whitespace collapsed and, for VideoPrism, a final
  period: the official ``canonicalize_text`` (``videoprism/utils.py``) with ``period=True``.
- ``tokenize``: canonicalised texts -> fixed-length ids and a keep-mask, the input of every text encoder here.
- ``IGNORE = -100``: the label of a position that takes no loss (padding, prompts); PyTorch's ``cross_entropy`` and
  transformers' models skip it. ``mean_answer_loss`` scores each row's labelled tokens alone (multiple-choice ranking).
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

from ..engine.errors import DataError
from ..engine.paths import DATA_DIR

IGNORE = -100
_PUNCTUATION_TO_SPACES = str.maketrans(string.punctuation, " " * len(string.punctuation))


def mean_answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """A causal LM's logits (B, L, V) and labels (B, L), IGNORE where no loss -> the mean next-token loss of each
    row's labelled tokens (B,): a candidate answer's score after its prompt."""
    labels = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2).float(), labels, ignore_index=IGNORE,
                                             reduction="none")
    return loss.sum(1) / (labels != IGNORE).sum(1)


def load_tokenizer(folder: str | Path | None = None):
    """The course tokenizer, or the one saved in ``folder`` (``tokenizer=`` of an experiment: a public model's, e.g.
    LvT's SentencePiece one, so that real text never meets the course's 325-token BPE); loaded offline, and only
    one that transformers' own classes read (never code from the folder)."""
    from transformers import AutoTokenizer

    given = folder is not None
    folder = Path(folder) if given else DATA_DIR / "tokenizer"
    rebuild = "give a folder written by a tokenizer's save_pretrained" if given else (
        "rebuild the data with `python -m minimodels data build`")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "spiece.model")):
        raise DataError(f"{folder} holds no tokenizer (no tokenizer.json, tokenizer_config.json or spiece.model); "
                        f"{rebuild}")
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    except ValueError as err:  # transformers refuses a tokenizer whose config asks to run code from its folder
        raise DataError(f"{folder}: the tokenizer asks to run code of its own ({str(err).splitlines()[0][:120]}); "
                        f"the course loads only tokenizers that transformers' own classes read: {rebuild}") from None


def canonicalize(text: str, period: bool = False) -> str:
    """Canonical text: "Hello,World.." -> "hello world" ("hello world." with ``period``)."""
    text = " ".join(text.translate(_PUNCTUATION_TO_SPACES).lower().split())
    return text + "." if period else text


def tokenize(tokenizer, texts: list[str], length: int, period: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonicalised texts -> ids (B, length) padded with the tokenizer's pad id, and a keep-mask (B, length)."""
    batch = tokenizer([canonicalize(t, period) for t in texts], add_special_tokens=False, truncation=True,
                      max_length=length, padding="max_length", return_tensors="pt")
    return batch["input_ids"], batch["attention_mask"].bool()


def placeholder_text(length: int, device="meta") -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, keep) of one full-length text of zeros: what a model's ``example_inputs`` feed it to count sizes."""
    ids = torch.zeros(1, length, dtype=torch.long, device=device)
    return ids, torch.ones_like(ids, dtype=torch.bool)
