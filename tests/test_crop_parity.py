"""One crop rule for training and inference: a record's crop through the validation pipeline is the
crop FacePreprocessor cuts from the same photo and roi, and its labels map back to the same photo points."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import SAMPLE_IMAGE
from tfface.data.augment import AugmentConfig
from tfface.data.pipeline import PipelineConfig, SourceConfig, build_hybrid_dataset
from tfface.data.records import FaceRecord, write_shards
from tfface.io.images import read_image
from tfface.models.preprocessor import FacePreprocessor


@pytest.fixture(scope="module")
def validation_batch(tmp_path_factory, reconstructor):
    image = read_image(SAMPLE_IMAGE)
    faces = reconstructor(image)
    assert len(faces) == 2
    big = np.array([faces[0].roi_box[:2], faces[0].roi_box[:2] + 360]).ravel().astype(np.float32)  # s = 3
    rois = [faces[0].roi_box, faces[1].roi_box, big]
    records = [FaceRecord(image=SAMPLE_IMAGE, source="sample", key=f"face{i}", roi=roi,
                          params=faces[i].params if i < 2 else None,
                          landmarks=faces[(0, 1, 0)[i]].landmarks[:, :2]) for i, roi in enumerate(rois)]
    root = tmp_path_factory.mktemp("parity")
    write_shards(records, root, shard_size=3, progress=False)
    config = PipelineConfig(sources=[SourceConfig([str(root / "*.tfrecord")], 3, task="params")],
                            augment=AugmentConfig())
    pixels, labels = next(iter(build_hybrid_dataset(config, training=False)))
    expected = FacePreprocessor()(image, np.stack(rois))
    # the batch is shuffled: pair each sample with the inference crop it is closest to (a permutation)
    order = [int(np.argmin(np.abs(pixels.numpy() - e).mean(axis=(1, 2, 3)))) for e in expected]
    assert sorted(order) == [0, 1, 2]
    return image, faces, np.stack(rois), pixels.numpy()[order], {k: v.numpy()[order] for k, v in labels.items()}


def test_pipeline_crop_equals_inference_crop(validation_batch):
    image, _, rois, pixels, _ = validation_batch
    expected = FacePreprocessor()(image, rois)
    err = np.abs(pixels - expected).mean(axis=(1, 2, 3)) * 128  # grey levels: JPEG + a second resampling
    assert np.all(err < 3.0), err
    # no sub-pixel offset: the old training rule was 0.5 (s - 1) photo px off, 0.33 crop px at s = 3
    for got, want in zip(pixels, expected):
        (dx, dy), _ = cv2.phaseCorrelate(want.mean(axis=-1).astype(np.float64), got.mean(axis=-1).astype(np.float64))
        assert abs(dx) < 0.08 and abs(dy) < 0.08, (dx, dy)


def test_pipeline_labels_map_back_to_the_photo(validation_batch, reconstructor):
    _, faces, rois, _, labels = validation_batch
    side = rois[:, 2] - rois[:, 0]
    # decode frame: photo = x * (roi side / 120) + roi corner, as crop_to_image maps predictions back
    back = labels["landmarks"] * (side / 120.0)[:, None, None] + rois[:, None, :2]
    for i, face in enumerate([faces[0], faces[1], faces[0]]):
        np.testing.assert_allclose(back[i], face.landmarks[:, :2], atol=0.02)
    decoded = reconstructor.decoder.decode_params(labels["params"][:2], rois[:2])
    for i in range(2):
        np.testing.assert_allclose(decoded.landmarks[i][:, :2], faces[i].landmarks[:, :2], atol=0.05)
