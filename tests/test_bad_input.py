"""Bad input stops before any work, with an error that names the input, the problem and the fix (issue 17, part 1).

Each case asserts the error's type, that its message names the culprit, and, where a run was started, that nothing
was written. Training that goes numerically wrong stops at once instead of writing NaN into the results.
"""

import json
import math
import os
from dataclasses import dataclass, field

import pytest
import torch

from minimodels.catalog import make_config
from minimodels.cli import main
from minimodels.data.video_io import load_video
from minimodels.engine.errors import ConfigError, DataError, TrainingError
from minimodels.engine.experiment import Experiment, execute
from minimodels.engine.paths import DATA_DIR
from minimodels.engine.results import ExperimentResult
from minimodels.engine.train import TrainConfig, train


@pytest.mark.parametrize("key, value, named", [
    ("train.steps", "-1", "train.steps=-1: must be a whole number >= 0"),
    ("train.batch_size", "0", "train.batch_size=0: must be a whole number >= 1"),
    ("train.lr", "inf", "train.lr=inf: must be a finite number > 0"),
    ("train.lr", "0", "train.lr=0.0: must be a finite number > 0"),
    ("train.warmup", "-5", "train.warmup=-5"),
    ("train.grad_clip", "-1", "train.grad_clip=-1.0"),
    ("train.min_lr", "nan", "train.min_lr"),
    ("train.accumulate", "3", "train.accumulate=3: must be a whole number >= 1 that divides batch_size=64"),
])
def test_training_settings_are_checked_when_the_config_is_made(key, value, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace("+", r"\+")):
        make_config("minigpt4video-frame-encoder", sets={key: value})


def test_a_nested_stage_names_its_own_key():
    with pytest.raises(ConfigError, match=r"qa_stage\.batch_size=0"):
        make_config("minigpt4video-qa", sets={"qa_stage.batch_size": "0"})


class Line(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))


def test_a_batch_larger_than_the_data_is_refused_before_training():
    model = Line()
    with pytest.raises(ConfigError, match=r"batch_size=11 \(toy\) is larger than the 10 training examples"):
        train(model, lambda m, batch, step: (m.w.sum(), {}), 10, TrainConfig(steps=3, batch_size=11, progress=False),
              desc="toy")
    assert torch.equal(model.w, torch.ones(1))  # not a single step was taken


def test_a_non_finite_loss_stops_training_at_its_step():
    model = Line()

    def loss_fn(m, batch, step):  # finite for two steps, then the loss blows up
        return (m.w * (float("nan") if step == 2 else 1.0)).sum(), {}

    with pytest.raises(TrainingError, match=r"toy: the loss became nan at step 3 \(the last finite loss was .* at "
                                            r"step 2\); lower the learning rate"):
        train(model, loss_fn, 4, TrainConfig(steps=5, batch_size=2, warmup=1, progress=False), desc="toy")
    assert torch.isfinite(model.w).all()  # the NaN step never reached the weights


def test_a_non_finite_loss_in_another_process_stops_this_one_too(monkeypatch):
    from minimodels.engine import distributed

    monkeypatch.setattr(distributed, "any_rank", lambda flag: True)  # as if another rank's share gave NaN
    model = Line()
    with pytest.raises(TrainingError, match=r"toy: the loss became non-finite in another process at step 1"):
        train(model, lambda m, batch, step: (m.w.sum(), {}), 4, TrainConfig(steps=3, batch_size=2, progress=False),
              desc="toy")
    assert torch.equal(model.w, torch.ones(1))  # this process's (finite) step was not taken either


def test_zero_steps_trains_nothing_and_reports_no_final_loss():
    model = Line()
    history = train(model, lambda m, batch, step: (m.w.sum(), {}), 4, TrainConfig(steps=0, batch_size=2,
                                                                                progress=False))
    assert history.steps == [] and history.final_loss is None and torch.equal(model.w, torch.ones(1))


@dataclass
class ToyConfig:
    value: float = 1.0
    calls: list = field(default_factory=list)


