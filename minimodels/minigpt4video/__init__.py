"""MiniGPT4-Video (Ataallah et al., "MiniGPT4-Video: Advancing Multimodal LLMs for Video Understanding with
Interleaved Visual-Textual Tokens", arXiv 2404.03413): frame tokens merged and projected into an LLM, interleaved with
subtitles; its frozen parts and its QA experiment."""
