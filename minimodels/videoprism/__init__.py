"""VideoPrism (Zhao et al., "VideoPrism: A Foundational Visual Encoder for Video Understanding", ICML 2024,
arXiv 2402.13217): the video–text model of stage 1, the masked distillation of stage 2, and their experiments."""
