"""MiniGPT4-Video's reported numbers that the course sets its own beside (arXiv 2404.03413), in one place."""

PAPER = {
    # Table 2: zero-shot TVQA accuracy (%), without and with subtitles
    "tvqa": {"Mistral-7B": {"without subtitles": 33.9, "with subtitles": 54.21},
             "Llama-2-7B": {"without subtitles": 36.45, "with subtitles": 46.94}},
    # Table 2: what subtitles add on visual questions (accuracy points, Llama 2)
    "subtitle gain on visual questions": {"MSR-VTT": 0.9, "ActivityNet": 0.45},
    # Table 1: Video-ChatGPT benchmark correctness (0-5, Llama 2)
    "correctness": {"without subtitles": 2.93, "with subtitles": 3.08},
}
