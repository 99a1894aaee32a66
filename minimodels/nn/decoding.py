"""Decoding captions from a text decoder: greedy search and beam search, with a maximum length and an end token.

Both work with any ``decoder(ids, keep, memory, memory_mask) -> logits (B, L, V)`` (``text_decoder.TextDecoder``).
A hypothesis y scores log p(y | memory) = Σ_t log p(y_t | y_<t, memory), divided by |y|^α (α = 0: no length
normalisation, so beam 1 is exactly greedy). Decoding stops at the end token or after ``max_len`` new tokens.
The model is re-run on the whole prefix every step: no key/value cache, which keeps it short to read.
"""

from __future__ import annotations

import torch


def _next_log_probs(decoder, prefixes: torch.Tensor, memory, memory_mask) -> torch.Tensor:
    """prefixes (K, t) -> log p(next token) (K, V), the K prefixes sharing one example's memory (1, L_m, D)."""
    K = len(prefixes)
    logits = decoder(prefixes, torch.ones_like(prefixes, dtype=torch.bool), memory.expand(K, -1, -1),
                     memory_mask.expand(K, -1))
    return logits[:, -1].float().log_softmax(-1)


@torch.no_grad()
def greedy_decode(decoder, memory, memory_mask, start_id: int, end_id: int, max_len: int) -> list[list[int]]:
    """memory (B, L_m, D) -> for each example the generated token ids (start and end tokens left out)."""
    B = len(memory)
    ids = torch.full((B, 1), start_id, dtype=torch.long, device=memory.device)
    done = torch.zeros(B, dtype=torch.bool, device=memory.device)
    for _ in range(max_len):
        logits = decoder(ids, torch.ones_like(ids, dtype=torch.bool), memory, memory_mask)[:, -1]
        token = logits.argmax(-1).masked_fill(done, end_id)  # finished rows keep emitting the end token
        ids = torch.cat([ids, token[:, None]], dim=1)
        done |= token == end_id
        if done.all():
            break
    return [_strip(row[1:].tolist(), end_id) for row in ids]


@torch.no_grad()
def beam_search(decoder, memory, memory_mask, start_id: int, end_id: int, max_len: int, beam: int = 3,
                length_alpha: float = 0.0) -> list[list[int]]:
    """The highest-scoring hypothesis per example among ``beam`` kept at every step."""
    if beam < 1:
        raise ValueError(f"beam must be at least 1, got {beam}")
    return [_beam_one(decoder, memory[i:i + 1], memory_mask[i:i + 1], start_id, end_id, max_len, beam, length_alpha)
            for i in range(len(memory))]


def _beam_one(decoder, memory, memory_mask, start_id, end_id, max_len, beam, alpha) -> list[int]:
    alive = [(0.0, [start_id])]  # (sum of log-probs, tokens)
    finished = []  # (normalised score, tokens without start/end)
    normalise = lambda score, n: score / max(n, 1) ** alpha
    for _ in range(max_len):
        prefixes = torch.tensor([tokens for _, tokens in alive], device=memory.device)  # (K, t)
        log_probs = _next_log_probs(decoder, prefixes, memory, memory_mask)  # (K, V)
        top = log_probs.topk(beam, dim=-1)  # the best `beam` continuations of every alive hypothesis
        candidates = sorted(((score + lp, tokens + [tok]) for (score, tokens), lps, toks in
                             zip(alive, top.values.tolist(), top.indices.tolist()) for lp, tok in zip(lps, toks)),
                            key=lambda c: c[0], reverse=True)[:beam]
        alive = []
        for score, tokens in candidates:
            if tokens[-1] == end_id:
                finished.append((normalise(score, len(tokens) - 1), tokens[1:-1]))
            else:
                alive.append((score, tokens))
        best_alive = max((normalise(s, len(t) - 1) for s, t in alive), default=float("-inf"))
        if not alive or (len(finished) >= beam and max(f[0] for f in finished) >= best_alive and alpha == 0):
            break  # with α = 0 scores only fall as hypotheses grow, so no alive one can overtake
    finished += [(normalise(s, len(t) - 1), t[1:]) for s, t in alive]  # hypotheses cut at max_len
    return max(finished, key=lambda f: f[0])[1]


def _strip(tokens: list[int], end_id: int) -> list[int]:
    return tokens[: tokens.index(end_id)] if end_id in tokens else tokens
