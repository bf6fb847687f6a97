"""The hybrid tf.data pipeline: exact per-batch quotas, masks, P x K identities, determinism,
bad shards, and augmentation that keeps pixels, landmarks, params and pose consistent."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from tfface.data.augment import AugmentConfig
from tfface.data.pipeline import PipelineConfig, SourceConfig, build_hybrid_dataset, build_train_val, load_pipeline_config
from tfface.data.records import write_shards
from tfface.data.synthetic import landmarks_from_params, marker_positions, synthetic_records
from tfface.data.transforms import FLIP_68
from tfface.errors import TffaceError
from tfface.morphable.params import camera_to_srt
from tfface.morphable.pose import euler_angles

NO_PHOTOMETRIC = dict(brightness=0.0, contrast=0.0, saturation=0.0, occlusion=0.0)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    base = synthetic_records(12, 120, seed=21)
    rng = np.random.default_rng(0)
    _, rotation, _ = camera_to_srt(tf.reshape(np.stack([r.params for r in base])[:, :12], (-1, 3, 4)))
    poses = euler_angles(rotation).numpy()
    write_shards([replace(r, pose=p) for r, p in zip(base[:6], poses)], root / "params", shard_size=3, progress=False)
    attrs = [replace(r, params=None, landmarks=None, roi=None, box=np.array([10, 10, 110, 110], np.float32),
                     attributes=rng.integers(0, 2, 40).astype(np.int8)) for r in base[6:9]]
    write_shards(attrs, root / "attributes", shard_size=2, progress=False)
    people = [replace(r, params=None, landmarks=None, identity=i % 3) for i, r in enumerate(base[:9])]
    write_shards(people, root / "identity", shard_size=4, progress=False)
    return root


def _config(root, seed=0, augment=None, **kw):
    sources = [SourceConfig([str(root / "params" / "*.tfrecord")], 4, task="params"),
               SourceConfig([str(root / "attributes" / "*.tfrecord")], 2, task="attributes"),
               SourceConfig([str(root / "identity" / "*.tfrecord")], 4, task="identity", images_per_identity=2)]
    return PipelineConfig(sources=sources, seed=seed, augment=augment or AugmentConfig(), **kw)


def _batches(ds, n):
    return [(x.numpy(), {k: v.numpy() for k, v in y.items()}) for x, y in ds.take(n)]


def test_every_batch_holds_the_quotas_and_masks_match_labels(shards):
    first_positions = []
    for images, labels in _batches(build_hybrid_dataset(_config(shards)), 6):
        assert images.shape == (10, 120, 120, 3) and images.dtype == np.float32
        assert -1.0 <= images.min() and images.max() <= 1.0
        assert labels["params"].shape == (10, 62) and labels["landmarks"].shape == (10, 68, 2)
        assert labels["attributes"].shape == (10, 40) and labels["identity"].dtype == np.int32
        assert labels["has_params"].sum() == 4 and labels["has_landmarks"].sum() == 4
        assert labels["has_attributes"].sum() == 2 and labels["has_identity"].sum() == 4
        for key in ("params", "landmarks", "attributes"):
            has = labels[f"has_{key}"] > 0
            flat = labels[key].reshape(10, -1)
            assert np.abs(flat[has]).sum(axis=1).min() > 0 or key == "attributes"
            assert not flat[~has].any() and np.isfinite(flat).all()
        assert (labels["identity"][labels["has_identity"] == 0] == -1).all()
        _, counts = np.unique(labels["identity"][labels["has_identity"] > 0], return_counts=True)
        assert (counts % 2 == 0).all()  # P x K: each person drawn K=2 at a time
        first_positions.append(tuple(np.flatnonzero(labels["has_params"])))
    assert len(set(first_positions)) > 1  # shuffled inside the batch, not source after source


def test_same_seed_same_batches_other_seed_differs(shards):
    a = _batches(build_hybrid_dataset(_config(shards, seed=3)), 3)
    b = _batches(build_hybrid_dataset(_config(shards, seed=3)), 3)
    c = _batches(build_hybrid_dataset(_config(shards, seed=4)), 3)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya["params"], yb["params"])
    assert not all(np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_a_truncated_shard_is_skipped_not_fatal(shards, tmp_path):
    data = (shards / "params" / "data-00000.tfrecord").read_bytes()
    (tmp_path / "broken.tfrecord").write_bytes(data[: len(data) // 2])
    config = PipelineConfig([SourceConfig([str(tmp_path / "broken.tfrecord"), str(shards / "params" / "data-00001.tfrecord")], 3)])
    batches = _batches(build_hybrid_dataset(config), 4)
    assert all(b[1]["has_params"].sum() == 3 for b in batches)


def _pixels_rgb(images):
    return (images / (1.0 / 128.0) + 127.5)[..., ::-1]


@pytest.mark.parametrize("flip,warp", [(0.0, "opencv"), (1.0, "opencv"), (1.0, "tf")])
def test_augmented_pixels_landmarks_params_and_pose_agree(shards, flip, warp):
    augment = AugmentConfig(flip=flip, max_rotation=25.0, min_scale=0.85, max_scale=1.15, max_shift=0.05, **NO_PHOTOMETRIC)
    config = PipelineConfig([SourceConfig([str(shards / "params" / "*.tfrecord")], 6)], augment=augment,
                            include_pose=True, warp=warp)
    images, labels = _batches(build_hybrid_dataset(config), 1)[0]
    decoded = landmarks_from_params(labels["params"], 120)
    errors = np.linalg.norm(decoded - labels["landmarks"], axis=-1)
    if flip:  # BFM identity/expression kept: the model's asymmetry, well under a pixel on average
        assert errors.mean() < 0.8 and errors.max() < 4.0
    else:
        assert errors.max() < 0.02
    for image, landmarks in zip(_pixels_rgb(images), labels["landmarks"]):
        for drawn, xy in marker_positions(image).items():
            index = FLIP_68[drawn] if flip else drawn  # a flipped right eye corner becomes the left one
            assert np.linalg.norm(xy - landmarks[index]) < 1.0, (drawn, xy, landmarks[index])
    _, rotation, _ = camera_to_srt(tf.reshape(labels["params"][:, :12], (-1, 3, 4)))
    assert labels["has_pose"].all()  # the pose label turned and mirrored like the camera
    np.testing.assert_allclose(labels["pose"], euler_angles(rotation).numpy(), atol=0.2)


def test_yaml_config_and_build_train_val(shards, tmp_path):
    yaml_file = tmp_path / "pipeline.yaml"
    yaml_file.write_text(f"""
