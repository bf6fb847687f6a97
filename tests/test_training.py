"""Training the FaceModel with fit: a step lowers the loss, masks stop gradients, tf.distribute gives
the single-device loss, an interrupted run resumes, `tfface train` runs a YAML config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO

from tfface.losses import JointLoss, LossConfig
from tfface.models.backbones import build_backbone
from tfface.models.face_model import FaceModel
from tfface.training.config import load_config
from tfface.training.synthetic import synthetic_batch
from tfface.training.trainer import build_geometry, train

SIZE = 32


@pytest.fixture(scope="module")
def geometry():
    return build_geometry(SIZE)


def tiny_model(geometry, optimizer=None, **loss_weights) -> FaceModel:
    keras.utils.set_random_seed(0)
    model = FaceModel(build_backbone("mobilenet_v1", SIZE, 0.25), id_latent_dim=8, res_latent_dim=4, num_ids=5)
    config = LossConfig(param=1.0, id_consistency=0.01, **loss_weights)
    # Eager: tracing the train step takes longer than the few steps a test runs.
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), joint_loss=JointLoss(config, geometry),
                  run_eagerly=True)
    return model


def total_loss(model, images, labels) -> float:
    return float(model._forward_losses(tf.constant(images), labels, training=True)[2])


def test_one_step_lowers_the_joint_loss(geometry):
    images, labels = synthetic_batch(geometry, 8, num_ids=5, seed=1)
    model = tiny_model(geometry)
    before = total_loss(model, images, labels)
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert {"loss", "wpdc_loss", "attributes_loss", "identity_loss", "param_rmse", "attribute_accuracy"} <= set(logs)
    assert logs["loss"] == pytest.approx(before, rel=1e-4)
    assert total_loss(model, images, labels) < before


def test_unlabelled_samples_give_exactly_zero_gradient(geometry):
    images, labels = synthetic_batch(geometry, 6, num_ids=5, label_rate=1.0, seed=2)
    mask = np.array([1, 0, 1, 0, 1, 0], np.float32)
    for key in ("has_params", "has_landmarks", "has_attributes", "has_identity"):
        labels[key] = mask
    model = tiny_model(geometry)

    def grads(labels):
        with tf.GradientTape(persistent=True) as tape:
            outputs = model(images, training=True)
            total = model.joint_loss.total(model.joint_loss(labels, outputs))
        heads = {k: tape.gradient(total, outputs[k]).numpy() for k in ("params", "attributes", "id_logits")}
        return heads, [g.numpy() for g in tape.gradient(total, model.trainable_variables)]

    heads, weights = grads(labels)
    for key, g in heads.items():
        assert np.all(g[mask == 0] == 0), key  # exactly, not approximately
        assert np.all(np.abs(g[mask == 1]).sum(axis=-1) > 0), key
    # Garbage in the unlabelled samples' labels changes nothing at all.
    garbage = {k: v.copy() for k, v in labels.items()}
    for key in ("params", "landmarks", "attributes"):
        garbage[key][mask == 0] = 1e3
    garbage["identity"][mask == 0] = 4
    _, weights_garbage = grads(garbage)
    for a, b in zip(weights, weights_garbage):
        np.testing.assert_array_equal(a, b)


def test_a_task_without_labels_has_loss_zero_and_its_head_does_not_move(geometry):
    images, labels = synthetic_batch(geometry, 8, num_ids=5, seed=3)
    labels["has_attributes"] = np.zeros(8, np.float32)
    labels["attributes"] = np.zeros_like(labels["attributes"])
    model = tiny_model(geometry)
    head = [w.copy() for w in model.get_layer("fc_attributes").get_weights()]
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert logs["attributes_loss"] == 0.0 and np.isfinite(logs["loss"])
    for a, b in zip(head, model.get_layer("fc_attributes").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_mixed_precision_keeps_outputs_and_loss_in_float32(geometry):
    images, labels = synthetic_batch(geometry, 4, num_ids=5, seed=4)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_model(geometry)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        logs = model.train_on_batch(images, labels, return_dict=True)
        outputs = model(images, training=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.backbone.compute_dtype == "float16"
    assert all(v.dtype == tf.float32 for v in outputs.values())
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0


DISTRIBUTED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from tfface.losses import JointLoss, LossConfig
    from tfface.models.backbones import build_backbone
    from tfface.models.face_model import FaceModel
    from tfface.training.synthetic import synthetic_batch
    from tfface.training.trainer import build_geometry

    geom = build_geometry(32)
    images, labels = synthetic_batch(geom, 8, num_ids=5, label_rate=0.6, seed=5)
    data = tf.data.Dataset.from_tensors((images, labels))
    config = LossConfig(param=1.0, vertex=0.1, marn_pose=0.1, landmarks=0.01)  # pairs stay per replica: no id_consistency
    def run(strategy, weights=None, clipnorm=None):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = FaceModel(build_backbone("mobilenet_v1", 32, 0.25), id_latent_dim=8, res_latent_dim=4,
                              num_ids=5, sync_batch_norm=True)
            if weights is not None:
                model.set_weights(weights)
            start = model.get_weights()
            before = [v.numpy() for v in model.trainable_variables]
            model.compile(optimizer=keras.optimizers.SGD(0.01, clipnorm=clipnorm), joint_loss=JointLoss(config, geom))
        logs = model.fit(data, epochs=1, verbose=0, shuffle=False).history
        steps = [v.numpy() - b for v, b in zip(model.trainable_variables, before)]
        return start, {k: v[0] for k, v in logs.items()}, model.get_weights(), steps
    start, one, w_one, _ = run(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    _, two, w_two, _ = run(mirrored, start)
    # Per variable: how far the two updates differ, relative to how far the update moved it.
    moved = [float(np.abs(a - s).max()) for a, s in zip(w_one, start)]
    rel = max(float(np.abs(a - b).max()) / m for a, b, m in zip(w_one, w_two, moved) if m > 1e-3)
    # clipnorm 0.05 clips most variables' gradients: the summed gradient must be clipped, not each half.
    _, _, _, d_one = run(tf.distribute.get_strategy(), start, clipnorm=0.05)
    _, _, _, d_two = run(mirrored, start, clipnorm=0.05)
    # The clip itself, on two replicas' gradient halves (3, 0) and (0, 4): their sum (3, 4) clipped to norm 1
    # is (0.6, 0.8), each replica's share half of it; under loss scaling (x8) the same, in scaled units.
    from tfface.models.face_model import _clip_across_replicas
    def share(optimizer, scale):
        def fn():
            first = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group == 0, tf.float32)
            g = (first * tf.constant([3.0, 0.0]) + (1 - first) * tf.constant([0.0, 4.0])) * scale
            return _clip_across_replicas([g], optimizer)[0]
        return [v.numpy().tolist() for v in mirrored.experimental_local_results(mirrored.run(fn))]
    shares = {"plain": share(keras.optimizers.SGD(0.1, clipnorm=1.0), 1.0),
              "loss_scaled": share(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1, clipnorm=1.0),
                                                                       initial_scale=8.0), 8.0)}
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "one": one, "two": two, "shares": shares,
                      "update_rel_diff": rel, "moved": max(moved),
                      "largest_step": max(float(np.abs(d).max()) for d in d_one),
                      "step_diff": max(float(np.abs(a - b).max()) for a, b in zip(d_one, d_two))}))
""")


