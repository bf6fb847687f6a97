"""Hostile model files and configs are one line naming the file or key: truncated/hostile preset folders,
garbage SavedModels, malformed metadata.json beside an exported file, out-of-range training config values."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import SAMPLE_IMAGE
from tfface.cli.main import main
from tfface.errors import TffaceError
from tfface.models.presets import DEFAULT_PRESET, preset_dir
from tfface.runtimes import load_runner
from tfface.training.config import load_config


@pytest.fixture
def preset_copy(tmp_path):
    folder = tmp_path / "preset"
    shutil.copytree(preset_dir(DEFAULT_PRESET), folder)
    return folder


def test_broken_preset_folders(preset_copy, capsys):
    # the Keras path reads config.json and the weights
    config = json.loads((preset_copy / "config.json").read_text())
    (preset_copy / "config.json").write_text(json.dumps(config)[:200])  # truncated
    with pytest.raises(TffaceError, match=rf"^{preset_copy}: cannot load this model \(malformed JSON"):
        load_runner(preset_copy, runtime="keras")
    (preset_copy / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "preprocessor"}))
    with pytest.raises(TffaceError, match=rf"^{preset_copy}: cannot load this model \(missing key 'preprocessor'\)"):
        load_runner(preset_copy, runtime="keras")
    (preset_copy / "config.json").write_text(json.dumps(config))
    weights = preset_copy / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:5000])  # truncated weights
    rc = main(["reconstruct", str(SAMPLE_IMAGE), "--json", "--preset", str(preset_copy), "--runtime", "keras"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"tfface: error: {preset_copy}: cannot load this model (") and err.count("\n") == 1
    # the default path runs the shipped model.tflite: a truncated one is one line too
    shipped = preset_copy / "model.tflite"
    shipped.write_bytes(shipped.read_bytes()[:5000])
    rc = main(["reconstruct", str(SAMPLE_IMAGE), "--json", "--preset", str(preset_copy)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("tfface: error: ") and str(preset_copy) in err and err.count("\n") == 1


def test_garbage_saved_model_and_malformed_metadata(tmp_path):
    garbage = tmp_path / "sm"
    garbage.mkdir()
    (garbage / "saved_model.pb").write_bytes(b"\x08\x01garbage" * 10)
    with pytest.raises(TffaceError, match=rf"^{garbage}: "):
        load_runner(garbage)
    export = tmp_path / "export"
    export.mkdir()
    (export / "m.onnx").write_bytes(b"not onnx")
    (export / "metadata.json").write_text('{"files": {"onnx": "m.onnx"')  # malformed
    with pytest.raises(TffaceError, match=rf"^{export / 'metadata.json'}: not valid JSON"):
        load_runner(export / "m.onnx")
    (export / "metadata.json").write_text('{"files": {}}')  # valid JSON, keys missing
    with pytest.raises(TffaceError, match=rf"^{export / 'm.onnx'}: cannot load this model \(missing key"):
        load_runner(export / "m.onnx")


@pytest.mark.parametrize("yaml_text, message", [
    ("data: {batch_size: 0}", "'data.batch_size' must be > 0. Received: 0"),
    ("data: {batch_size: -4}", "'data.batch_size' must be > 0. Received: -4"),
    ("data: {steps_per_epoch: 0}", "'data.steps_per_epoch' must be > 0. Received: 0"),
    ("optimizer: {learning_rate: -0.1}", "'optimizer.learning_rate' must be > 0. Received: -0.1"),
    ("model: {dropout: 1.0}", "'model.dropout' must be in [0, 1). Received: 1.0"),
    ("model: {branch_pooling: max}", "'model.branch_pooling' must be avg or gdc. Received: 'max'"),
    ("model: {branch_last_stride: 3}", "'model.branch_last_stride' must be 1 or 2. Received: 3"),
    ("model: {mirror_average: true}", "'model.mirror_average' needs an identity/attribute branch: set "
                                      "'model.branch_blocks' > 0. Received: mirror_average=True, branch_blocks=0"),
    ("model: {branch_pooling: gdc}", "'model.branch_pooling' needs an identity/attribute branch: set "
                                     "'model.branch_blocks' > 0. Received: branch_pooling='gdc', branch_blocks=0"),
    ("phases: [{name: a, learning_rate: 0}]", "'phases[0].learning_rate' must be > 0 or null. Received: 0"),
])
def test_out_of_range_config_values_name_the_key(tmp_path, capsys, yaml_text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text + "\n")
    with pytest.raises(TffaceError) as info:
        load_config(cfg)
    assert str(info.value) == f"{cfg}: {message}"
    assert main(["train", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err == f"tfface: error: {cfg}: {message}\n"
