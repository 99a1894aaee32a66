"""MiniGPT4-Video's experiments, by the name the command line and the notebooks use (``minigpt4video-<module>``)."""

from ..engine.experiment import Experiment
from . import frame_encoder, qa, tiny_llm

EXPERIMENTS = {
    "minigpt4video-frame-encoder": Experiment(frame_encoder.FrameEncoderConfig, frame_encoder.run,
                                              "the frozen per-frame ViT it reads (the tiny stand-in for EVA-CLIP)"),
    "minigpt4video-tiny-llm": Experiment(tiny_llm.TinyLLMConfig, tiny_llm.run,
                                         "the tiny Llama learns the world's text before it is frozen"),
    "minigpt4video-qa": Experiment(qa.QAConfig, qa.run,
                                   "three stages on frames + subtitles, then video QA per question kind "
                                   "(notebook 05)", for_preset=qa.for_preset),
}
