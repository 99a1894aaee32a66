"""MV-GPT's reported numbers that the course sets its own beside (arXiv 2201.08264), in one place."""

PAPER = {
    # captioning after pretraining with the full objective and fine-tuning (paper, experiments)
    "msrvtt": {"BLEU-4": 48.9, "METEOR": 38.7, "ROUGE-L": 64.0, "CIDEr": 60.0},
    "youcook2": {"CIDEr": 2.21, "METEOR": 27.09},  # the fractional CIDEr scale of the YouCook2 tables
}
