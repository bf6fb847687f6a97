"""Attribute metrics against hand-computed cases, real CelebA labels with synthetic predictions of
known accuracy (skipped without shared data), the report, and the model check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_path
from tfface.errors import DataFileError, TffaceError
from tfface.evaluation.attributes import (attribute_metrics, celeba_split, choose_thresholds, evaluate_attributes,
                                         write_attributes_report)


def test_metrics_hand_computed():
    labels = np.array([[1, 0], [1, 0], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.4, 0.1], [0.7, 0.3], [0.2, 0.6]])
    m = attribute_metrics(probs, labels, ["a", "b"])
    a, b = m["per_attribute"]
    # a: predictions 1,0,1,0 vs 1,1,1,0 -> acc 3/4; TPR 2/3, TNR 1 -> balanced 5/6; majority 3/4
    assert a["accuracy"] == 0.75 and a["balanced_accuracy"] == pytest.approx(5 / 6) and a["majority_accuracy"] == 0.75
    # b: predictions 0,0,0,1 vs 0,0,1,0 -> acc 2/4; TPR 0, TNR 2/3 -> balanced 1/3; majority 3/4
    assert b["accuracy"] == 0.5 and b["balanced_accuracy"] == pytest.approx(1 / 3) and b["majority_accuracy"] == 0.75
    assert m["mean_accuracy"] == 0.625 and m["majority_mean_accuracy"] == 0.75
    assert m["mean_balanced_accuracy"] == pytest.approx((5 / 6 + 1 / 3) / 2)


def test_thresholds_move_only_where_0_5_is_far_from_balanced():
    # 100 faces. a: calibrated, 0.5 is already best. b: 10 % positive, the model puts its positives at
    # 0.3-0.45 (never predicted at 0.5: balanced 0.5); c: like a, but 0.45 is slightly better than 0.5.
    rng = np.random.default_rng(0)
    y = np.zeros((100, 3), np.int8)
    y[:50, 0], y[:10, 1], y[:50, 2] = 1, 1, 1
    p = np.where(y == 1, 0.8, 0.2) + rng.uniform(-0.1, 0.1, (100, 3))
    p[:10, 1] = np.linspace(0.3, 0.45, 10)
    p[:2, 2] = 0.47  # two positives at 0.47: a lower threshold gains 0.02 accuracy + 0.02 balanced, < min_gain
    t = choose_thresholds(p, y)
    assert t[0] == 0.5 and t[2] == 0.5
    # b: at 0.5 acc 0.9 + balanced 0.5; at 0.3 every face right (negatives are <= 0.3 only below 0.3)
    assert t[1] == pytest.approx(0.3)
    assert 0.3 <= choose_thresholds(p, y, min_gain=0.0)[2] <= 0.45  # any gain moves it (0.04 here)
    ok = attribute_metrics(p, y, ["a", "b", "c"], t)["per_attribute"][1]
    assert ok["accuracy"] == 1.0 and ok["balanced_accuracy"] == 1.0


def test_real_celeba_labels_with_predictions_of_known_accuracy(tmp_path):
    pytest.importorskip("tfface.data.celeba", reason="the data helper's CelebA reader is not in yet")
    names, paths, labels = celeba_split(shared_path("celeba"), "all")
    assert len(names) == 40 and names[0] == "5_o_Clock_Shadow" and labels.shape == (len(paths), 40)
    assert len(paths) == 528 and set(np.unique(labels)) == {0.0, 1.0}
    rng = np.random.default_rng(0)
    flip = np.zeros_like(labels, bool)
    wrong = (np.arange(40) % 5 + 1) * len(labels) // 20  # attribute j: 5 % .. 25 % wrong
    for j, w in enumerate(wrong):
        flip[rng.choice(len(labels), w, replace=False), j] = True
    probs = np.where(flip, 1 - labels, labels) * 0.8 + 0.1
    m = attribute_metrics(probs, labels, names)
    np.testing.assert_allclose([p["accuracy"] for p in m["per_attribute"]], 1 - wrong / len(labels))
    positive = labels.mean(axis=0)
    np.testing.assert_allclose([p["majority_accuracy"] for p in m["per_attribute"]], np.maximum(positive, 1 - positive))
    # always answering the majority class: accuracy = the baseline, balanced accuracy = 0.5 exactly
    base = attribute_metrics(np.tile(positive >= 0.5, (len(labels), 1)).astype(float), labels, names)
    assert base["mean_accuracy"] == pytest.approx(m["majority_mean_accuracy"])
    assert base["mean_balanced_accuracy"] == pytest.approx(0.5)
    out = write_attributes_report({"metrics": {"split": "all", **m}}, tmp_path, "synthetic")
    assert json.loads((out / "metrics.json").read_text())["faces"] == 528
    assert (out / "attributes.png").stat().st_size > 20_000 and "| **mean** |" in (out / "report.md").read_text()


def test_wrong_layout_and_missing_head_are_clear_errors(tmp_path):
    from tfface.runtimes import load_runner

    with pytest.raises(TffaceError, match="this model has no attributes output"):
        evaluate_attributes(load_runner(), tmp_path)
    with pytest.raises(DataFileError, match=r"not a CelebA folder: the attribute list .* is missing"):
        celeba_split(tmp_path, "test")