@pytest.mark.slow
def test_mirrored_strategy_on_two_devices_matches_one_device():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", DISTRIBUTED], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert set(result["one"]) == set(result["two"]) and "landmarks_loss" in result["one"]
    for key, value in result["one"].items():
        assert result["two"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert result["moved"] > 1e-3 and result["update_rel_diff"] < 1e-3
    # Steps are at most lr * clipnorm = 5e-4; clipping each replica's half would double them (measured
    # 3e-4 apart), the summed gradient clipped once agrees within float32 rounding of the weights (~1e-6).
    assert 5e-5 < result["largest_step"] <= 5e-4 * (1 + 1e-3)
    assert result["step_diff"] < 5e-6, result["step_diff"]
    # mixed_float16 wraps the optimizer in a LossScaleOptimizer: the clip reads the wrapped optimizer's
    # clipnorm and works on unscaled gradients (it used to leave them to each replica's own clip)
    np.testing.assert_allclose(result["shares"]["plain"], [[0.3, 0.4]] * 2, atol=1e-6)
    np.testing.assert_allclose(result["shares"]["loss_scaled"], [[2.4, 3.2]] * 2, atol=1e-5)


def tiny_config(tmp_path, epochs: int = 3):
    return load_config(overrides={
        "model": {"init_preset": None, "image_size": SIZE, "width_multiplier": 0.25, "num_ids": 5},
        "data": {"batch_size": 8, "steps_per_epoch": 2, "validation_steps": 0, "synthetic": {"num_batches": 2}},
        "phases": [{"name": "joint", "epochs": epochs}],
        "trainer": {"output_dir": str(tmp_path / "run"), "tensorboard": False, "verbose": 0, "run_eagerly": True},
    })


class Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]
        raise KeyboardInterrupt("killed after the first epoch")


