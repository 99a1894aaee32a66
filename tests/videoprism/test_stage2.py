"""VideoPrism stage 2, the experiment: a frozen teacher, a student copied from it, switchable losses, the shipped
teachers."""

import pytest
import torch

from minimodels.catalog import make_config, run_experiment
from minimodels.data.dataset import as_float, clip_tensors
from minimodels.engine.config import override
from minimodels.engine.errors import CheckpointError, ConfigError, DataError
from minimodels.engine.paths import DATA_DIR
from minimodels.engine.rng import rng
from minimodels.engine.train import TrainConfig, train
from minimodels.videoprism.stage2 import (
    TABLE_11_DECODER,
    DecoderConfig,
    Stage2Config,
    Stage2Model,
    make_mask,
    stage2_loss,
)
from minimodels.videoprism.teacher import load_teacher, teacher_folder
from minimodels.videoprism.video_text import VideoTextConfig


@pytest.fixture
def teacher(tiny_cfg):
    torch.manual_seed(0)
    model = VideoTextConfig(video=tiny_cfg, text_layers=1, vocab_size=16, text_length=4).build()
    with torch.no_grad():  # a trained teacher's last LayerNorm has a scale and shift of its own: per-token layer
        # norm of its tokens ("layer" targets) then differs from the tokens as they are
        model.encoder.temporal_ln.weight.uniform_(0.5, 1.5)
        model.encoder.temporal_ln.bias.normal_(0, 0.5)
    return model.eval().requires_grad_(False)


def make_student(teacher):
    torch.manual_seed(1)
    return Stage2Model(teacher, DecoderConfig(width=16, layers=1, heads=2, mlp_dim=32))


def batch(teacher, n=4, seed=0):
    v = teacher.cfg.video
    return torch.rand(n, v.num_frames, v.image_size, v.image_size, 3, generator=torch.Generator().manual_seed(seed))


def loss_of(model, teacher, cfg, seed=0):
    return stage2_loss(model, teacher, batch(teacher), cfg, torch.Generator().manual_seed(seed))


def test_student_starts_as_a_copy_of_the_teacher_encoder(teacher):
    model = make_student(teacher)
    video = batch(teacher)
    assert torch.equal(model.student(video), teacher.encoder(video))
    assert model.student.patch_proj.weight is not teacher.encoder.patch_proj.weight  # a copy, not shared


def test_teacher_gets_no_gradient_and_does_not_change(teacher):
    model = make_student(teacher)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in model.student.state_dict().items()}
    cfg = Stage2Config()
    train(model, lambda m, _, step: loss_of(m, teacher, cfg, step), 4,
          TrainConfig(steps=3, batch_size=4, warmup=1, progress=False))
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(student_before[k], v) for k, v in model.student.state_dict().items())


@pytest.mark.parametrize("flag, other", [("shuffle", False), ("target_norm", "instance"), ("target_norm", "layer"),
                                         ("mask", "tube"), ("mask", "block-tube"), ("mask_ratio", 0.85),
                                         ("mask_span", (0.9, 1.0))])
def test_every_flag_changes_the_loss(teacher, flag, other):
    model = make_student(teacher)
    with torch.no_grad():
        loss, logs = loss_of(model, teacher, Stage2Config())
        changed, changed_logs = loss_of(model, teacher, override(Stage2Config(), {flag: other}))
    assert not torch.isclose(loss, changed) and logs["loss_visible"] != changed_logs["loss_visible"]


