"""MV-GPT's pretraining on unlabelled narrated video, and the check that its decoder reads the frames.

The data is the narration-only pool (``data/narrated.py``): per pair, one clip's frames F, its own utterance U
(present) and the next clip's utterance W (future), drawn and rendered when a batch is read; or a folder of real
narrated video, whose transcripts give the pairs (``data/narrated_folder.py``). Objectives, as the
paper's ablation of pretraining losses (arXiv 2201.08264, experiments):

    encoder             MLM-E: 15 % of U's tokens become [MASK]; a linear head on the fused memory's text stream
                        predicts them (encoder-only pretraining, as prior work)
    forward             L_FG: (F, U) -> W from [BOS-F]                                   (bidirectional.py)
    bidirectional       L_FG + L_BG: and (F, W) -> U from [BOS-B]
    bidirectional+mlm   L_FG + L_BG + L_MLM-D, the paper's full loss, equal weights (the weights are not given)

MLM-D, our reading (the paper says only that the masked-language term is computed on the decoder's outputs rather
than the encoder's, and that this is slightly better): the encoder reads (F, masked U); the decoder reads the same
masked U — causally, no start token — and at every [MASK] its output, through the tied vocabulary projection it
generates with, names the hidden token:

    L_MLM-D = - Σ_{i masked} log p_dec(U_i | Ũ_≤i, F, Ũ)          Ũ = U with 15 % of its tokens masked

so the term trains the very layers that write captions to fill words from the frames and the context.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.build import WorldSpec
from ..data.dataset import as_float, take
from ..data.narrated import narrated_pairs, pool_pairs, pool_video
from ..data.world import APPEARANCE
from ..engine.batches import Batch, nothing_to_learn, per_example
from ..engine.history import History
from ..engine.rng import rng
from ..engine.run_log import RunLog
from ..engine.train import TrainConfig, train
from ..eval.loop import evaluating
from ..nn.text import IGNORE
from .bidirectional import generation_batches, generation_loss
from .model import MVGPTModel

OBJECTIVES = ("encoder", "forward", "bidirectional", "bidirectional+mlm")
GENERATION = {"forward": ("forward",), "bidirectional": ("forward", "backward"),
              "bidirectional+mlm": ("forward", "backward")}  # each objective's generation terms
MASKED_LM = {"encoder": "encoder", "bidirectional+mlm": "decoder"}  # where each objective's masked term is read
PRETRAIN_STEPS = 800  # batches of 32 pool pairs: 25,600 pairs, about one pass over the pool
VISUAL_WORDS = APPEARANCE  # {"shape": (...), "colour": (...), "size": (...)}: words only the frames can confirm


def mask_tokens(ids: torch.Tensor, keep: torch.Tensor, mask_id: int, prob: float, generator=None,
                batch: Batch | None = None):
    """Replace a random ``prob`` of the real tokens by [MASK]: (masked ids, labels with -100 where not masked).
    ``batch``: the training loop's share of the step, whose whole batch the draws are made for."""
    draws = per_example(lambda n: torch.rand(n, *ids.shape[1:], generator=generator), batch, len(ids))  # (B, L)
    chosen = (draws < prob) & keep.cpu()
    return ids.masked_fill(chosen.to(ids.device), mask_id), ids.masked_fill(~chosen.to(ids.device), IGNORE)


class MLMHead(nn.Module):
    """MLM-E: predicts masked utterance tokens from the text stream of the fused memory."""

    def __init__(self, width: int, vocab_size: int):
        super().__init__()
        self.norm, self.out = nn.LayerNorm(width), nn.Linear(width, vocab_size)

    def forward(self, text_stream):  # (B, L, D) -> (B, L, V)
        return self.out(self.norm(text_stream))


def masked_lm_loss(parts: nn.ModuleDict, where: str, video_tokens, ids, keep, mask_id: int, prob: float,
                   generator, batch: Batch | None = None, dropped: torch.Tensor | None = None) -> torch.Tensor:
    """The masked-language term: the encoder reads the frames and the utterance ``ids`` (B, L) with ``prob`` of its
    tokens masked; the hidden tokens are read back from the encoder's text stream (``where="encoder"``, MLM-E,
    through ``parts["mlm"]``) or from the decoder's outputs (``"decoder"``, MLM-D, through its own vocabulary
    projection: the decoder reads the masked utterance causally and output i names token i). ``dropped`` (B,)
    bool: examples that take no part (their clip failed to decode)."""
    model = parts["model"]
    masked, labels = mask_tokens(ids, keep, mask_id, prob, generator, batch)
    if dropped is not None:
        labels = labels.masked_fill(dropped[:, None].to(labels.device), IGNORE)
    memory, memory_mask = model.fuse(video_tokens, masked, keep)  # (B, T·N + L, D)
    if where == "encoder":
        logits = parts["mlm"](memory[:, -ids.shape[1]:])  # the text stream of the memory, (B, L, V)
    else:
        logits = model.decoder(masked, keep, memory, memory_mask)  # (B, L, V)
    return generation_loss(logits, labels)


def pool_batch(pairs: list[int], size: int, frames: bool = True, num_frames: int = WorldSpec().frames):
    """Pool pairs -> (clips uint8 (B, num_frames, size, size, 3), present utterances, future utterances), drawn
    batch by batch (``data/narrated.py``: the pool is never held as pixels). Without ``frames`` every clip is blank
    (background 0, nothing drawn): what a text-only model sees."""
    _, present, future = narrated_pairs(pairs)
    if not frames:  # nothing to render
        return torch.zeros(len(pairs), num_frames, size, size, 3, dtype=torch.uint8), present, future
    return pool_video(size, num_frames)[torch.tensor(pairs)], present, future


