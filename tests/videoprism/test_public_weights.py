"""VideoPrism runs start from weights: ``init=`` a run folder or a transformers ``save_pretrained`` folder (the
public checkpoints' format), ``tokenizer=`` LvT's SentencePiece tokenizer saved beside it, and a public LvT as stage
2's teacher. Random weights at the tiny size, saved the way the public ones are; nothing is downloaded."""

import pytest
import torch

from minimodels.catalog import get_preset, run_experiment
from minimodels.engine.errors import CheckpointError, ConfigError
from minimodels.videoprism.text_encoder import text_tokenizer, tokenize_texts
from minimodels.videoprism.transformers_weights import config_to_transformers, load_transformers_videoprism

transformers = pytest.importorskip("transformers")

WORDS = "a red green blue square moves right in on the kitchen street garden phone beach video of cut no at all"


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    """{"lvt": a VideoPrismClipModel with its VideoPrismTokenizer, "vision": a VideoPrismVisionModel}, each saved
    with save_pretrained at the tiny presets' sizes, random weights."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("lvt", "vision")}
    torch.manual_seed(0)
    transformers.VideoPrismClipModel(config_to_transformers(get_preset("videoprism-lvt-tiny"))).save_pretrained(
        folders["lvt"])
    transformers.VideoPrismVisionModel(config_to_transformers(get_preset("videoprism-tiny"))).save_pretrained(
        folders["vision"])
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *((f"▁{w}", -1.0) for w in WORDS.split()), (".", -1.0),
              *((c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz")]
    transformers.VideoPrismTokenizer(vocab=pieces, extra_ids=0).save_pretrained(folders["lvt"])
    return folders


def quiet(folder, **settings):
    return {"loader.num_workers": "0", "train.progress": "false",
            **{k: str(folder / v) if str(v).endswith(".jsonl") else str(v) for k, v in settings.items()}}


def test_zero_shot_retrieval_and_classification_of_a_loaded_lvt_are_one_command_each(public, real_folder):
    for manifest, headline in (("captions.jsonl", ["t2v_r1", "v2t_r1"]), ("labels.jsonl", ["zs_label"])):
        sets = quiet(real_folder, init=public["lvt"], tokenizer=public["lvt"], eval_manifest=manifest,
                     **{"train.steps": 0})
        runs = [run_experiment("videoprism-stage1", seed=seed, sets=sets) for seed in (0, 1)]
        assert runs[0].headline == headline and "converted" in runs[0].info["init"]
        assert runs[0].metrics == runs[1].metrics  # the weights are the folder's, whatever the seed


def test_the_text_is_read_with_the_public_tokenizer_and_one_that_does_not_fit_is_refused(public):
    tokenizer = text_tokenizer(str(public["lvt"]), get_preset("videoprism-lvt-tiny"))
    assert type(tokenizer).__name__ == "VideoPrismTokenizer"
    ids, keep = tokenize_texts(tokenizer, ["A red square, in the kitchen!"], 16)
    assert tokenizer.convert_ids_to_tokens(ids[0, keep[0]].tolist()) == ["▁a", "▁red", "▁square", "▁in", "▁the",
                                                                          "▁kitchen", "."]
    with pytest.raises(ConfigError, match=rf"tokenizer=.*: {len(tokenizer)} tokens, but the text tower has 40"):
        text_tokenizer(str(public["lvt"]), get_preset("videoprism-lvt-tiny").__class__(vocab_size=40))


def test_a_frozen_probe_of_public_weights_on_a_labelled_folder_is_one_command(public, real_folder):
    for weights, found in ((public["vision"], "(converted)"), (public["lvt"], "(converted, under encoder.)")):
        r = run_experiment("videoprism-vit-probe", sets=quiet(
            real_folder, init=weights, manifest="labels.jsonl", eval_manifest="labels.jsonl", frozen_probe="true",
            **{"train.steps": 0, "probe.steps": 2, "probe.batch_size": 2, "probe.progress": "false"}))
        assert r.headline == ["frozen_acc_label"] and r.info["init"] == f"{weights} {found}"


def test_stage2_distils_from_a_public_lvt_and_its_student_can_start_from_a_public_encoder(public, real_folder):
    r = run_experiment("videoprism-stage2", sets=quiet(
        real_folder, teacher=public["lvt"], init=public["vision"], manifest="videos.jsonl",
        **{"train.steps": 2, "train.batch_size": 2}))
    assert len(r.history["train"].steps) == 2 and "converted" in r.info["init"]
    lvt = load_transformers_videoprism(public["lvt"])
    assert lvt.cfg == get_preset("videoprism-lvt-tiny")  # the teacher it read is the tiny preset's architecture


def test_init_takes_the_encoder_out_of_a_run_folder_and_refuses_another_size(real_folder, tmp_path):
    steps = {"train.steps": 1, "train.batch_size": 2}
    run_experiment("videoprism-stage1", sets=quiet(real_folder, manifest="captions.jsonl", **steps),
                   out_dir=tmp_path / "s1")
    probe = quiet(real_folder, init=tmp_path / "s1", manifest="labels.jsonl", **steps)
    assert "a run folder, under encoder." in run_experiment("videoprism-vit-probe", sets=probe).info["init"]
    with pytest.raises(CheckpointError, match=r"another preset's weights; choose the preset"):
        run_experiment("videoprism-vit-probe", sets={**probe, "model.width": "32", "model.mlp_dim": "128"})
    with pytest.raises(CheckpointError, match="no config.json there"):
        run_experiment("videoprism-vit-probe", sets={**probe, "init": str(tmp_path)})
