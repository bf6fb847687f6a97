"""Shared by the export/runtime/serving tests: one export of the default preset per test session, and a
tiny functional model with the joint FaceModel's output dict."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from conftest import SAMPLE_IMAGE


@functools.cache
def default_preset():
    from tfface.models.presets import load_preset

    return load_preset()


@functools.cache
def sample_crops() -> np.ndarray:
    """The two real faces of examples/trump_hillary.jpg, cropped as inference crops them."""
    from tfface.export.representative import face_crops

    return face_crops(SAMPLE_IMAGE, default_preset(), progress=False)


@functools.cache
def exported():
    """All formats of the default preset (int8 calibrated on the sample photo's faces), written once."""
    from tfface.export import export_preset

    folder = Path(tempfile.mkdtemp(prefix="tfface_export_"))
    atexit.register(shutil.rmtree, folder, True)
    crops = sample_crops()
    # Calibrate on the real crops and their mirror images: more variety from the one photo in the repo.
    return export_preset(default_preset(), folder / "out", representative=np.concatenate([crops, crops[:, :, ::-1]]))


def tiny_joint_preset(size: int = 32, embedding_dim: int = 8):
    """A Preset whose model returns the FaceModel's dict (params, attributes, embedding + a training-only
    output), small enough to export in seconds."""
    import keras
    from keras import layers

    from tfface.models.preprocessor import FacePreprocessor
    from tfface.models.presets import Preset

    base = default_preset()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3), name="images")
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(8, 3, strides=2, activation="relu")(inputs))
    outputs = {"params": layers.Dense(62, name="fc_param")(x),
               "attributes": layers.Dense(40, name="fc_attributes")(x),
               "embedding": layers.UnitNormalization(name="embedding")(layers.Dense(embedding_dim)(x)),
               "shape_id": layers.Reshape((68, 3))(layers.Dense(204)(x))}
    model = keras.Model(inputs, outputs)
    return Preset("tiny_joint", model, FacePreprocessor(image_size=size, channel_order="rgb"),
                  base.param_stats, base.shape_model, {"morphable_model": "bfm_3ddfa_68"})