def pretrain(model: MVGPTModel, objective: str, training: TrainConfig, tokenizer, seed: int,
             mask_prob: float = 0.15, frames: bool = True, log: RunLog | None = None,
             pairs: dict | None = None) -> History:
    """Train ``model`` in place with ``objective`` (one of ``OBJECTIVES``), logged into ``log``: on the narration
    pool, or on ``pairs`` from a folder of narrated video ({"video": streamed clips, "present", "future"}:
    ``data/narrated_folder.py``; a pair whose clip fails to decode is left out of its batch)."""
    device = next(model.parameters()).device
    m = model.cfg
    parts = nn.ModuleDict({"model": model, "mlm": MLMHead(m.video.width, m.vocab_size)}).to(device)
    mask_id = tokenizer.convert_tokens_to_ids(tokenizer.mask_token)

    def read(batch):  # -> clips, present, future, the pairs left out (None: none)
        if pairs is None:
            return *pool_batch(batch.idx.tolist(), m.video.image_size, frames, m.video.num_frames), None
        video, decoded = take(pairs["video"], batch.idx)
        chosen = batch.idx.tolist()
        return (video, [pairs["present"][i] for i in chosen], [pairs["future"][i] for i in chosen],
                None if decoded.all() else ~decoded)

    def loss_fn(parts, batch, step):
        model = parts["model"]
        video, present, future, dropped = read(batch)
        if dropped is not None and dropped.all():
            return nothing_to_learn(parts), {}
        batches = generation_batches(tokenizer, present, future, m.text_length, m.decoder_length)
        video_tokens = model.video(as_float(video).to(device))  # (B, T·N, D), once for every term
        loss, logs = 0.0, {}
        if objective in MASKED_LM:
            ids, keep = (batches["forward"][k].to(device) for k in ("ids", "keep"))
            loss = masked_lm_loss(parts, MASKED_LM[objective], video_tokens, ids, keep, mask_id, mask_prob,
                                  rng(seed, step, "mlm-mask"), batch, dropped)
            logs["loss_mlm"] = loss.item()
        for direction in GENERATION.get(objective, ()):
            b = {k: v.to(device) for k, v in batches[direction].items()}
            labels = b["labels"] if dropped is None else b["labels"].masked_fill(dropped[:, None].to(device), IGNORE)
            logits = model.decoder(b["dec_ids"], b["dec_keep"], *model.fuse(video_tokens, b["ids"], b["keep"]))
            part = generation_loss(logits, labels)
            loss, logs[f"loss_{direction}"] = loss + part, part.item()
        return loss, logs

    n_pairs = pool_pairs() if pairs is None else len(pairs["video"])
    return train(parts, loss_fn, n_pairs, training, seed=seed, log=log, desc=f"pretrain {objective}",
                 prefetch=() if pairs is None else (pairs["video"],))


def narration_pairs(rows: list[dict]) -> tuple[torch.Tensor, list[str], list[str]]:
    """Clips of a stored split that have a next clip in their episode: (clip indices (P,), present utterances,
    future utterances). Held-out narration for ``visual_word_accuracy``."""
    by_step = {(r["episode"], r["step"]): r["utterance"] for r in rows}
    index, present, future = [], [], []
    for i, r in enumerate(rows):
        nxt = by_step.get((r["episode"], r["step"] + 1))
        if nxt is not None:
            index.append(i), present.append(r["utterance"]), future.append(nxt)
    return torch.tensor(index), present, future


def visual_word_accuracy(model: MVGPTModel, tokenizer, rows: list[dict], video: torch.Tensor,
                         directions=("forward", "backward")) -> dict[str, float]:
    """Does the decoder read the frames? At every colour, size and shape word of a held-out target utterance
    (teacher forcing), the fraction where the right word outranks the other words of its kind (chance: 1/6, 1/2,
    1/5). -> {"word_acc_<direction>_<fact>": ...}. Many of these words describe the clip on screen; a decoder that
    only reads text can guess them from the names and remarks it was given, not see them.
    """
    device = next(model.parameters()).device
    m = model.cfg
    clip_index, present, future = narration_pairs(rows)
    batches = generation_batches(tokenizer, present, future, m.text_length, m.decoder_length)
    word_ids = {fact: torch.tensor([tokenizer.encode(w, add_special_tokens=False)[0] for w in words], device=device)
                for fact, words in VISUAL_WORDS.items()}
    out = {}
    with evaluating(model):
        video_tokens = model.video(as_float(video[clip_index]).to(device))  # (P, T·N, D), once for both directions
        for direction in directions:
            b = {k: v.to(device) for k, v in batches[direction].items()}
            logits = model.decoder(b["dec_ids"], b["dec_keep"], *model.fuse(video_tokens, b["ids"], b["keep"]))
            for fact, ids in word_ids.items():
                at = torch.isin(b["labels"], ids)  # (P, L): the positions whose label is a word of this fact
                guess = ids[logits[at][:, ids].argmax(-1)]
                out[f"word_acc_{direction}_{fact}"] = round((guess == b["labels"][at]).float().mean().item(), 4)
    return out


def word_chance(directions=("forward", "backward")) -> dict[str, float]:
    """Chance of ``visual_word_accuracy``: one over the number of words of each kind."""
    return {f"word_acc_{d}_{fact}": round(1 / len(words), 4)
            for d in directions for fact, words in VISUAL_WORDS.items()}