def toy_experiment(metric=0.5):
    def run(cfg, seed=0, folder=None):
        cfg.calls.append(folder.path)
        assert (folder.path / "config.json").is_file()  # the folder and its config exist before the work starts
        return ExperimentResult({"acc": metric}, {"acc": 0.2}, ["acc"])
    return Experiment(ToyConfig, run, "a toy")


def test_an_out_path_that_is_a_file_stops_before_the_run(tmp_path):
    cfg, path = ToyConfig(), tmp_path / "a-file"
    path.write_text("mine")
    with pytest.raises(ConfigError, match=f"--out {path}: is a file, not a folder"):
        execute("toy", toy_experiment(), cfg, out_dir=path)
    assert cfg.calls == [] and path.read_text() == "mine"


def test_an_earlier_run_is_never_overwritten_without_force(tmp_path):
    first = execute("toy", toy_experiment(0.5), ToyConfig(), out_dir=tmp_path / "run")
    before = (tmp_path / "run" / "result.json").read_text()
    cfg = ToyConfig()
    earlier = r"holds an earlier run \(config\.json, result\.json, metrics\.jsonl\).*--force"
    with pytest.raises(ConfigError, match=earlier):
        execute("toy", toy_experiment(0.9), cfg, out_dir=tmp_path / "run")
    assert cfg.calls == [] and (tmp_path / "run" / "result.json").read_text() == before
    again = execute("toy", toy_experiment(0.9), ToyConfig(), out_dir=tmp_path / "run", force=True)
    assert first.metrics["acc"] == 0.5 and again.metrics["acc"] == 0.9
    assert json.loads((tmp_path / "run" / "result.json").read_text())["metrics"]["acc"] == 0.9


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_that_cannot_be_written_stops_before_the_run(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    cfg = ToyConfig()
    try:
        with pytest.raises(ConfigError, match="cannot write there"):
            execute("toy", toy_experiment(), cfg, out_dir=locked / "run")
    finally:
        locked.chmod(0o700)
    assert cfg.calls == []


def test_a_non_finite_metric_is_never_written(tmp_path):
    with pytest.raises(DataError, match=r"toy: metrics \['acc'\] are not finite numbers"):
        execute("toy", toy_experiment(math.nan), ToyConfig(), out_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "result.json").exists()


def test_the_command_line_refuses_an_earlier_run_folder(tmp_path, capsys):
    (tmp_path / "result.json").write_text("{}")
    assert main(["run", "minigpt4video-frame-encoder", "--out", str(tmp_path), "--set", "train.steps=1"]) == 2
    assert "holds an earlier run (result.json)" in capsys.readouterr().err
    assert (tmp_path / "result.json").read_text() == "{}" and not (tmp_path / "config.json").exists()


@pytest.mark.parametrize("frames", ["0", "-3"])
def test_info_refuses_a_clip_without_frames(frames, capsys):
    assert main(["info", "videoprism-tiny", "--frames", frames]) == 2
    assert f"--frames {frames}: a clip needs at least 1 frame" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs", [{"num_frames": 0}, {"size": 0}])
def test_load_video_refuses_an_empty_request(kwargs):
    path = DATA_DIR / "videos" / "episode_0700.mp4"
    with pytest.raises(ConfigError, match=f"{list(kwargs)[0]}=0"):
        load_video(path, **kwargs)


def test_a_damaged_checkpoint_names_its_file(tmp_path):
    from safetensors.torch import save_file

    from minimodels.engine.checkpoint import load_weights
    from minimodels.engine.errors import CheckpointError

    cut = tmp_path / "cut.safetensors"
    save_file({"w": torch.ones(1000)}, str(cut))
    cut.write_bytes(cut.read_bytes()[:-100])  # truncated, as an interrupted copy leaves it
    with pytest.raises(CheckpointError, match=f"{cut}: not a readable safetensors file"):
        load_weights(Line(), cut)
    poisoned = tmp_path / "nan.safetensors"
    save_file({"w": torch.tensor([float("nan")])}, str(poisoned))
    model = Line()
    with pytest.raises(CheckpointError, match=f"{poisoned}: 1 tensors hold NaN or inf \\(first: w\\)"):
        load_weights(model, poisoned)
    assert torch.equal(model.w, torch.ones(1))  # nothing was loaded
    older = tmp_path / "older.safetensors"
    save_file({"w": torch.ones(1), "gone": torch.ones(1)}, str(older))
    with pytest.raises(CheckpointError, match=f"{older} does not fit this model \\(0 tensors missing, 1 unknown, e.g. "
                                              f"gone\\).*train it again"):
        load_weights(model, older)


def test_a_missing_tokenizer_names_the_rebuild(tmp_path, monkeypatch):
    from minimodels.nn import text

    monkeypatch.setattr(text, "DATA_DIR", tmp_path)
    with pytest.raises(DataError, match=f"{tmp_path / 'tokenizer'} holds no tokenizer .*data build"):
        text.load_tokenizer()


@pytest.mark.parametrize("content, named", [("{not json", "not valid JSON"),
                                            ('{"runs": []}', "not a sweep file \\(missing command, summary")])
def test_a_broken_results_file_names_itself(tmp_path, monkeypatch, content, named):
    from minimodels.engine import results

    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    (tmp_path / "demo--frames.json").write_text(content)
    with pytest.raises(DataError, match=f"demo--frames.json: {named}"):
        results.load_sweep("demo", "frames")


@pytest.mark.parametrize("text, named", [
    ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfine\n\n00:00:0x.000 --> 00:00:03.000\nlost\n",
     "line 6: malformed cue timing '00:00:0x.000 --> 00:00:03.000'"),
    ("WEBVTT\n\n00:00:03.000 --> 00:00:02.000\nbackwards\n", "the cue 'backwards' ends \\(2.0 s\\) before it starts"),
])
def test_subtitle_cues_are_never_dropped_or_kept_backwards(tmp_path, text, named):
    from minimodels.data.subtitles import SubtitleError, read_subtitles

    (tmp_path / "a.vtt").write_text(text)
    with pytest.raises(SubtitleError, match=named):
        read_subtitles(tmp_path / "a.vtt")