@pytest.mark.parametrize("part, decoder", [("local_distill", "local"), ("global_distill", "global_")])
def test_switching_a_loss_off_leaves_its_decoder_without_gradient(teacher, part, decoder):
    model = make_student(teacher)
    loss, _ = loss_of(model, teacher, override(Stage2Config(), {part: False}))
    loss.backward()
    for name in ("local", "global_"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        if name == decoder:
            assert all(g is None for g in grads)
        else:
            assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("local, global_", [(True, True), (True, False), (False, True)])
def test_one_pass_of_the_teacher_gives_the_targets_each_loss_uses(teacher, local, global_, monkeypatch):
    model = make_student(teacher)  # before the counters: the student is a copy of the teacher's encoder
    passes = {"encoder": 0, "pool": 0}
    encoder_forward, pool_tokens = teacher.encoder.forward, teacher.pool_tokens
    monkeypatch.setattr(teacher.encoder, "forward", lambda *a, **k: passes.update(encoder=passes["encoder"] + 1)
                        or encoder_forward(*a, **k))
    monkeypatch.setattr(teacher, "pool_tokens", lambda t: passes.update(pool=passes["pool"] + 1) or pool_tokens(t))
    with torch.no_grad():
        loss_of(model, teacher, override(Stage2Config(), {"local_distill": local, "global_distill": global_}))
    assert passes == {"encoder": 1, "pool": int(global_)}
    video = batch(teacher)  # the global target from the shared pass is the teacher's own video embedding
    assert torch.equal(pool_tokens(encoder_forward(video)), teacher.encode_video(video))


def test_bad_mask_or_target_norm_names_the_choices():
    with pytest.raises(ConfigError, match="no loss"):
        override(Stage2Config(), {"local_distill": False, "global_distill": False})
    with pytest.raises(ConfigError, match="unknown mask 'random'; choose one of bevt, block-tube, tube"):
        override(Stage2Config(), {"mask": "random"})
    with pytest.raises(ConfigError, match="choose one of none, layer, instance"):
        override(Stage2Config(), {"target_norm": "batch"})
    with pytest.raises(ConfigError, match="mask_span"):
        make_config("videoprism-stage2", sets={"mask_span": "0.8,0.5"})
    with pytest.raises(ConfigError, match="mask_ratio"):
        make_config("videoprism-stage2", sets={"mask_ratio": "1.0"})


def test_the_papers_settings_are_the_defaults():
    """BEVT's masks at 0.65 over 50–75 % of the frames, four-layer decoders, raw targets, App. C.2's schedule."""
    cfg = Stage2Config()
    assert (cfg.mask, cfg.mask_ratio, cfg.mask_span, cfg.target_norm) == ("bevt", 0.65, (0.5, 0.75), "none")
    assert cfg.decoder.layers == 4 and cfg.shuffle and cfg.local_distill and cfg.global_distill
    t = cfg.train
    assert (t.lr, t.min_lr, t.weight_decay) == (5e-4, 1e-5, 0.05) and t.warmup_share == pytest.approx(1 / 12)
    from minimodels.engine.train import warmup_steps
    assert warmup_steps(t) == 50 and warmup_steps(override(t, steps=4800)) == 400  # 25k of 300k, at any budget


def test_the_student_sees_what_each_frame_keeps(teacher):
    """BEVT masks differ from frame to frame: repainting hidden patches changes neither the student's visible tokens
    nor either decoder's output. A position hidden in every frame (a tube) gives a finite row that nothing reads."""
    model = make_student(teacher).eval()
    v = teacher.cfg.video
    video = batch(teacher)
    for kind in ("bevt", "tube"):
        keep = make_mask(Stage2Config(mask=kind), len(video), v.num_frames, v.grid, torch.Generator().manual_seed(0))
        hidden = ~keep  # (B, T, N)
        repainted = video.clone()
        p = v.patch_size
        for b, t, n in hidden.nonzero().tolist():
            r, c = divmod(n, v.grid)
            repainted[b, t, r * p:(r + 1) * p, c * p:(c + 1) * p] = torch.rand(p, p, 3)
        seen = keep.flatten(1)
        with torch.no_grad():
            a, b_ = model.encode(video, keep), model.encode(repainted, keep)
            assert torch.isfinite(a).all()
            torch.testing.assert_close(a[seen], b_[seen], atol=1e-6, rtol=0)
            torch.testing.assert_close(model.local(a, seen), model.local(b_, seen), atol=1e-6, rtol=0)
            torch.testing.assert_close(model.global_(a, seen), model.global_(b_, seen), atol=1e-6, rtol=0)
            assert not torch.allclose(model.student(video), model.student(repainted), atol=1e-4)  # the control
    assert not keep.any(dim=1).all()  # the tube mask hid some positions in every frame


def test_copy_shortcut_without_shuffle_and_not_with_it(teacher):
    """Without shuffling the decoder can hand each visible token straight to its own slot, so the visible-token loss
    falls far below the masked-token loss; with shuffling, slot i holds some other position's content and the two
    losses stay close. Noise clips, and targets standardised over the clip: the masked tokens cannot be predicted
    at all (raw targets share a clip-wide direction that even a masked slot can guess)."""
    results = {}
    for shuffle in (False, True):
        model = make_student(teacher)
        cfg = override(Stage2Config(), {"shuffle": shuffle, "global_distill": False, "target_norm": "instance"})
        history = train(model, lambda m, _, step: stage2_loss(m, teacher, batch(teacher, 8, step), cfg,
                                                                torch.Generator().manual_seed(step)),
                        8, TrainConfig(steps=150, batch_size=8, lr=3e-3, warmup=10, progress=False))
        last = history.steps[-20:]
        results[shuffle] = [sum(h[k] for h in last) / len(last) for k in ("loss_visible", "loss_masked")]
    visible, masked = results[False]
    assert visible < 0.7 * masked
    visible, masked = results[True]
    assert visible > 0.9 * masked


def test_shipped_teachers_load_frozen_and_a_missing_one_says_how_to_make_it(tmp_path):
    for seed in (0, 1, 2):
        teacher = load_teacher(teacher_folder(Stage2Config(), seed))
        assert not any(p.requires_grad for p in teacher.parameters())
    with pytest.raises(CheckpointError, match="python -m minimodels run videoprism-stage1 --seed 7"):
        teacher_folder(Stage2Config(), 7)
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        teacher_folder(override(Stage2Config(), {"teacher": str(tmp_path)}), 0)


def test_a_teacher_of_another_architecture_is_refused_by_name():
    """`--preset videoprism-lvt-b` with the shipped tiny teacher must not run a tiny student under a B config."""
    folder = teacher_folder(Stage2Config(), 0)
    assert load_teacher(folder, expected=Stage2Config().model) is not None  # the shipped teacher is the tiny preset
    fused = make_config("videoprism-stage2", sets={"model.video.attn_impl": "auto"}).model  # not architecture
    assert load_teacher(folder, expected=fused).encoder.spatial.blocks[0].attn.impl == "auto"
    b = make_config("videoprism-stage2", preset="videoprism-lvt-b").model
    with pytest.raises(CheckpointError) as err:
        load_teacher(folder, expected=b)
    message = str(err.value)
    assert "width 64" in message and "width 768" in message and "--set teacher=FOLDER" in message


def test_recipes_are_checked():
    assert make_config("videoprism-stage2", sets={"mask": "tube"}).mask == "tube"
    with pytest.raises(ConfigError, match="choose one of two-stage, one-stage"):
        make_config("videoprism-stage2", sets={"recipe": "three-stage"})


def test_the_shipped_teacher_knows_appearance():
    """The teacher checkpoint in data_small is a trained stage-1 model: its video embeddings separate colours."""
    teacher = load_teacher(teacher_folder(Stage2Config(), 0))
    data = clip_tensors("test", teacher.cfg.video.image_size)
    with torch.no_grad():
        emb = teacher.encode_video(as_float(data["video"][:200]))
    colour = data["colour"][:200]
    same = (colour[:, None] == colour[None]) & ~torch.eye(200, dtype=torch.bool)
    sim = emb @ emb.T
    assert sim[same].mean() > sim[~same & ~torch.eye(200, dtype=torch.bool)].mean() + 0.2


@pytest.fixture(scope="module")
def frozen_student_run(tmp_path_factory):
    """One short stage-2 run that both tests below read: two steps with the student frozen (``train_student=false``)
    and both decoders training, then the whole evaluation on two probe steps."""
    out = tmp_path_factory.mktemp("stage2") / "ckpt"
    sets = {"train.steps": "2", "train.batch_size": "4", "train.progress": "false", "probe.steps": "2",
            "probe.progress": "false", "train_student": "false"}
    return run_experiment("videoprism-stage2", seed=0, sets=sets, out_dir=out), out


def test_stage2_runs_a_few_steps_and_reports_every_metric(frozen_student_run):
    r, out = frozen_student_run
    for key in ("motion_acc", "appearance_acc", "stage1_motion_acc", "stage1_appearance_acc",
                "late_loss_visible", "late_loss_masked", "late_loss_global", "jigsaw_visible", "jigsaw_masked",
                "guess_clip_mean", "guess_nearest_visible", "guess_nearest_frame", "guess_held_at_start",
                "guess_start_plus_motion", "guess_student", "masked_object_share"):
        assert key in r.metrics
    assert r.chance["motion_acc"] == r.chance["stage1_motion_acc"] < 0.5
    assert (out / "model.safetensors").is_file()
    assert make_config("videoprism-stage2", sets={"shuffle": "false"}).shuffle is False


def test_a_frozen_student_stays_the_teacher_while_the_decoders_learn(frozen_student_run):
    from safetensors.torch import load_file

    saved = load_file(str(frozen_student_run[1] / "model.safetensors"))
    teacher = load_teacher(teacher_folder(Stage2Config(), 0)).encoder.state_dict()
    assert all(torch.equal(saved[f"student.{k}"], v) for k, v in teacher.items())
    fresh = Stage2Model(load_teacher(teacher_folder(Stage2Config(), 0)), Stage2Config().decoder)
    assert not torch.equal(saved["local.mask_token"], fresh.local.mask_token)  # the decoder did learn


def test_full_presets_get_table_11_decoders():
    cfg = make_config("videoprism-stage2", preset="videoprism-lvt-b")
    assert cfg.decoder == TABLE_11_DECODER
    assert make_config("videoprism-stage2", preset="videoprism-lvt-tiny").decoder == DecoderConfig()
    with torch.device("meta"):
        model = Stage2Model(cfg.model.build(), cfg.decoder)
    for decoder in (model.local, model.global_):
        assert decoder.proj_in[0].weight.shape == (512, 768) and decoder.proj_out[0].weight.shape == (768, 512)
        blocks = sum(p.numel() for p in decoder.blocks.parameters())
        assert 4 * 3.14e6 < blocks < 4 * 3.16e6  # 4 layers of width 512, MLP 2048: ≈ 3.15M each
        assert decoder.blocks.blocks[0].attn.heads == 16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_lvt_b_trains_one_stage2_step_on_cuda(cuda_step):
    cfg = make_config("videoprism-stage2", preset="videoprism-lvt-b")
    device = torch.device("cuda")
    torch.manual_seed(0)
    with device:
        teacher = cfg.model.build().eval().requires_grad_(False)
        model = Stage2Model(teacher, cfg.decoder)
    v = cfg.model.video
    video = torch.rand(2, v.num_frames, v.image_size, v.image_size, 3, device=device)
    cuda_step(model, lambda m, _, step: stage2_loss(m, teacher, video, cfg, rng(0, step, "stage2-mask")),
              batch_size=2)


def test_one_stage_baseline_trains_both_losses_and_reports_the_probes(tmp_path):
    sets = {"recipe": "one-stage", "one_stage_train.steps": "2", "one_stage_train.batch_size": "4",
            "one_stage_train.progress": "false",
            "probe.steps": "2", "probe.progress": "false"}
    r = run_experiment("videoprism-stage2", seed=0, sets=sets, out_dir=tmp_path / "one")
    assert {"motion_acc", "appearance_acc", "late_loss_contrastive", "late_loss_masked"} <= set(r.metrics)
    assert "stage1_motion_acc" not in r.metrics and len(r.history["train"].steps) == 2


def test_vit_probe_can_add_frozen_probes():
    sets = {"train.steps": "2", "train.batch_size": "4", "train.progress": "false", "frozen_probe": "true",
            "probe.steps": "2", "probe.progress": "false"}
    r = run_experiment("videoprism-vit-probe", seed=0, sets=sets)
    assert {"frozen_motion_acc", "frozen_appearance_acc", "frozen_acc_direction"} <= set(r.metrics) & set(r.chance)
    unfrozen = run_experiment("videoprism-vit-probe", seed=0, sets={**sets, "frozen_probe": "false"})
    assert "frozen_motion_acc" not in unfrozen.metrics


def test_vit_probe_learns_the_classes_of_a_folder_of_real_videos(tmp_path):
    videos = sorted((DATA_DIR / "videos").glob("*.mp4")) + [DATA_DIR / "real" / "big_buck_bunny_5s.mp4"]
    (tmp_path / "train.csv").write_text("video,label\n" + "".join(
        f"{v},{label}\n" for v, label in zip(videos, ["shapes", "shapes", "shapes", "rabbit"])))
    (tmp_path / "test.csv").write_text(f"video,label\n{videos[3]},rabbit\n{videos[0]},shapes\n")
    sets = {"train.steps": "2", "train.batch_size": "2", "train.progress": "false", "frozen_probe": "true",
            "probe.steps": "2", "probe.batch_size": "2", "probe.progress": "false",
            "manifest": str(tmp_path / "train.csv"), "eval_manifest": str(tmp_path / "test.csv")}
    r = run_experiment("videoprism-vit-probe", seed=0, sets=sets)
    assert r.headline == ["acc_label"] and r.chance["acc_label"] == 0.5  # one rabbit, one shapes video held out
    assert {"acc_label", "frozen_acc_label", "final_loss"} == set(r.metrics)
    (tmp_path / "other.csv").write_text(f"video,label\n{videos[3]},dog\n")
    with pytest.raises(DataError, match=r"other.csv: classes \['dog'\] do not occur in .*train.csv"):
        run_experiment("videoprism-vit-probe", seed=0, sets={**sets, "eval_manifest": str(tmp_path / "other.csv")})
