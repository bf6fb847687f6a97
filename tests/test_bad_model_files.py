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
    ("phases: [{name: a, learning_rate: 0}]", "'phases[0].learning_rate' must be > 0 or null. Received: 0.0"),
])
def test_out_of_range_config_values_name_the_key(tmp_path, capsys, yaml_text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text + "\n")
    with pytest.raises(TffaceError) as info:
        load_config(cfg)
    assert str(info.value) == f"{cfg}: {message}"
    assert main(["train", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err == f"tfface: error: {cfg}: {message}\n"


_BACKBONES = "['mobilenet_v1', 'mobilenet_v3_large', 'mobilenet_v3_small', 'resnet50']"


@pytest.mark.parametrize("yaml_text, message", [
    # NaN / inf anywhere: a NaN learning rate trained NaN weights and exited 0; a NaN loss weight switched it off
    ("phases: [{name: a, learning_rate: .nan}]", "'phases[0].learning_rate' must be a finite number. Received: nan"),
    ("phases: [{name: a, learning_rate: .inf}]", "'phases[0].learning_rate' must be a finite number. Received: inf"),
    ("optimizer: {learning_rate: .inf}", "'optimizer.learning_rate' must be a finite number. Received: inf"),
    ("optimizer: {weight_decay: .inf}", "'optimizer.weight_decay' must be a finite number. Received: inf"),
    ("model: {width_multiplier: .nan}", "'model.width_multiplier' must be a finite number. Received: nan"),
    ("loss: {param: .nan}", "'loss.param' must be a finite number. Received: nan"),
    ("loss: {id_margin: .nan}", "'loss.id_margin' must be a finite number. Received: nan"),
    ("loss: {param: -1}", "'loss.param' must be >= 0. Received: -1.0"),
    ("loss: {id_scale: -30}", "'loss.id_scale' must be > 0. Received: -30.0"),
    ("loss: {attribute_pos_weight: -1}", "'loss.attribute_pos_weight' must be >= 0. Received: -1.0"),
    ("loss: {attribute_pos_weight: [1, -2]}", "'loss.attribute_pos_weight' must be >= 0. Received: [1.0, -2.0]"),
    ("loss: {attribute_pos_weight: [1, .nan]}",
     "'loss.attribute_pos_weight' must be a finite number. Received: [1.0, nan]"),
    ("loss: {attribute_pos_weight: x}", "'loss.attribute_pos_weight' must be float or a list of float, got 'x'"),
    ("loss: {id_loss: triplet}", "'loss.id_loss' must be one of ['softmax', 'arcface', 'cosface']. Received: 'triplet'"),
    ("phases: [{name: a, losses: {identity: .nan}}]", "'phases[0].losses.identity' must be a finite number. Received: nan"),
    ("phases: [{name: a, losses: {identity: -1}}]", "'phases[0].losses.identity' must be >= 0. Received: -1.0"),
    ("phases: [{name: a, losses: {identity: x}}]", "'phases[0].losses.identity' must be float, got 'x'"),
    ("phases: [{name: a, trainable: backbone}]", "'phases[0].trainable' must be a list of str, got 'backbone'"),
    # values only the model build used to reject, with a traceback from deep inside it
    ("model: {backbone: resnet9000}", f"'model.backbone' must be one of {_BACKBONES}. Received: 'resnet9000'"),
    ("model: {image_size: 3}", "'model.image_size' must be >= 32. Received: 3"),
    ("model: {id_head: bogus}", "'model.id_head' must be one of ['softmax', 'arcface', 'cosface']. Received: 'bogus'"),
    ("model: {num_attributes: 0}", "'model.num_attributes' must be > 0. Received: 0"),
    ("model: {init_preset: 5}", "'model.init_preset' must be str or null, got 5"),
    # no phase trained nothing and still wrote model.keras
    ("phases: []", "'phases' must hold at least one phase. Received: []"),
    # the file named once, no stray dot after the section
    ("loss: 3", "'loss' must be a mapping, got 3"),
    ("data: {synthetic: [1]}", "'data.synthetic' must be a mapping, got [1]"),
    ("phases: [3]", "'phases[0]' must be a mapping, got 3"),
])
def test_bad_training_config_values_are_one_line_before_anything_is_written(tmp_path, capsys, yaml_text, message):
    out = tmp_path / "run"
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"trainer: {{output_dir: {out}}}\n{yaml_text}\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err == f"tfface: error: {cfg}: {message}\n"
    assert not out.exists()


def test_config_json_is_strict_json(tmp_path):
    from tfface.losses.joint import LossConfig
    from tfface.training.trainer import train

    with pytest.raises(ValueError, match=r"^loss param must be a finite number. Received: nan$"):
        LossConfig(param=float("nan"))  # the same rule for configs built in code
    out = tmp_path / "run"
    config = load_config(overrides={"trainer": {"output_dir": str(out)}})
    config.optimizer.learning_rate = float("inf")  # past load_config: the writer refuses a bare Infinity token
    with pytest.raises(TffaceError, match=r"config.json: the training config holds a NaN or infinite value"):
        train(config)
    assert not out.exists()