sources:
  - {{files: ["{shards}/params/*.tfrecord"], quota: 3, task: params}}
  - {{files: ["{shards}/attributes/*.tfrecord"], quota: 1, task: attributes}}
validation:
  - {{files: ["{shards}/params/*.tfrecord"], quota: 2}}
augment: {{max_rotation: 5.0}}
seed: 1
""")
    config = load_pipeline_config(yaml_file)
    assert config.batch_size == 4 and config.augment.max_rotation == 5.0 and config.augment.flip == 0.5
    train, val = build_train_val(yaml_file, batch_size=4, image_size=96)
    x, y = next(iter(train))
    assert x.shape == (4, 96, 96, 3) and float(tf.reduce_sum(y["has_params"])) == 3
    xv, yv = next(iter(val))
    assert xv.shape == (2, 96, 96, 3) and float(tf.reduce_sum(yv["has_params"])) == 2
    with pytest.raises(TffaceError, match="quotas .* sum to 4"):
        build_train_val(yaml_file, batch_size=8)
    yaml_file.write_text("sources: [{files: [a], quota: 2, qouta: 3}]\n")
    with pytest.raises(TffaceError, match="unknown key 'sources\\[0\\].qouta'"):
        load_pipeline_config(yaml_file)
    with pytest.raises(TffaceError, match="no TFRecord files match"):
        build_hybrid_dataset(PipelineConfig([SourceConfig([str(tmp_path / "none*.tfrecord")], 2)]))
