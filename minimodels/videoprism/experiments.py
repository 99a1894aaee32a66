"""VideoPrism's experiments, by the name the command line and the notebooks use (``videoprism-<module>``)."""

from ..engine.experiment import Experiment
from . import stage1, stage2, vit_probe

EXPERIMENTS = {
    "videoprism-vit-probe": Experiment(vit_probe.VitProbeConfig, vit_probe.run,
                                       "the tiny factorized ViT trained on appearance and motion probes (notebook 01)",
                                       for_preset=vit_probe.for_preset),
    "videoprism-stage1": Experiment(stage1.Stage1Config, stage1.run,
                                    "stage 1: video–text contrastive pretraining (notebook 02)"),
    "videoprism-stage2": Experiment(stage2.Stage2Config, stage2.run,
                                    "stage 2: masked distillation with token shuffling (notebook 03)",
                                    for_preset=stage2.for_preset),
}