@pytest.mark.parametrize("cut, named", [("mid-line", "not valid JSON lines"), ("line end", "399 rows where the world")])
def test_a_cut_table_is_refused_not_read_short(tmp_path, monkeypatch, cut, named):
    import shutil

    from minimodels.data import dataset

    (tmp_path / "clips").mkdir()
    shutil.copy(DATA_DIR / "world.json", tmp_path / "world.json")
    lines = (DATA_DIR / "clips" / "test.jsonl").read_text().splitlines(keepends=True)
    kept = "".join(lines[:-1]) + (lines[-1][:40] if cut == "mid-line" else "")
    (tmp_path / "clips" / "test.jsonl").write_text(kept)
    monkeypatch.setattr(dataset, "DATA_DIR", tmp_path)
    with pytest.raises(DataError, match=f"{tmp_path / 'clips' / 'test.jsonl'}: {named}"):
        dataset.load_table("clips", "test")


# ---- interrupted runs ------------------------------------------------------------------------------------------

class Noisy(torch.nn.Module):
    """A model whose loss uses the global RNG (dropout), so an exact resume must restore it too."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)

    def loss(self, idx):
        x = torch.nn.functional.dropout(torch.ones(len(idx), 4) * idx[:, None], 0.3)
        return self.layer(x).pow(2).mean()


def interrupt_at(stop_step):
    import signal

    def loss_fn(model, batch, step):
        idx = batch.idx
        if step == stop_step:  # as if Ctrl-C arrived during this step
            os.kill(os.getpid(), signal.SIGINT)
        return model.loss(idx.float()), {}
    return loss_fn


def test_an_interrupted_run_resumes_bit_for_bit(tmp_path):
    from minimodels.engine.errors import Interrupted

    cfg = TrainConfig(steps=12, batch_size=3, warmup=2, progress=False)
    whole = Noisy()
    torch.manual_seed(1)
    train(whole, interrupt_at(-1), 8, cfg, checkpoints=tmp_path / "whole")

    cut = Noisy()
    torch.manual_seed(1)
    with pytest.raises(Interrupted, match=r"stopped by SIGINT after step 6 of 12; a checkpoint of step 6 is in .*"
                                          r"--resume"):
        train(cut, interrupt_at(5), 8, cfg, checkpoints=tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "trainer.json").read_text())["step"] == 6
    assert not list((tmp_path / "cut").glob("*.tmp"))  # written through temporary files, then renamed
    resumed = Noisy()
    history = train(resumed, interrupt_at(-1), 8, cfg, checkpoints=tmp_path / "cut", resume=True)
    assert len(history.steps) == 12
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))


def test_an_interrupt_without_an_output_folder_says_nothing_was_kept():
    from minimodels.engine.errors import Interrupted

    with pytest.raises(Interrupted, match="no output folder was given, so nothing was kept"):
        train(Noisy(), interrupt_at(1), 8, TrainConfig(steps=5, batch_size=2, progress=False))


def noisy_experiment(stop_step=-1):
    """Two stages, as the papers' experiments: a warm-up that keeps no checkpoint, then the main stage that does."""
    def run(cfg, seed=0, folder=None):
        model = Noisy()
        train(model, interrupt_at(-1), 8, TrainConfig(steps=3, batch_size=3, progress=False), seed=seed,
              log=folder.log, desc="warm-up")
        train(model, interrupt_at(stop_step), 8, TrainConfig(steps=10, batch_size=3, eval_every=4, progress=False),
              seed=seed, checkpoints=folder.path, resume=folder.resume, log=folder.log,
              eval_fn=lambda m: {"bias": m.layer.bias.item()}, desc="main")
        return ExperimentResult({"weight": model.layer.weight.sum().item()})
    return Experiment(ToyConfig, run, "noisy")


