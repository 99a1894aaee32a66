"""VideoPrism's reported numbers that the course sets its own beside (arXiv 2402.13217), in one place: a notebook
prints a paper row from here, with the table it comes from, so that two notebooks cannot quote one result two ways.

Every probe number is VideoPrism-B with a frozen backbone and a MAP probe (accuracy, %); retrieval is R@1 (%).
SSv2 is the paper's motion benchmark, K400 its appearance benchmark.
"""

PAPER = {
    # Fig. 4, cumulative: each row adds to the one above (SSv2, K400)
    "fig4": {
        "contrastive baseline, 150M public clips": {"SSv2": 50.0, "K400": 81.7},
        "+ full data corpus (600M)": {"SSv2": 55.4, "K400": 83.8},
        "contrastive + MAE in one stage": {"SSv2": 55.9, "K400": 82.7},
        "two-stage training instead (token-wise distillation)": {"SSv2": 60.9, "K400": 81.9},
        "+ global distillation": {"SSv2": 61.8, "K400": 83.3},
        "+ token shuffling (the full recipe)": {"SSv2": 63.6, "K400": 84.2},
    },
    # Table 26: one piece out of the full recipe (K400, SSv2, AVA)
    "table26": {
        "full": {"K400": 84.2, "SSv2": 63.6, "AVA": 30.6},
        "without token shuffling": {"K400": 83.6, "SSv2": 61.8, "AVA": 29.4},
        "without global distillation": {"K400": 83.4, "SSv2": 64.2, "AVA": 29.0},
    },
    # Fig. 7: stage 1 against stage 2
    "fig7": {
        "stage 1": {"SSv2": 55.4, "K400": 83.8, "AVA": 28.4, "MSRVTT zero-shot t2v": 34.3,
                    "MSRVTT zero-shot v2t": 64.4, "K400 zero-shot": 71.0, "SSv2 zero-shot": 8.3},
        "stage 2": {"SSv2": 63.6, "K400": 84.2, "AVA": 30.6, "MSRVTT zero-shot t2v": 37.0,
                    "MSRVTT zero-shot v2t": 67.7, "K400 zero-shot": 71.3, "SSv2 zero-shot": 11.0},
    },
    # Table 24: stage 1 with joint or factorized space-time attention
    "table24": {
        "joint": {"MSRVTT zero-shot t2v": 34.2, "MSRVTT zero-shot v2t": 64.0, "K400": 84.5, "SSv2": 52.6},
        "factorized": {"MSRVTT zero-shot t2v": 34.2, "MSRVTT zero-shot v2t": 64.6, "K400": 82.9, "SSv2": 55.5},
    },
    # Tables 2-4, the final model (B)
    "final": {"K400": 84.2, "SSv2": 63.6, "MSRVTT zero-shot t2v": 51.4, "MSRVTT zero-shot v2t": 50.2,
              "K400 zero-shot": 71.3, "SSv2-Temporal zero-shot": 16.1},
}
