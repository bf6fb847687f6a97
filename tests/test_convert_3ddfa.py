"""The converted default model reproduces the 3DDFA_V2 checkpoint (independent NumPy forward pass)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLE_IMAGE, shared_path
from tfface.cli.main import main
from tfface.convert.numpy_reference import mobilenet_forward
from tfface.convert.torch_checkpoint import load_torch_checkpoint, state_dict_from_checkpoint
from tfface.errors import DataFileError
from tfface.io.images import read_image

CHECKPOINT = "3ddfa_v2/weights/mb05_120x120.pth"


def _real_crops(preset, reconstructor) -> np.ndarray:
    """Network inputs cut from real photos by the bundled detector: the sample photo and shared ones."""
    images = [read_image(SAMPLE_IMAGE)]
    for name in ("emma.jpg", "JianzhuGuo.jpg"):
        images.append(read_image(shared_path(f"3ddfa_v2/examples/inputs/{name}")))
    crops = []
    for image in images:
        for face in reconstructor(image):
            crops.append(preset.preprocessor(image, face.roi_box[None])[0])
    return np.stack(crops)


def test_shipped_model_matches_numpy_forward_of_checkpoint(default_preset, reconstructor):
    sd = state_dict_from_checkpoint(load_torch_checkpoint(shared_path(CHECKPOINT)))
    x = _real_crops(default_preset, reconstructor)
    assert len(x) >= 5  # 2 + 3 + 1 faces
    keras_out = default_preset.model.predict(x, verbose=0)
    numpy_out = mobilenet_forward(sd, x)
    assert keras_out.shape == (len(x), 62)
    # normalised outputs and de-normalised parameters both agree to 1e-4
    np.testing.assert_allclose(keras_out, numpy_out, atol=1e-4, rtol=0)
    stats = default_preset.param_stats
    rel = np.abs((keras_out - numpy_out) * stats.std) / (np.abs(numpy_out * stats.std + stats.mean) + 1e-6)
    assert rel.max() < 1e-4


def test_convert_cli_reproduces_shipped_weights(tmp_path, default_preset):
    out = tmp_path / "preset"
    assert main(["convert-3ddfa", str(shared_path(CHECKPOINT)), "-o", str(out)]) == 0
    from tfface.models.presets import load_preset

    converted = load_preset(str(out))
    for a, b in zip(converted.model.get_weights(), default_preset.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_convert_rejects_a_checkpoint_of_another_network(tmp_path):
    from tfface.convert.convert_3ddfa import convert_3ddfa
    from tfface.morphable.params import ParamStats

    fixture = __import__("conftest").REPO / "tests" / "fixtures" / "torch" / "tiny_legacy.pth"
    stats = ParamStats(np.zeros(62, np.float32), np.ones(62, np.float32))
    with pytest.raises((DataFileError, ValueError), match="tiny_legacy.pth"):
        convert_3ddfa(fixture, tmp_path / "x", stats)
