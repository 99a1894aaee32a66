"""MiniGPT4-Video's interleaved prompt, its splice of visual embeddings and its loss mask (arXiv 2404.03413, §3.2;
official ``minigpt4/datasets/datasets/video_datasets.py`` and ``minigpt4/models/mini_gpt4_llama_v2.py``).

The prompt strings come from ``wording.py``. The string is split on ``<ImageHere>``; every text piece is tokenised
without special tokens and embedded; frame i's K projected visual embeddings go where the i-th ``<ImageHere>`` was;
a BOS embedding is put in front of everything. Labels are -100 everywhere except on the answer tokens and its
``</s>``:

    positions  [BOS] [INST] <Img> v_1..v_K <Cap> sub_1 ... \\n instruction [/INST] answer </s>
    labels     -100  -100  ...              -100                              -100  answer </s>

At evaluation the first piece, which starts with the template's "<s>", is tokenised the same way: the input then
starts with two BOS (the added one, and "<s>" read as BOS), as in the official evaluation.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import torch
from torch import nn

from ..nn.text import IGNORE
from .wording import CAP, IMAGE, IMG, IMG_END

KINDS = ("bos", "prompt", "visual", "subtitle", "instruction", "answer")  # what each position holds, for plots


@dataclass
class AssembledPrompt:
    embeds: torch.Tensor  # (L, D) what the LLM reads
    labels: torch.Tensor  # (L,) the answer's token ids, -100 elsewhere
    kinds: list[str]  # (L,) one of KINDS per position


def _char_kinds(prompt: str) -> list[str]:
    """Per character of the prompt: subtitle text, the instruction, or prompt markup."""
    kinds = ["prompt"] * len(prompt)
    for match in re.finditer(rf"{re.escape(CAP)}(.*?)(?={re.escape(IMG)}|\n)", prompt, flags=re.S):
        kinds[match.start(1):match.end(1)] = ["subtitle"] * len(match.group(1))
    end = prompt.rindex("[/INST]")
    last = prompt.rfind(IMG, 0, end)  # the instruction follows the last frame's "\n", or the one image's "</Img>"
    closed = prompt.find(IMG_END, last, end)
    start = prompt.find("\n", last) + 1 if closed < 0 else closed + len(IMG_END)
    kinds[start:end] = ["instruction"] * (end - start)
    return kinds


@functools.lru_cache(maxsize=8192)
def _text_side(tokenizer, prompt: str, answer: str | None) -> tuple[tuple, tuple, tuple[int, ...]]:
    """The part of ``assemble`` that depends on the text alone: each piece's token ids and kinds (a tuple per
    piece), and the answer's ids with its </s>. Training draws the same few hundred prompts again and again, so each
    is tokenised once."""
    char_kinds, offset, ids, kinds = _char_kinds(prompt), 0, [], []
    for piece in prompt.split(IMAGE):
        encoded = tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
        ids.append(tuple(encoded["input_ids"]))
        kinds.append(tuple(char_kinds[offset + end - 1] for _, end in encoded["offset_mapping"]))  # by its last char
        offset += len(piece) + len(IMAGE)
    answer_ids = () if answer is None else (*tokenizer(answer, add_special_tokens=False)["input_ids"],
                                            tokenizer.eos_token_id)
    return tuple(ids), tuple(kinds), answer_ids


def assemble(tokenizer, embed: nn.Embedding, prompt: str, frames: torch.Tensor, answer: str | None,
             context_length: int) -> AssembledPrompt:
    """Prompt string + frames (N, K, D) of projected visual embeddings [+ answer] -> one LLM input sequence."""
    placeholders = prompt.count(IMAGE)
    if placeholders != len(frames):
        raise ValueError(f"the prompt has {placeholders} {IMAGE} placeholders for {len(frames)} frames")
    N, K, _ = frames.shape
    if 1 + N * K > context_length:
        raise ValueError(f"{N} frames x {K} visual tokens = {N * K} positions (+1 BOS) exceed the LLM context of "
                         f"{context_length}; at most {(context_length - 1) // K} frames fit")
    piece_ids, piece_kinds, answer_ids = _text_side(tokenizer, prompt, answer)
    device = embed.weight.device
    parts, kinds = [embed(torch.tensor([tokenizer.bos_token_id], device=device))], ["bos"]
    for i, (ids, text_kinds) in enumerate(zip(piece_ids, piece_kinds)):
        parts.append(embed(torch.tensor(ids, dtype=torch.long, device=device)))
        kinds += text_kinds
        if i < N:
            parts.append(frames[i])
            kinds += ["visual"] * K
    parts.append(embed(torch.tensor(answer_ids, dtype=torch.long, device=device)))
    kinds += ["answer"] * len(answer_ids)
    if len(kinds) > context_length:
        text = len(kinds) - 1 - N * K - len(answer_ids)
        raise ValueError(f"the prompt takes {len(kinds)} positions (1 BOS, {N * K} visual, {text} text, "
                         f"{len(answer_ids)} answer) but the LLM context is {context_length}")
    labels = torch.full((len(kinds),), IGNORE, dtype=torch.long)
    if answer_ids:
        labels[-len(answer_ids):] = torch.tensor(answer_ids)
    return AssembledPrompt(torch.cat(parts), labels.to(device), kinds)


def collate(prompts: list[AssembledPrompt], left: bool = False) -> dict[str, torch.Tensor]:
    """Pad a batch: inputs_embeds (B, L, D), attention_mask (B, L), labels (B, L) with -100 on padding. Right padding
    for training and scoring; ``left`` for generation, so that every row's next token follows its last position."""
    length = max(len(p.labels) for p in prompts)
    first = prompts[0].embeds
    embeds = first.new_zeros(len(prompts), length, first.shape[-1])
    mask = torch.zeros(len(prompts), length, dtype=torch.long, device=first.device)
    labels = torch.full((len(prompts), length), IGNORE, dtype=torch.long, device=first.device)
    for row, p in enumerate(prompts):
        n = len(p.labels)
        where = slice(length - n, length) if left else slice(0, n)
        embeds[row, where], mask[row, where], labels[row, where] = p.embeds, 1, p.labels
    return {"inputs_embeds": embeds, "attention_mask": mask, "labels": labels}
