"""MV-GPT's experiments, by the name the command line and the notebooks use (``mvgpt-<module>``)."""

from ..engine.experiment import Experiment
from . import captioning

EXPERIMENTS = {
    "mvgpt-captioning": Experiment(captioning.CaptioningConfig, captioning.run,
                                   "pretrain on narration (none/encoder/forward/bidirectional), fine-tune captions "
                                   "(notebook 04)"),
}