class Recorder(keras.callbacks.Callback):
    epochs: list[int]

    def on_train_begin(self, logs=None):
        self.start_weights, self.epochs = [w.copy() for w in self.model.get_weights()], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


@pytest.mark.slow
def test_an_interrupted_fit_resumes_at_the_next_epoch(tmp_path):
    config = tiny_config(tmp_path)
    crash = Crash()
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[crash])
    recorder = Recorder()
    train(config, callbacks=[recorder])
    assert recorder.epochs == [1, 2]  # epoch 2 and 3 of 3, not from the start
    for a, b in zip(crash.weights, recorder.start_weights):
        np.testing.assert_array_equal(a, b)
    out = tmp_path / "run"
    assert (out / "phase0_joint.weights.h5").is_file() and (out / "model.keras").is_file()
    rows = (out / "log_phase0_joint.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]  # the CSV log continues too


@pytest.mark.slow
def test_tfface_train_cli_runs_a_yaml_config(tmp_path):
    from tfface.cli.main import main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(textwrap.dedent(f"""
        model: {{init_preset: null, image_size: {SIZE}, width_multiplier: 0.25, num_ids: 5}}
        data: {{batch_size: 8, steps_per_epoch: 2, validation_steps: 1, synthetic: {{num_batches: 2}}}}
        phases:
          - {{name: encoder, epochs: 1, trainable: [backbone, params, identity, residual], losses: {{shape: 0.0}}}}
          - {{name: decoders, epochs: 1, trainable: [decoders], losses: {{wpdc: 0.0, landmarks: 0.0}}}}
        trainer: {{verbose: 0, run_eagerly: true}}
    """))
    assert main(["train", "--config", str(cfg), "-o", str(tmp_path / "out")]) == 0
    model = keras.saving.load_model(tmp_path / "out" / "model.keras")
    assert isinstance(model, FaceModel)
    header = (tmp_path / "out" / "log_phase1_decoders.csv").read_text().splitlines()[0].split(",")
    assert "shape_loss" in header and "wpdc_loss" not in header and "val_loss" in header
    assert any((tmp_path / "out" / "tensorboard" / "phase0_encoder").rglob("events.out.tfevents.*"))
    cfg.write_text("trainer: {outptu_dir: x}\n")
    assert main(["train", "--config", str(cfg)]) == 2


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")
                                        if p.name != "data_hybrid.yaml"))
def test_shipped_configs_load_with_their_pipeline_configs(name):
    """Every config in configs/ parses (unknown keys are errors) and names a pipeline config that parses."""
    from tfface.data.pipeline import load_pipeline_config

    config = load_config(REPO / "configs" / name)
    assert config.phases and all(p.epochs > 0 for p in config.phases)
    if config.data.source == "pipeline":
        pipeline = load_pipeline_config(REPO / config.data.pipeline_config)
        assert pipeline.batch_size == config.data.batch_size, "quotas must add up to the global batch"


def test_init_weights_of_another_model_is_one_clear_error(tmp_path):
    from tfface.errors import TffaceError
    from tfface.training.trainer import build_model

    small = {"init_preset": None, "image_size": SIZE, "width_multiplier": 0.25}
    build_model(load_config(overrides={"model": {**small, "num_ids": 5}}).model).save_weights(tmp_path / "five.weights.h5")
    same = build_model(load_config(overrides={"model": {**small, "num_ids": 5,
                                                        "init_weights": str(tmp_path / "five.weights.h5")}}).model)
    assert same.get_layer("id_classifier").get_weights()[0].shape[-1] == 5
    with pytest.raises(TffaceError, match=r"five\.weights\.h5 does not fit this model\.\* config"):
        build_model(load_config(overrides={"model": {**small, "num_ids": 7,
                                                     "init_weights": str(tmp_path / "five.weights.h5")}}).model)
