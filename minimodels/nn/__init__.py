"""Shared building blocks of the models: attention, feed-forward, MAP pooling, masks, the factorized video ViT,
decoding, and text utilities."""
