"""MV-GPT's bidirectional generation loss: forward and backward generation with teacher forcing (arXiv 2201.08264,
abstract, Fig. 1 and method).

For a clip with frames F, its own (present) utterance U and the next clip's (future) utterance W:

    L_FG = - Σ_i log p(W_i | W_<i, F, U)        forward:  encoder reads (F, U), decoder starts from [BOS-F]
    L_BG = - Σ_i log p(U_i | U_<i, F, W)        backward: encoder reads (F, W), decoder starts from [BOS-B]
    L    = L_FG + L_BG                            (+ the masked-language term MLM-D: pretraining.py)

Decoder input and labels for a target text w_1..w_n (then ``</s>``), padded to ``length``:

    input:  [BOS-x] w_1 ... w_n  <pad> ...
    labels:  w_1    w_2 ... </s>  -100  ...      -100 = ignored, so padding never contributes to the loss
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn.text import IGNORE, canonicalize, tokenize

START_TOKENS = {"forward": "[BOS-F]", "backward": "[BOS-B]"}


def decoder_tensors(tokenizer, targets: list[str], start: str, length: int) -> tuple[torch.Tensor, ...]:
    """Targets -> decoder input ids (B, length), their keep-mask, and labels (B, length) with -100 on padding."""
    start_id, end_id, pad_id = (tokenizer.convert_tokens_to_ids(t) for t in (start, tokenizer.eos_token,
                                                                            tokenizer.pad_token))
    ids = torch.full((len(targets), length), pad_id, dtype=torch.long)
    labels = torch.full((len(targets), length), IGNORE, dtype=torch.long)
    for row, text in enumerate(targets):
        words = tokenizer(canonicalize(text), add_special_tokens=False)["input_ids"][: length - 1]
        n = len(words)
        ids[row, : n + 1] = torch.tensor([start_id, *words])
        labels[row, : n + 1] = torch.tensor([*words, end_id])
    return ids, ids != pad_id, labels


def generation_batches(tokenizer, present: list[str], future: list[str], text_length: int,
                       decoder_length: int) -> dict[str, dict[str, torch.Tensor]]:
    """{"forward": ..., "backward": ...}: encoder "ids"/"keep" of the text read, decoder "dec_ids"/"dec_keep" and
    "labels" of the text generated (forward reads the present and writes the future; backward the other way)."""
    batches = {}
    for direction, (source, target) in {"forward": (present, future), "backward": (future, present)}.items():
        ids, keep = tokenize(tokenizer, source, text_length)
        dec_ids, dec_keep, labels = decoder_tensors(tokenizer, target, START_TOKENS[direction], decoder_length)
        batches[direction] = {"ids": ids, "keep": keep, "dec_ids": dec_ids, "dec_keep": dec_keep, "labels": labels}
    return batches


def generation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token-level cross-entropy over the non-ignored labels: logits (B, L, V), labels (B, L)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)
