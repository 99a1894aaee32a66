"""VideoPrism stage 1's loss: symmetric InfoNCE over the in-batch similarity matrix (arXiv 2402.13217, §2.3.1).

For L2-normalised video embeddings v_i and text embeddings t_j of a batch of B pairs, and temperature τ:

    S_ij = v_i · t_j / τ
    L    = ½ [ CE_row(S) + CE_col(S) ]
         = -1/(2B) Σ_i [ log softmax_j(S_ij)|_{j=i} + log softmax_j(S_ji)|_{j=i} ]

(video→text and text→video). The paper does not state the training temperature; here τ = exp(-s) with a learnable
s, as CLIP does. Its starting value is a choice of the experiment (see ``VideoTextConfig.init_temperature``).
Retrieval metrics are in ``eval/retrieval.py``.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ..engine.train import TrainConfig


def symmetric_infonce(video: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor,
                      keep: torch.Tensor | None = None) -> torch.Tensor:
    """video, text: (B, D) unit vectors; log_scale: scalar s with 1/τ = exp(s). Returns the scalar loss. ``keep``
    (B,) bool: the pairs that take part (a folder's video that failed to decode does not, not even as a negative);
    with none left the loss is 0, for that batch teaches nothing."""
    if keep is not None:
        if not keep.any():
            return (video.sum() + text.sum()) * 0.0  # a zero that keeps the graph, as every process's backward must
        video, text = video[keep], text[keep]
    logits = video @ text.T * log_scale.exp()  # (B, B); row i = video i against every text
    target = torch.arange(len(video), device=video.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def warn_of_micro_batch_negatives(train: TrainConfig, desc: str) -> None:
    """Say at run time what ``train.accumulate`` = K > 1 does to a contrastive loss: each micro-batch of B/K clips is
    a contrastive batch of its own, whose clips are each other's only negatives (B/K - 1 of them, not B - 1).
    GradCache (Gao et al., 2021) would keep the step's B by gathering every micro-batch's embeddings first; here the
    smaller batch is the price of the memory saved."""
    if train.accumulate > 1:
        share = train.batch_size // train.accumulate
        warnings.warn(f"{desc}: train.accumulate={train.accumulate} makes each micro-batch of {share} clips a "
                      f"contrastive batch of its own: a clip's negatives are the {share - 1} others of its "
                      f"micro-batch, not the {train.batch_size - 1} others of the step; set train.accumulate=1 (with "
                      f"train.recompute_activations=true for memory) to keep them all", stacklevel=2)
