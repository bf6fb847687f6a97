"""The masked task losses: exact values on synthetic labels, zero for perfect predictions, masking."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfface.errors import TffaceError
from tfface.losses import JointLoss, LossConfig, masked_mean
from tfface.losses import face3d, recognition
from tfface.losses.geometry import FaceGeometry
from tfface.training.config import load_config
from tfface.training.synthetic import synthetic_batch


@pytest.fixture(scope="module")
def geometry(default_preset):
    return FaceGeometry(default_preset.param_stats, default_preset.shape_model, 120)


@pytest.fixture(scope="module")
def batch(geometry):
    return synthetic_batch(geometry, 6, num_ids=3, label_rate=1.0, seed=3)


def test_masked_mean_averages_over_labelled_samples_only():
    values = tf.constant([1.0, 2.0, 30.0, 4.0])
    loss, count = masked_mean(values, tf.constant([1.0, 1.0, 0.0, 1.0]))
    assert float(loss) == pytest.approx(7.0 / 3.0) and float(count) == 3.0
    loss, count = masked_mean(values, tf.zeros(4))
    assert float(loss) == 0.0 and float(count) == 0.0


def test_geometric_losses_are_zero_for_the_truth_and_exact_for_a_shift(geometry, batch):
    target = tf.constant(batch[1]["params"])
    pred = geometry.normalize(target)
    for fn in (face3d.param_mse, face3d.wpdc, face3d.vertex_distance, face3d.pose_projection):
        assert np.abs(fn(geometry, pred, target).numpy()).max() < 1e-3, fn.__name__
    for part in ("id", "exp"):
        assert np.abs(face3d.basis_distance(geometry, pred, target, part).numpy()).max() < 1e-6
    landmarks = tf.constant(batch[1]["landmarks"])
    assert np.abs(face3d.landmark_projection(geometry, pred, landmarks).numpy()).max() < 1e-3

    # Moving the camera 2 px right moves every projected point 2 px: L_p = L_68 = vertex = 2 px.
    shifted = target.numpy().copy()
    shifted[:, 3] += 2.0
    pred = geometry.normalize(shifted)
    for fn in (face3d.vertex_distance, face3d.pose_projection):
        np.testing.assert_allclose(fn(geometry, pred, target).numpy(), 2.0, atol=1e-3)
    np.testing.assert_allclose(face3d.landmark_projection(geometry, pred, landmarks).numpy(), 2.0, atol=1e-3)
    # WPDC weighs the only wrong parameter (the x translation) with weight 1: plain squared error / 62.
    expected = (2.0 / geometry.param_stats.std[3]) ** 2 / 62
    np.testing.assert_allclose(face3d.wpdc(geometry, pred, target).numpy(), expected, rtol=1e-4)


def test_marn_identity_loss_matches_the_basis_formula(geometry, batch):
    target = batch[1]["params"]
    pred_params = target.copy()
    pred_params[:, 12] += 1000.0  # first identity coefficient
    got = face3d.basis_distance(geometry, geometry.normalize(pred_params), tf.constant(target), "id").numpy()
    offsets = 1000.0 * geometry.model.id_basis[0] * geometry.shape_scale  # (68, 3)
    np.testing.assert_allclose(got, np.mean(np.sum(offsets ** 2, -1)), rtol=1e-3)


def test_attribute_bce_positive_weight():
    logits = tf.constant([[2.0, -1.0]])
    labels = tf.constant([[1.0, 0.0]])
    got = recognition.attribute_bce(logits, labels, tf.constant([3.0, 3.0])).numpy()
    sig = 1 / (1 + np.exp(-np.array([2.0, -1.0])))
    expected = np.mean([-3.0 * np.log(sig[0]), -np.log(1 - sig[1])])
    np.testing.assert_allclose(got, [expected], rtol=1e-5)


@pytest.mark.parametrize("kind", ["arcface", "cosface"])
def test_angular_margin_logits(kind):
    cos = tf.constant([[0.6, 0.2, -0.1]])
    logits = recognition.margin_logits(cos, tf.constant([0]), kind, scale=10.0, margin=0.3).numpy()
    target = np.cos(np.arccos(0.6) + 0.3) if kind == "arcface" else 0.6 - 0.3
    np.testing.assert_allclose(logits, [[10 * target, 2.0, -1.0]], rtol=1e-5)
    ce = recognition.identity_ce(cos, tf.constant([0]), kind, 10.0, 0.3).numpy()
    assert ce[0] > recognition.identity_ce(cos * 10, tf.constant([0]), "softmax", 1.0, 0.0).numpy()[0]


def test_identity_consistency_pairs_only_labelled_same_identities():
    shape_id = tf.constant(np.stack([np.zeros((68, 3)), np.full((68, 3), 2.0), np.full((68, 3), 9.0)]), tf.float32)
    ids = tf.constant([4, 4, 4])
    loss, count = recognition.identity_consistency(shape_id, ids, tf.constant([1.0, 1.0, 0.0]), scale=1.0)
    assert float(count) == 2.0  # (0, 1) and (1, 0); sample 2 is unlabelled
    assert float(loss) == pytest.approx(12.0)  # |(2, 2, 2)|^2 per point
    loss, count = recognition.identity_consistency(shape_id, tf.constant([1, 2, 3]), tf.ones(3), scale=1.0)
    assert float(loss) == 0.0 and float(count) == 0.0


def test_joint_loss_without_labels_is_zero_not_nan(geometry, batch):
    labels = {k: tf.constant(v) for k, v in batch[1].items()}
    for key in ("has_params", "has_landmarks", "has_attributes", "has_identity"):
        labels[key] = tf.zeros_like(labels[key])
    outputs = {"params": tf.random.normal([6, 62]), "attributes": tf.random.normal([6, 40]),
               "id_logits": tf.random.uniform([6, 3], -1, 1), "shape_id": tf.random.normal([6, 68, 3]),
               "shape_res": tf.random.normal([6, 68, 3])}
    config = LossConfig(param=1.0, vertex=1.0, marn_id=1.0, marn_exp=1.0, marn_pose=1.0, id_consistency=1.0)
    losses = JointLoss(config, geometry)(labels, outputs)
    assert set(losses) == {n for n, w in config.weights().items() if w > 0}
    assert all(float(v) == 0.0 and float(c) == 0.0 for v, c in losses.values())


def test_loss_config_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown loss name"):
        LossConfig().with_weights({"wpcd": 1.0})
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss:\n  wpdc: 1.0\n  atributes: 2.0\n")
    with pytest.raises(TffaceError, match=r"bad.yaml: unknown config key 'loss.atributes'"):
        load_config(bad)
    bad.write_text("phases:\n  - {name: x, epochs: 1, losses: {nope: 1.0}}\n")
    with pytest.raises(TffaceError, match=r"bad.yaml: .*phase 'x': unknown loss or part \['nope'\]"):
        load_config(bad)
    bad.write_text("data:\n  batch_size: many\n")
    with pytest.raises(TffaceError, match=r"'data.batch_size' must be int"):
        load_config(bad)


def test_distillation_losses_hand_computed_values():
    teacher = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    student = tf.constant([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, -3.0]])  # norms do not matter
    np.testing.assert_allclose(recognition.distill_cosine(student, teacher).numpy(),
                               [0.0, 1.0 - np.sqrt(0.5), 2.0], atol=1e-6)
    # teacher cosines are all 0 off the diagonal; the student's: (0,1) = sqrt(.5), (0,2) = (1,2) = 0
    share, count = recognition.similarity_structure(student, teacher, tf.ones(3))
    assert float(count) == 6.0 and float(share) == pytest.approx(2 * 0.5 / 6.0, abs=1e-6)
    share, count = recognition.similarity_structure(student, teacher, tf.constant([1.0, 0.0, 1.0]))
    assert float(count) == 2.0 and float(share) == pytest.approx(0.0, abs=1e-6)


def test_distillation_gradient_is_zero_where_the_teacher_mask_is_zero(geometry):
    rng = np.random.default_rng(0)
    emb = tf.Variable(rng.normal(size=(4, 8)).astype(np.float32))
    labels = {"teacher": tf.constant(rng.normal(size=(4, 8)).astype(np.float32)),
              "has_teacher": tf.constant([1.0, 0.0, 1.0, 0.0])}
    loss = JointLoss(LossConfig(wpdc=0.0, landmarks=0.0, shape=0.0, attributes=0.0, identity=0.0,
                                distill=1.0, distill_structure=1.0), geometry)
    with tf.GradientTape() as tape:
        total = loss.total(loss(labels, {"embedding": tf.math.l2_normalize(emb, axis=-1)}))
    grad = tape.gradient(total, emb).numpy()
    assert np.abs(grad[[1, 3]]).max() == 0.0 and np.abs(grad[[0, 2]]).max() > 1e-3
    empty = {**labels, "has_teacher": tf.zeros(4)}
    assert float(loss.total(loss(empty, {"embedding": emb}))) == 0.0
