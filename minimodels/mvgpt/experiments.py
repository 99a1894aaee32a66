"""MV-GPT's experiments, by the name the command line and the notebooks use (``mvgpt-<module>``)."""

from ..engine.experiment import Experiment
from . import captioning, narration

EXPERIMENTS = {
    "mvgpt-captioning": Experiment(captioning.CaptioningConfig, captioning.run,
                                   "pretrain on the narration pool (none/encoder/forward/bidirectional/"
                                   "bidirectional+mlm), fine-tune captions (notebook 04)"),
    "mvgpt-narration": Experiment(narration.NarrationCheckConfig, narration.run,
                                  "premise check: how much the frames add to a text-only model of the future "
                                  "utterance on colour / size / shape words (notebook 04)"),
}