def test_tensorboard_gets_the_same_numbers_when_it_is_installed(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    execute("noisy", noisy_experiment(), ToyConfig(), seed=3, out_dir=tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    assert {"warm-up/loss", "main/loss", "main/eval/bias"} <= set(events.Tags()["scalars"])
    main_losses = [(e.step, e.value) for e in events.Scalars("main/loss")]
    assert main_losses == [(r["step"], pytest.approx(r["loss"])) for r in log if r["stage"] == "main" and "loss" in r]


def test_the_metrics_log_follows_every_stage_step_by_step(tmp_path):
    execute("noisy", noisy_experiment(), ToyConfig(), seed=3, out_dir=tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"], "eval" in r) for r in rows] == (
        [("warm-up", s, False) for s in (1, 2, 3)] + [("main", s, False) for s in (1, 2, 3, 4)] + [("main", 4, True)]
        + [("main", s, False) for s in (5, 6, 7, 8)] + [("main", 8, True), ("main", 9, False), ("main", 10, False),
                                                         ("main", 10, True)])
    assert all(math.isfinite(r["loss"]) for r in rows if "loss" in r) and set(rows[7]["eval"]) == {"bias"}


def test_resume_continues_the_run_in_its_folder_and_only_that_run(tmp_path):
    from minimodels.engine.errors import Interrupted

    whole = execute("noisy", noisy_experiment(), ToyConfig(), seed=3, out_dir=tmp_path / "whole")
    with pytest.raises(Interrupted):
        execute("noisy", noisy_experiment(4), ToyConfig(), seed=3, out_dir=tmp_path / "cut")
    with pytest.raises(ConfigError, match="holds an earlier run"):  # a plain rerun would start again: refused
        execute("noisy", noisy_experiment(), ToyConfig(), seed=3, out_dir=tmp_path / "cut")
    with pytest.raises(ConfigError, match="made with other settings"):
        execute("noisy", noisy_experiment(), ToyConfig(), seed=4, out_dir=tmp_path / "cut", resume=True)
    with pytest.raises(ConfigError, match="no interrupted run to continue there"):
        execute("noisy", noisy_experiment(), ToyConfig(), seed=3, out_dir=tmp_path / "empty", resume=True)
    resumed = execute("noisy", noisy_experiment(), ToyConfig(), seed=3, out_dir=tmp_path / "cut", resume=True)
    assert resumed.metrics == whole.metrics
    # the log of the interrupted and resumed run reads as the uninterrupted run's, line for line
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() == (tmp_path / "whole" / "metrics.jsonl").read_text()


def test_a_cut_video_is_reported_as_truncated_not_loaded_short(tmp_path, noise_video):
    from minimodels.data.video_io import VideoLoadError

    whole = noise_video(tmp_path / "whole.avi", 40)
    assert load_video(whole, num_frames=4, size=8).shape == (4, 8, 8, 3)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(VideoLoadError, match=f"{cut}: truncated: frame \\d+ was to be sampled but the stream ends "
                                             f"after \\d+ of 40 frames"):
        load_video(cut)


def test_loading_a_few_frames_keeps_only_those_frames_in_memory(tmp_path, noise_video):
    """Memory is bounded by the output, not the video: 150 frames of 320x240 (34 MB as RGB, what decoding them all
    and stacking them peaks at) load as 4 frames of 16 px while Python holds under 1 MB."""
    import tracemalloc

    from minimodels.data.video_io import decode_frames

    long_video = noise_video(tmp_path / "long.mp4", 150, width=320, height=240)
    tracemalloc.start()
    try:
        clip = load_video(long_video, num_frames=4, size=16)
        few = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        decode_frames(long_video)
        every = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.shape == (4, 16, 16, 3)
    assert every > 30e6 and few < 1e6, (every, few)


def test_a_run_saved_by_an_earlier_version_of_the_course_resumes(tmp_path):
    """A run folder whose config.json predates a renamed key (activation_checkpointing) and a new field resumes as
    if it had been written today; its settings, read with today's names and defaults, are the run's."""
    from minimodels.engine.errors import Interrupted

    @dataclass
    class Older:
        value: float = 1.0
        train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=10, batch_size=3, progress=False))

    experiment = Experiment(Older, noisy_experiment(4).run, "noisy")
    with pytest.raises(Interrupted):
        execute("noisy", experiment, Older(), seed=3, out_dir=tmp_path / "cut")
    saved = json.loads((tmp_path / "cut" / "config.json").read_text())
    train_cfg = saved["config"]["train"]
    train_cfg["activation_checkpointing"] = train_cfg.pop("recompute_activations")
    del train_cfg["warmup_share"]  # a field the older course did not have
    (tmp_path / "cut" / "config.json").write_text(json.dumps(saved))
    resumed = execute("noisy", Experiment(Older, noisy_experiment().run, "noisy"), Older(), seed=3,
                      out_dir=tmp_path / "cut", resume=True)
    whole = execute("noisy", Experiment(Older, noisy_experiment().run, "noisy"), Older(), seed=3,
                    out_dir=tmp_path / "whole")
    assert resumed.metrics == whole.metrics


