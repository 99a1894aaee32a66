"""Retrieval metrics over a query × item similarity matrix whose matching pairs sit on the diagonal.

R@k is the share of queries whose match ranks in the top k (in %, as the papers' tables), and the median rank the
median over queries of the match's rank (1 = best). A random ranking of Q items has R@k = 100·k/Q and a median rank
of (Q + 1) / 2.
"""

from __future__ import annotations

import torch


def ranks(similarity: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of the matching item for every query; row i's match is column i. (Q, Q) -> (Q,)."""
    correct = similarity.diagonal()[:, None]  # (Q, 1)
    return (similarity > correct).sum(dim=1) + 1


def retrieval_metrics(similarity: torch.Tensor, prefix: str) -> dict[str, float]:
    """R@1, R@5, R@10 (in %) and the median rank, for queries on the rows of ``similarity``."""
    r = ranks(similarity).float()
    out = {f"{prefix}_r{k}": round(100 * (r <= k).float().mean().item(), 2) for k in (1, 5, 10)}
    out[f"{prefix}_median_rank"] = r.median().item()
    return out


def retrieval_chance(n: int, prefix: str) -> dict[str, float]:
    """What a random ranking of ``n`` items scores, under the names ``retrieval_metrics`` uses."""
    out = {f"{prefix}_r{k}": round(100 * min(k, n) / n, 2) for k in (1, 5, 10)}  # R@k of k >= n items: all
    out[f"{prefix}_median_rank"] = (n + 1) / 2
    return out
