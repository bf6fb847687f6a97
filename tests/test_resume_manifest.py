"""Resumable writers resume only their own run: another --shard-size, --split or --limit (or shards of
unknown origin) is a one-line error naming what changed, and --overwrite starts over without stale shards."""

from __future__ import annotations

import json

from conftest import REPO

from tfface.cli.main import main

DDFA = REPO / "tests" / "fixtures" / "data" / "ddfa_list"


def _convert(out, *extra: str) -> int:
    return main(["data", "convert", "3ddfa_list", str(DDFA), "-o", str(out), "--list-file", str(DDFA / "train.list"),
                 "--param-file", str(DDFA / "param_norm.pkl"), "--whitening", str(DDFA / "param_whitening.pkl"),
                 "--no-progress", *extra])


def _files(out) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_mismatched_resume_is_refused_then_overwrite_starts_over(tmp_path, capsys):
    out = tmp_path / "out"
    assert _convert(out, "--shard-size", "2") == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix == ".tfrecord"}
    manifest = json.loads((out / "3ddfa_list.run.json").read_text())
    assert manifest["shards"]["shard_size"] == 2 and manifest["records"]["count"] == 3
    assert manifest["run"]["format"] == "3ddfa_list" and manifest["tfface_version"]
    capsys.readouterr()
    for extra, changed in ((["--shard-size", "1"], "shards.shard_size 2 -> 1"),
                           (["--shard-size", "2", "--split", "test"], "run.split None -> 'test'"),
                           (["--shard-size", "2", "--limit", "2"], "run.limit None -> 2")):
        assert _convert(out, *extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"tfface: error: {out}: holds 3ddfa_list shards of another run")
        assert changed in err and "rerun with --overwrite to start over" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix == ".tfrecord"} == before
    assert _convert(out, "--shard-size", "2") == 0  # the same run resumes
    assert json.loads((out / "summary.json").read_text())["resumed_shards"] == 2
    assert _convert(out, "--shard-size", "2", "--limit", "2", "--overwrite") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["written"] == 2 and summary["resumed_shards"] == 0
    assert _files(out) == ["3ddfa_list-00000.json", "3ddfa_list-00000.tfrecord", "3ddfa_list.run.json", "summary.json"]


def test_shards_without_a_manifest_are_not_resumed(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "3ddfa_list-00000.tfrecord").write_bytes(b"")
    (out / "3ddfa_list-00000.json").write_text("{}")
    assert _convert(out) == 2
    err = capsys.readouterr().err
    assert f"{out}: holds 2 3ddfa_list shard files with no run manifest (3ddfa_list.run.json)" in err
    assert _convert(out, "--overwrite") == 0 and json.loads((out / "summary.json").read_text())["written"] == 3


def test_output_that_is_a_file_is_one_line(tmp_path, capsys):
    out = tmp_path / "taken"
    out.write_text("x")
    assert _convert(out) == 2
    assert capsys.readouterr().err == f"tfface: error: {out}: cannot create the output folder (File exists)\n"


def test_train_resumes_only_the_same_config(tmp_path, capsys):
    from tfface.data.manifest import check_training_resume
    from tfface.training.config import config_to_dict, load_config

    out = tmp_path / "run"
    out.mkdir()
    first = load_config(overrides={"data": {"batch_size": 8}, "trainer": {"output_dir": str(out)}})
    (out / "config.json").write_text(json.dumps(config_to_dict(first)))  # as the trainer writes it
    (out / "phase0_joint.weights.h5").write_bytes(b"weights")
    (out / "backup" / "phase1_x").mkdir(parents=True)
    (out / "log_phase0_joint.csv").write_text("epoch,loss\n")
    cfg = tmp_path / "other.yaml"
    cfg.write_text("data: {batch_size: 4}\n")
    assert main(["train", "--config", str(cfg), "-o", str(out)]) == 2  # refused before any training
    err = capsys.readouterr().err
    assert err == (f"tfface: error: {out}: holds a training run with another config (data.batch_size 8 -> 4); "
                   f"rerun with --overwrite to start over, or choose another output folder than {out}\n")
    check_training_resume(out, config_to_dict(first))  # the same config resumes
    check_training_resume(out, config_to_dict(load_config(overrides={
        "data": {"batch_size": 8}, "trainer": {"output_dir": str(out), "verbose": 2}})))  # verbosity may change
    check_training_resume(out, config_to_dict(first), overwrite=True)
    assert _files(out) == ["config.json"]