def test_a_damaged_checkpoint_is_refused_before_the_run_log_is_touched(tmp_path):
    """--resume on a folder whose trainer.json is corrupt, or whose trainer.safetensors is missing, stops with one
    line, and leaves config.json and metrics.jsonl as they were."""
    from minimodels.engine.errors import Interrupted

    with pytest.raises(Interrupted):
        execute("noisy", noisy_experiment(4), ToyConfig(), seed=3, out_dir=tmp_path / "cut")
    before = {name: (tmp_path / "cut" / name).read_bytes() for name in ("config.json", "metrics.jsonl")}
    assert before["metrics.jsonl"]
    (tmp_path / "cut" / "trainer.json").write_text("{not json")
    with pytest.raises(ConfigError, match="trainer.json is damaged"):
        execute("noisy", noisy_experiment(), ToyConfig(), seed=3, out_dir=tmp_path / "cut", resume=True)
    (tmp_path / "cut" / "trainer.json").write_text(json.dumps({"step": 4, "history": {}, "param_groups": []}))
    (tmp_path / "cut" / "trainer.safetensors").unlink()
    with pytest.raises(ConfigError, match=r"checkpoint is incomplete \(trainer.safetensors missing\)"):
        execute("noisy", noisy_experiment(), ToyConfig(), seed=3, out_dir=tmp_path / "cut", resume=True)
    assert {name: (tmp_path / "cut" / name).read_bytes() for name in before} == before


