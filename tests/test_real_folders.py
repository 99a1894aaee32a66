"""Every training experiment on a folder a researcher would bring (``real_folder``: mp4, webm and mkv clips, a
portrait one, one cut mid-stream and one that is no video), from the command line's settings: it trains on one
manifest and evaluates on a held-out one, the broken files left out by name, never trained on as blank frames."""


from minimodels.catalog import run_experiment


def sets(folder, **extra):
    """--set values: manifests by name in ``folder``, the loader in this process, no progress bars."""
    quiet = {f"{k.split('.')[0]}.progress": "false" for k in extra if k.endswith(".steps")}
    return {"loader.num_workers": "0", **quiet,
            **{k: str(folder / v) if str(v).endswith(".jsonl") else str(v) for k, v in extra.items()}}


def test_stage1_trains_on_captions_and_evaluates_retrieval_and_zero_shot_classes(real_folder, recwarn):
    common = {"train.steps": 2, "train.batch_size": 2, "model.text_layers": 1, "manifest": "captions.jsonl"}
    r = run_experiment("videoprism-stage1", sets=sets(real_folder, **common, eval_manifest="captions.jsonl"))
    assert r.headline == ["t2v_r1", "v2t_r1"] and r.chance["t2v_r5"] == 100.0  # 5 videos decode, 2 do not
    assert any("cut.mkv: truncated" in str(w.message) for w in recwarn)
    assert any("notes.mp4: not a readable video file" in str(w.message) for w in recwarn)
    zero_shot = run_experiment("videoprism-stage1", sets=sets(real_folder, **common, eval_manifest="labels.jsonl"))
    assert zero_shot.headline == ["zs_label"] and zero_shot.chance["zs_label"] == 0.4  # red, green: 2 of 5 each


def test_vit_probe_learns_the_labels_of_a_folder(real_folder):
    r = run_experiment("videoprism-vit-probe", sets=sets(real_folder, **{
        "train.steps": 2, "train.batch_size": 2, "manifest": "labels.jsonl", "eval_manifest": "labels.jsonl"}))
    assert r.headline == ["acc_label"] and r.chance["acc_label"] == 0.4


def test_stage2_distils_on_videos_alone_and_probes_a_labelled_pair(real_folder, tmp_path):
    r = run_experiment("videoprism-stage2", sets=sets(real_folder, **{
        "train.steps": 2, "train.batch_size": 2, "probe.steps": 2, "probe.batch_size": 2,
        "manifest": "videos.jsonl", "probe_manifest": "labels.jsonl", "eval_manifest": "labels.jsonl"}))
    assert r.headline == ["acc_label", "stage1_acc_label"] and r.chance["acc_label"] == 0.4
    assert {"late_loss_visible", "late_loss_global", "jigsaw_visible", "jigsaw_masked"} <= set(r.metrics)


def test_mvgpt_pretrains_on_transcripts_fine_tunes_on_segments_and_scores_captions(real_folder, monkeypatch):
    from minimodels.eval import captions

    monkeypatch.setattr(captions, "java_available", lambda: False)  # no JVM start-ups here
    r = run_experiment("mvgpt-captioning", sets=sets(real_folder, **{
        "pretraining.steps": 2, "pretraining.batch_size": 2, "finetuning.steps": 2, "finetuning.batch_size": 2,
        "max_caption_len": 4,
        "pretrain_manifest": "narrated.jsonl", "manifest": "segments.jsonl", "eval_manifest": "segments.jsonl"}))
    assert {"bleu4", "rouge_l", "cider", "final_pretrain_loss", "final_finetune_loss"} <= set(r.metrics)
    assert r.info["pretraining_pairs"] == 14  # 7 videos, 3 utterances each: 2 pairs a video, broken ones too
    assert r.info["held_out"] == 10 and r.info["examples"][0]["utterance"] == "first we put the pan on then the oil " \
                                                                              "goes in"


def test_minigpt4video_answers_a_folders_questions_by_kind(real_folder):
    """Stage 3 alone, as one fine-tunes a released checkpoint on TVQA (stages 1 and 2 align on other data)."""
    r = run_experiment("minigpt4video-qa", sets=sets(real_folder, **{
        "image_stage.steps": 0, "caption_stage.steps": 0, "qa_stage.steps": 2, "qa_stage.batch_size": 2,
        "manifest": "questions.jsonl", "eval_manifest": "questions.jsonl"}))
    kinds = {name.rsplit("_", 1)[0] for name in r.metrics if name.startswith("mcq_ranking")}
    assert kinds == {"mcq_ranking_frames", "mcq_ranking_subtitles"}
