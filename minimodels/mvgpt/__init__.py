"""MV-GPT (Seo et al., "End-to-end Generative Pretraining for Multimodal Video Captioning", CVPR 2022,
arXiv 2201.08264): fusion encoder, text decoder, the bidirectional generation loss, and the captioning experiment."""
