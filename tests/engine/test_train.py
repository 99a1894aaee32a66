"""The training loop: exact resume from a checkpoint, the checkpoint's files, the schedule and seeded batches."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from minimodels.catalog import get_preset
from minimodels.data.dataset import as_float
from minimodels.engine.batches import batch_indices, per_example
from minimodels.engine.checkpoint import load_checkpoint
from minimodels.engine.errors import CheckpointError, ConfigError
from minimodels.engine.rng import rng, seed_everything
from minimodels.engine.train import TrainConfig, lr_at, train
from minimodels.eval.probes import ATTRIBUTES
from minimodels.nn.video_vit import VideoViTConfig
from minimodels.videoprism.vit_probe import VideoClassifier

N_CLIPS = 12
STEPS = 6
ENCODER = VideoViTConfig(image_size=8, patch_size=4, num_frames=2, width=8, heads=2, mlp_dim=16)


def fake_clips(n=N_CLIPS):
    g = torch.Generator().manual_seed(0)
    data = {"video": torch.randint(0, 256, (n, 2, 8, 8, 3), dtype=torch.uint8, generator=g)}
    for name, classes in ATTRIBUTES.items():
        data[name] = torch.randint(0, len(classes), (n,), generator=g)
    return data


class Interrupted(Exception):
    pass


def make_loss(data, stop_at=None):
    def loss_fn(model, batch, step):
        idx = batch.idx
        if step == stop_at:
            raise Interrupted
        # Noise from the global RNG: a resume that does not restore the RNG state would train on different inputs.
        video = as_float(data["video"][idx]) + 0.05 * torch.rand(len(idx), *data["video"].shape[1:])
        logits = model(video)
        loss = sum(F.cross_entropy(logits[name], data[name][idx]) for name in ATTRIBUTES)
        return loss, {"noise_seen": float(video.sum())}
    return loss_fn


def train_cfg(**changes):
    return TrainConfig(**{"steps": STEPS, "batch_size": 4, "lr": 1e-2, "min_lr": 1e-3, "warmup": 2,
                          "progress": False, **changes})


def new_model(seed):
    seed_everything(seed)
    return VideoClassifier(ENCODER)


def test_resume_is_exact(tmp_path):
    data = fake_clips()
    model = new_model(0)
    full = train(model, make_loss(data), N_CLIPS, train_cfg(), seed=7, checkpoints=tmp_path / "full")

    interrupted = new_model(0)
    with pytest.raises(Interrupted):
        train(interrupted, make_loss(data, stop_at=STEPS // 2), N_CLIPS, train_cfg(checkpoint_every=STEPS // 2),
              seed=7, checkpoints=tmp_path / "resumed")
    half = json.loads((tmp_path / "resumed" / "trainer.json").read_text())
    assert half["step"] == STEPS // 2

    resumed = new_model(123)  # other initial weights and another RNG state: the checkpoint must restore both
    torch.rand(1000)
    assert not all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), model.state_dict().values()))
    history = train(resumed, make_loss(data), N_CLIPS, train_cfg(checkpoint_every=STEPS // 2), seed=7,
                    checkpoints=tmp_path / "resumed", resume=True)

    final, again = model.state_dict(), resumed.state_dict()
    assert final.keys() == again.keys()
    for name in final:
        assert torch.equal(final[name], again[name]), f"{name} differs after resume"
    assert [h["step"] for h in history.steps] == list(range(1, STEPS + 1))
    assert history == full  # same losses and the same noise, step by step
    # Training did change the weights: the comparison above is not between two untouched models.
    assert len({h["loss"] for h in full.steps}) == STEPS
    assert not torch.equal(new_model(0).encoder.patch_proj.weight, model.encoder.patch_proj.weight)


def test_resume_without_the_rng_state_would_differ(tmp_path):
    """Control for the test above: the same run with another global RNG gives other weights."""
    data = fake_clips()
    runs = []
    for rng_seed in (0, 1):
        model = new_model(0)
        torch.manual_seed(rng_seed)
        train(model, make_loss(data), N_CLIPS, train_cfg(steps=2), seed=7)
        runs.append(model.encoder.patch_proj.weight.detach().clone())
    assert not torch.equal(*runs)


def test_checkpoint_folder(tmp_path):
    data = fake_clips()
    model = new_model(0)
    history = train(model, make_loss(data), N_CLIPS, train_cfg(steps=2), checkpoints=tmp_path / "ckpt")
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert files == {"model.safetensors", "trainer.safetensors", "trainer.json"}  # config.json: the experiment's
    fresh = new_model(99)
    step, saved = load_checkpoint(tmp_path / "ckpt", fresh)
    assert step == 2 and saved == history and len(saved.steps) == 2
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name


class WithReloadedEncoder(VideoClassifier):
    """A classifier whose frozen encoder comes from a file of its own each time it is built (as MiniGPT4-Video's
    EVA and LLM): its checkpoints leave that encoder out."""

    reloaded_parts = ("encoder.",)


def test_a_checkpoint_leaves_out_the_frozen_parts_a_model_reloads(tmp_path):
    from safetensors.torch import load_file

    seed_everything(0)
    model = WithReloadedEncoder(ENCODER)
    model.encoder.requires_grad_(False)
    train(model, make_loss(fake_clips()), N_CLIPS, train_cfg(steps=2), checkpoints=tmp_path / "ckpt")
    trains = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trains and set(load_file(str(tmp_path / "ckpt" / "model.safetensors"))) == trains
    seed_everything(99)
    fresh = WithReloadedEncoder(ENCODER)
    fresh.encoder.load_state_dict(model.encoder.state_dict())  # the frozen part, from its own file
    fresh.encoder.requires_grad_(False)
    load_checkpoint(tmp_path / "ckpt", fresh)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    fresh.encoder.requires_grad_(True)  # a part that trains is never left out: this checkpoint no longer fits
    with pytest.raises(CheckpointError, match="does not fit this model \\([1-9][0-9]* tensors missing"):
        load_checkpoint(tmp_path / "ckpt", fresh)


def test_missing_checkpoint_and_resume_without_folder(tmp_path):
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(tmp_path, new_model(0))
    with pytest.raises(ValueError, match="checkpoints folder"):
        train(new_model(0), make_loss(fake_clips()), N_CLIPS, train_cfg(), resume=True)


def test_history_holds_evaluations():
    data = fake_clips()
    calls = []

    def eval_fn(model):
        calls.append(model.training)
        return {"metric": 1.0}

    history = train(new_model(0), make_loss(data), N_CLIPS, train_cfg(steps=4, eval_every=2), eval_fn=eval_fn)
    assert [h["step"] for h in history.evals] == [2, 4] and calls == [False, False]
    assert history.final_eval == {"metric": 1.0} and "metric" not in history.steps[-1]
    assert [h["step"] for h in history.steps] == [1, 2, 3, 4]
    assert all(math.isfinite(h["loss"]) for h in history.steps) and history.final_loss == history.steps[-1]["loss"]


def exact_loss(data):
    """A per-example mean without noise: the whole batch and its micro-batches have the same gradient."""
    def loss_fn(model, batch, step):
        idx = batch.idx
        logits = model(as_float(data["video"][idx]))
        return sum(F.cross_entropy(logits[name], data[name][idx]) for name in ATTRIBUTES), {"clips": float(len(idx))}
    return loss_fn


def test_accumulated_micro_batches_take_the_same_step():
    data = fake_clips()
    whole, parts = new_model(0), new_model(0)
    one = train(whole, exact_loss(data), N_CLIPS, train_cfg(steps=1))
    four = train(parts, exact_loss(data), N_CLIPS, train_cfg(steps=1, accumulate=4))
    # the gradient of the step (left in .grad): the whole batch's, from 4 micro-batches of 1 clip
    assert all(torch.allclose(a.grad, b.grad, atol=1e-6) for a, b in zip(whole.parameters(), parts.parameters()))
    assert four.steps[0]["loss"] == pytest.approx(one.steps[0]["loss"], abs=1e-6)
    assert one.steps[0]["clips"] == 4 and four.steps[0]["clips"] == 1  # a micro-batch's logs, averaged over the 4
    # (Adam divides each gradient by its own scale, so rounding-level differences of near-zero gradients become
    # visible in the weights: later steps are compared by their losses)
    longer = [train(new_model(0), exact_loss(data), N_CLIPS, train_cfg(steps=3, accumulate=k)) for k in (1, 4)]
    assert [r["loss"] for r in longer[1].steps] == pytest.approx([r["loss"] for r in longer[0].steps], abs=1e-5)


def test_the_data_is_told_ahead_every_share_the_loss_function_will_ask_for():
    """``prefetch``: a resumed run from step 2, in 2 micro-batches: the rows expected are the rows asked, in order."""

    class Data:
        def expect(self, requests):
            self.expected = [r.tolist() for r in requests]

    data, asked = Data(), []
    cfg = TrainConfig(steps=4, batch_size=4, accumulate=2, warmup=1, progress=False)

    def loss_fn(model, batch, step):
        asked.append(batch.idx.tolist())
        return model(torch.ones(len(batch), 1)).sum(), {}

    model = torch.nn.Linear(1, 1)
    train(model, loss_fn, N_CLIPS, cfg, seed=3, prefetch=(data, torch.zeros(N_CLIPS)))  # a tensor needs nothing
    assert data.expected == asked and len(asked) == 8
    with pytest.raises(ConfigError, match="batch_size=4 .* larger than the 2 training examples"):
        train(model, loss_fn, 2, cfg)
    train(model, loss_fn, 2, TrainConfig(steps=0, batch_size=4, progress=False))  # no step draws no batch


def test_per_example_draws_do_not_depend_on_how_the_batch_is_split():
    """Masks and coin flips drawn per example: each example gets the same draw whether the step's batch is computed
    at once or in micro-batches (or, the same code path, in several processes); a draw sized by the micro-batch
    would not."""
    def drawn(accumulate, split_aware):
        seen = {}

        def loss_fn(model, batch, step):
            idx = batch.idx
            draw = lambda n: torch.rand(n, generator=rng(0, step, "token-drop"))  # noqa: E731 - (n,) one an example
            coins = per_example(draw, batch, len(idx)) if split_aware else draw(len(idx))
            seen.update({(step, i): c for i, c in zip(idx.tolist(), coins.tolist())})
            return model.w.sum() * 0, {}

        model = torch.nn.Module()
        model.w = torch.nn.Parameter(torch.zeros(1))
        train(model, loss_fn, 8, TrainConfig(steps=2, batch_size=4, accumulate=accumulate, progress=False))
        return seen

    assert drawn(4, True) == drawn(2, True) == drawn(1, True) == drawn(1, False)
    assert drawn(4, False) != drawn(1, False)
    assert per_example(lambda n: torch.arange(n), None, 3).tolist() == [0, 1, 2]  # outside the loop: for the n asked

def test_recomputed_activations_are_recomputed_block_by_block_and_take_the_same_step(monkeypatch):
    from minimodels.nn import attention

    calls, real = [], attention.checkpoint
    monkeypatch.setattr(attention, "checkpoint", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    data = fake_clips()
    plain, recomputed = new_model(0), new_model(0)
    train(plain, exact_loss(data), N_CLIPS, train_cfg(steps=2))
    assert calls == []
    train(recomputed, exact_loss(data), N_CLIPS, train_cfg(steps=2, recompute_activations=True))
    assert len(calls) == 2 * 2  # 2 steps × (1 spatial + 1 temporal block)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain.parameters(), recomputed.parameters()))


def test_compile_is_for_cuda_and_a_cpu_run_says_it_stays_eager(monkeypatch):
    from minimodels.nn.attention import Transformer

    compiled = []
    monkeypatch.setattr(Transformer, "compile_layers", lambda self: compiled.append(self))
    data = fake_clips()
    with pytest.warns(UserWarning, match="compile=true compiles for CUDA only; on cpu the run stays eager"):
        history = train(new_model(0), exact_loss(data), N_CLIPS, train_cfg(steps=1, compile=True))
    eager = train(new_model(0), exact_loss(data), N_CLIPS, train_cfg(steps=1))
    assert compiled == [] and history.steps == eager.steps

def test_training_lowers_the_loss():
    data = fake_clips(4)
    history = train(new_model(0), make_loss(data), 4, train_cfg(steps=30, warmup=3, lr=1e-2))
    assert history.final_loss < 0.8 * history.steps[0]["loss"]


# ---- schedule and batches --------------------------------------------------------------------------------------

def test_lr_warmup_is_linear_up_to_the_peak():
    cfg = TrainConfig(steps=100, lr=1e-3, min_lr=1e-4, warmup=10)
    warm = [lr_at(s, cfg) for s in range(cfg.warmup)]
    assert warm[0] > 0 and warm[-1] == pytest.approx(cfg.lr)
    steps = [b - a for a, b in zip(warm, warm[1:])]
    assert all(s == pytest.approx(steps[0]) for s in steps) and steps[0] > 0


def test_lr_cosine_decay():
    cfg = TrainConfig(steps=100, lr=1e-3, min_lr=1e-4, warmup=10)
    decay = [lr_at(s, cfg) for s in range(cfg.warmup, cfg.steps + 1)]
    assert decay[0] == pytest.approx(cfg.lr)
    assert all(b <= a for a, b in zip(decay, decay[1:]))
    assert decay[-1] == pytest.approx(cfg.min_lr)
    middle = cfg.warmup + (cfg.steps - cfg.warmup) // 2
    assert lr_at(middle, cfg) == pytest.approx((cfg.lr + cfg.min_lr) / 2)  # cosine: halfway at the midpoint
    quarter = cfg.warmup + (cfg.steps - cfg.warmup) // 4  # and above the straight line before it
    assert lr_at(quarter, cfg) > cfg.lr - 0.25 * (cfg.lr - cfg.min_lr)
    assert lr_at(cfg.steps + 50, cfg) == pytest.approx(cfg.min_lr)  # stays at the floor


def test_lr_without_warmup_starts_at_the_peak():
    cfg = TrainConfig(steps=10, lr=2e-3, min_lr=0.0, warmup=0)
    assert lr_at(0, cfg) == pytest.approx(2e-3)


def test_batch_indices_are_a_function_of_seed_and_step():
    a = batch_indices(50, 8, seed=3, step=5)
    assert torch.equal(a, batch_indices(50, 8, seed=3, step=5))
    assert len(a) == 8 and len(set(a.tolist())) == 8 and 0 <= a.min() and a.max() < 50
    assert not torch.equal(a, batch_indices(50, 8, seed=3, step=6))
    assert not torch.equal(a, batch_indices(50, 8, seed=4, step=5))
    torch.manual_seed(0)
    x = batch_indices(50, 8, seed=3, step=5)
    torch.manual_seed(1)
    assert torch.equal(x, batch_indices(50, 8, seed=3, step=5))  # the global RNG plays no part
    assert len(batch_indices(5, 8, seed=0, step=0)) == 5  # a batch larger than the data: everything once


# ---- full presets on a GPU ---------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["videoprism-b", "videoprism-l", "videoprism-g"])
def test_full_preset_trains_one_step_on_cuda(name, cuda_step):
    cfg = get_preset(name)
    device = torch.device("cuda")
    torch.manual_seed(0)
    with device:
        model = cfg.build()
    video = torch.rand(1, cfg.num_frames, cfg.image_size, cfg.image_size, 3, device=device)
    target = torch.randn(1, cfg.num_frames * cfg.tokens_per_frame, cfg.width, device=device)
    before = model.patch_proj.weight.detach().clone()
    matmul_dtypes = []
    model.patch_proj.register_forward_hook(lambda module, args, out: matmul_dtypes.append(out.dtype))

    def loss_fn(model, batch, step):
        idx = batch.idx
        out = model(video[idx.to(device)])
        return F.mse_loss(out.float(), target), {}

    cuda_step(model, loss_fn)
    assert matmul_dtypes == [torch.bfloat16]  # the loop ran the forward pass under bf16 autocast
    assert not torch.equal(before, model.patch_proj.weight)