# ---- round two: settings a run cannot honour, refused when the config is made -------------------------------------

@pytest.mark.parametrize("experiment, sets, named", [
    ("videoprism-vit-probe", {"frames": "100"}, "frames=100: must be a whole number from 1 to the model's num_frames"),
    ("videoprism-vit-probe", {"frames": "-1"}, "frames=-1"),
    ("videoprism-vit-probe", {"frames": "0"}, "frames=0"),
    ("videoprism-vit-probe", {"model.heads": "0"}, "model.heads=0: must be a whole number >= 1 that divides width"),
    ("videoprism-vit-probe", {"model.patch_size": "0"}, "model.patch_size=0"),
    ("videoprism-vit-probe", {"model.heads": "-4"}, "model.heads=-4"),
    ("videoprism-vit-probe", {"model.width": "-64"}, "model.width=-64"),
    ("videoprism-vit-probe", {"model.logit_cap": "0"}, r"model.logit_cap=0.0: must be a number > 0, or none"),
    ("videoprism-stage1", {"train.min_lr": "0.1"}, r"train.min_lr=0.1: must be a finite number from 0 to lr=0.002"),
    ("videoprism-stage2", {"mask_ratio": "1.0"}, r"mask_ratio=1.0: must be a share in \(0, 1\)"),
    ("mvgpt-captioning", {"max_caption_len": "0"}, "max_caption_len=0: must be a whole number of tokens >= 1"),
    ("mvgpt-captioning", {"beam": "0"}, r"beam=0: must be a whole number >= 1 \(1: greedy\)"),
    ("mvgpt-captioning", {"mask_prob": "-0.1"}, r"mask_prob=-0.1: must be a share in \(0, 1\)"),
])
def test_settings_a_run_cannot_honour_are_refused_by_name(experiment, sets, named):
    with pytest.raises(ConfigError, match=named):
        make_config(experiment, sets=sets)


