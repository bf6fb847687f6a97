"""examples/make_joint_preset.py's split: held-out people never train; val by photos or by people."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import REPO


def _script():
    spec = importlib.util.spec_from_file_location("make_joint_preset", REPO / "examples" / "make_joint_preset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def photos():
    """A CelebA-like sample: 400 people, 1-8 photos each, in either folder (as the two CelebA folders)."""
    script = _script()
    rng = np.random.default_rng(5)
    identity = np.repeat(np.arange(1000, 1400), rng.integers(1, 9, 400))
    folder = np.where(rng.random(len(identity)) < 0.4, script.FOLDERS[0], script.FOLDERS[1])
    return script, folder, identity, set(range(1000, 1400, 5))


def _people(identity, groups, *names):
    return set(identity[np.isin(groups, names)].tolist())


def test_val_by_photos_shares_people_with_training(photos):
    script, folder, identity, held = photos
    groups = script.assign_groups(folder, identity, held, "photos")
    assert _people(identity, groups, "test", "test_aligned") == held  # every photo of them, either folder
    assert not held & _people(identity, groups, "train_wild", "train_aligned", "val")
    assert 0.02 < np.mean(groups == "val") < 0.09
    assert _people(identity, groups, "val") & _people(identity, groups, "train_wild", "train_aligned")
    np.testing.assert_array_equal(groups, script.assign_groups(folder, identity, held, "photos"))  # fixed seed
    wild = groups[folder == script.FOLDERS[0]]
    assert set(wild) <= {"train_wild", "val", "test"} and "train_aligned" not in wild


def test_val_by_people_holds_every_photo_of_people_never_trained_on(photos):
    script, folder, identity, held = photos
    groups = script.assign_groups(folder, identity, held, "people")
    val = _people(identity, groups, "val")
    assert len(val) == len(set(identity.tolist()) - held) // 20
    assert not val & _people(identity, groups, "train_wild", "train_aligned") and not val & held
    assert np.all(groups[np.isin(identity, list(val))] == "val")
    with pytest.raises(ValueError, match="val_split must be one of"):
        script.assign_groups(folder, identity, held, "random")
