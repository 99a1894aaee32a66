"""minimodels: VideoPrism, MV-GPT and MiniGPT4-Video rebuilt from scratch in small PyTorch modules.

The package is layered; a test (``tests/test_layout.py``) reads every import and enforces it:

    shared building blocks   engine/   config, seeded random streams, the training loop, results, sweeps, sizes
                             nn/       attention, feed-forward, MAP pooler, masks, the factorized video ViT,
                                       decoding, text utilities
                             data/     the synthetic world, its files, video and subtitle files
                             eval/     the evaluation loop, attribute probes, retrieval and caption metrics
    one package per paper    videoprism/  mvgpt/  minigpt4video/
                             each holds its models, its experiments (experiment ``<paper>-<name>`` is
                             ``<paper>/<name>.py``), its presets; it imports the shared packages, never another paper
    the course               catalog.py (every preset and experiment by name), cli.py (``python -m minimodels``),
                             assignments.py (the exercises as nbgrader assignments: build, grade a class) and
                             exercise_checks.py (the grade cells' referee)
"""