@pytest.mark.parametrize("args, named", [
    (["run", "videoprism-vit-probe", "--seed", "-1"], "--seed -1: a seed is a whole number >= 0"),
    (["sweep", "videoprism-vit-probe", "--seeds", "-1", "--vary", "frames=8"], "--seeds -1"),
    (["sweep", "videoprism-vit-probe", "--seeds", "0", "0", "--vary", "frames=8"], "--seeds seed 0 given twice"),
    (["sweep", "videoprism-vit-probe", "--vary", "frames=8,8"], "--vary value 8 given twice"),
    (["bench", "videoprism-tiny", "--frames", "-2"], "--frames -2: a clip has at least 1 frame"),
    (["bench", "videoprism-tiny", "--activation-checkpointing"], "now called --recompute-activations"),
])
def test_the_command_line_refuses_what_it_cannot_do_in_one_line(args, named, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and named in err and err.count("\n") == 1


def test_a_sweep_file_name_built_from_settings_stays_in_its_folder(tmp_path):
    from minimodels.engine.results import sweep_path

    path = sweep_path("videoprism-vit-probe", "frames", {"manifest": "../../../../../tmp/x.jsonl"}, folder=tmp_path)
    assert path.parent == tmp_path and "/" not in path.name
    assert path.name == "videoprism-vit-probe--frames--manifest=.._.._.._.._.._tmp_x.jsonl.json"
    absolute = sweep_path("videoprism-vit-probe", "frames", {"manifest": "/data/x.jsonl"}, folder=tmp_path)
    assert absolute.parent == tmp_path
    assert sweep_path("videoprism-stage2", "train.steps", {"shuffle": "false"}, folder=tmp_path).name == (
        "videoprism-stage2--train.steps--shuffle=false.json")  # the committed names do not change


def test_two_runs_cannot_write_one_folder_at_once(tmp_path):
    """A second run (say a second --force) into a folder a run is writing is refused, not interleaved."""
    def run(cfg, seed=0, folder=None):
        with pytest.raises(ConfigError, match="another run is writing there right now"):
            execute("toy", toy_experiment(), ToyConfig(), out_dir=folder.path, force=True)
        return ExperimentResult({"acc": 0.5}, {"acc": 0.2}, ["acc"])

    execute("outer", Experiment(ToyConfig, run, "outer"), ToyConfig(), out_dir=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["experiment"] == "outer"


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing_behind(tmp_path):
    def failing(cfg, seed=0, folder=None):
        raise DataError("the data went away")

    with pytest.raises(DataError):
        execute("toy", Experiment(ToyConfig, failing, "fails"), ToyConfig(), out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # the run made the folder, and took it away again
    execute("toy", toy_experiment(), ToyConfig(), out_dir=tmp_path / "run")  # the same command runs, no --force


def test_a_latest_results_folder_that_cannot_be_written_stops_before_the_run(tmp_path, monkeypatch):
    from minimodels.engine import results

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setattr(results, "RUNS_DIR", blocked)
    cfg = ToyConfig()
    with pytest.raises(ConfigError, match="MINIMODELS_RUNS .* cannot write to"):
        execute("toy", toy_experiment(), cfg, out_dir=tmp_path / "run")
    assert cfg.calls == []  # nothing trained


def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    from minimodels.engine import checkpoint
    from minimodels.engine.errors import CheckpointError

    def full(tensors, path, *args, **kwargs):
        open(path, "wb").write(b"half")
        raise SafetensorError("No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint, "save_file", full)
    model = Line()
    with pytest.raises(CheckpointError, match=r"could not write the checkpoint of step 2 to .* nothing half-written"):
        train(model, lambda m, batch, step: (m.w.sum(), {}), 4, TrainConfig(steps=2, batch_size=2, progress=False),
              checkpoints=tmp_path / "ckpt")
    assert not list((tmp_path / "ckpt").glob("*.tmp"))


def test_a_teacher_folder_that_is_not_a_stage1_run_is_named(tmp_path):
    from minimodels.engine.errors import CheckpointError
    from minimodels.videoprism.teacher import load_teacher

    with pytest.raises(CheckpointError, match=f"{tmp_path}: no config.json beside the weights; a stage-2 teacher"):
        load_teacher(tmp_path)
    (tmp_path / "config.json").write_text("{cut")
    with pytest.raises(CheckpointError, match="config.json: not readable JSON"):
        load_teacher(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "videoprism-vit-probe", "config": {}}))
    with pytest.raises(CheckpointError, match=f"{tmp_path} holds a videoprism-vit-probe run, not a videoprism-stage1"):
        load_teacher(tmp_path)


@pytest.mark.parametrize("name, content, named", [
    ("null.jsonl", '{"video": null, "caption": "a"}\n', r"row 1: 'video' is None; give every row a video path"),
    ("number.jsonl", '{"video": 123, "caption": "a"}\n', r"row 1: 'video' is 123"),
    ("cell.csv", "video,label\na.mp4,dog\n,cat\n", r"row 2: 'video' is None"),
    ("label.csv", "video,label\na.mp4,\n", r"row 1: 'label' is empty"),
    ("empty.jsonl", "", "not a readable jsonl manifest|no rows"),
    ("header.csv", "video,label\n", "no rows"),
])
def test_a_malformed_manifest_row_is_named(tmp_path, name, content, named):
    from minimodels.data.video_folder import read_manifest

    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=named):
        read_manifest(tmp_path / name)


def test_a_tokenizer_that_asks_to_run_its_own_code_is_refused_by_name(tmp_path, monkeypatch):
    import shutil

    from minimodels.nn import text

    shutil.copytree(DATA_DIR / "tokenizer", tmp_path / "tokenizer")
    config = json.loads((tmp_path / "tokenizer" / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["tokenization_mine.MineTokenizer", None]}
    config["tokenizer_class"] = "MineTokenizer"
    (tmp_path / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(config))
    monkeypatch.setattr(text, "DATA_DIR", tmp_path)
    with pytest.raises(DataError, match="the tokenizer asks to run code of its own"):
        text.load_tokenizer()


def test_data_build_into_a_place_it_cannot_write_stops_at_once(tmp_path, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert main(["data", "build", "--out", str(blocked / "world")]) == 2
    assert "data build --out: cannot write to" in capsys.readouterr().err
# ---- assignments (issue 35) -------------------------------------------------------------------------------------

def _sheets(tmp_path):
    """A student's folder holding what careless hands make of notebook 01: a text file, notebook 00 under 01's name,
    the whole notebook where the exercises-only sheet was asked; and a used output folder."""
    import shutil

    from minimodels.assignments import NOTEBOOKS

    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "01_factorized_video_vit.ipynb").write_text("see my email\n")
    (tmp_path / "other").mkdir()
    shutil.copy(NOTEBOOKS / "00_video_world.ipynb", tmp_path / "other" / "01_factorized_video_vit.ipynb")
    (tmp_path / "whole").mkdir()
    shutil.copy(NOTEBOOKS / "01_factorized_video_vit.ipynb", tmp_path / "whole")
    (tmp_path / "used" / "student").mkdir(parents=True)
    (tmp_path / "used" / "student" / "notes.txt").write_text("mine")
    (tmp_path / "a-file").write_text("mine")


@pytest.mark.parametrize("args, named", [
    (["build", "--out", "{tmp}/a-file"], "--out {tmp}/a-file: is a file, not a folder"),
    (["build", "--out", "{tmp}/used"], "--out {tmp}/used: already holds student; give a new folder, or --force"),
    (["grade", "{tmp}/text/01_factorized_video_vit.ipynb"], "01_factorized_video_vit.ipynb: this is not notebook 01: "
                                                            "not a readable notebook"),
    (["grade", "{tmp}/other/01_factorized_video_vit.ipynb"], "01_factorized_video_vit.ipynb: this is not notebook 01 "
                                                             "(it holds the exercises 00a-cue-at"),
    (["grade", "--exercises-only", "{tmp}/whole/01_factorized_video_vit.ipynb"],  # the flag first, as README has it
     "the whole notebook, where the exercises-only sheet was asked: grade it without --exercises-only"),
    (["grade", "{tmp}/whole", "--out", "{tmp}/used"], "--out {tmp}/used: already holds student; give a new folder, or "
                                                      "--force"),
    (["grade", "{tmp}/whole", "--timeout", "0"], "--timeout 0: must be a number > 0"),
    (["grade", "{tmp}/whole", "--workers", "-2"], "--workers -2: must be a number > 0"),
    (["grade", "{tmp}/nobody"], "nothing to grade: {tmp}/nobody: no such file or folder"),
])
def test_assignment_commands_refuse_in_one_line_before_any_work(tmp_path, capsys, args, named):
    """Each mistake stops with one line that names the file and the fix, before a kernel starts or a file is
    written: nbgrader's own 50-line log never reaches the teacher."""
    _sheets(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["assignments", *(a.format(tmp=tmp_path) for a in args)]) == 2
    err = capsys.readouterr().err.strip()
    assert named.format(tmp=tmp_path) in err and len(err.splitlines()) == 1, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "used" / "student" / "notes.txt").read_text() == "mine"


def test_the_exercises_only_flag_goes_before_or_after_the_files():
    from minimodels.cli import _parser

    for argv in (["assignments", "grade", "--exercises-only", "a.ipynb", "b"],
                 ["assignments", "grade", "a.ipynb", "b", "--exercises-only"]):
        args = _parser().parse_args(argv)
        assert args.exercises_only and args.submitted == ["a.ipynb", "b"]
