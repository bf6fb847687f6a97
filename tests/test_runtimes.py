"""tfface.runtimes: one contract (uint8 RGB crops -> de-normalised params) for every runtime."""

from __future__ import annotations

import numpy as np
import pytest

from export_helpers import default_preset, exported, sample_crops

from tfface.errors import TffaceError


@pytest.mark.slow
def test_keras_runner_matches_the_preset_pipeline():
    from tfface.runtimes import KerasRunner, load_runner

    runner = load_runner("tfface_mb05_3ddfa", runtime="keras")
    assert isinstance(runner, KerasRunner) and runner.image_size == 120 and runner.outputs == ("params",)
    crops = sample_crops()
    preset = default_preset()
    expected = preset.param_stats.denormalize(preset.model(preset.preprocessor.normalize(crops))).numpy()
    out = runner(crops)
    assert set(out) == {"params"} and out["params"].shape == (2, 62)
    np.testing.assert_allclose(out["params"], expected, rtol=1e-5, atol=1e-2)
    # decodes to face-shaped landmarks inside the crop
    lm = runner.decoder.decode_params(out["params"], np.array([[0, 0, 120, 120]] * 2, np.float32)).landmarks
    assert lm.shape == (2, 68, 3) and lm[..., :2].min() > 0 and lm[..., :2].max() < 120


def test_runner_input_checks_and_empty_batch():
    from tfface.runtimes import load_runner

    runner = load_runner("tfface_mb05_3ddfa")
    with pytest.raises(TffaceError, match="uint8"):
        runner(np.zeros((1, 120, 120, 3), np.float32))
    with pytest.raises(TffaceError, match=r"\(N, 120, 120, 3\)"):
        runner(np.zeros((1, 64, 64, 3), np.uint8))
    assert runner(np.zeros((0, 120, 120, 3), np.uint8))["params"].shape == (0, 62)


def test_load_runner_errors(tmp_path):
    from tfface.runtimes import load_runner

    with pytest.raises(TffaceError, match="no such file"):
        load_runner(tmp_path / "missing.tflite")
    with pytest.raises(TffaceError, match="unknown preset"):
        load_runner("not_a_preset")
    (tmp_path / "lonely.onnx").write_bytes(b"not onnx")
    with pytest.raises(TffaceError, match="no tfface export metadata"):
        load_runner(tmp_path / "lonely.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TffaceError, match="not a SavedModel folder"):
        load_runner(tmp_path / "empty")


@pytest.mark.slow
def test_every_exported_file_opens_with_the_same_contract():
    from tfface.runtimes import OnnxRunner, SavedModelRunner, TFLiteRunner, load_runner

    result = exported()
    kinds = {"saved_model": SavedModelRunner, "tflite_fp32": TFLiteRunner, "tflite_fp16": TFLiteRunner,
             "tflite_int8": TFLiteRunner, "tflite_int16x8": TFLiteRunner, "onnx": OnnxRunner}
    crops = sample_crops()
    for fmt, path in result.files.items():
        runner = load_runner(path, num_threads=1)
        assert isinstance(runner, kinds[fmt]) and runner.image_size == 120
        out = runner(crops)
        assert set(out) == {"params"} and out["params"].shape == (2, 62) and out["params"].dtype == np.float32
        assert runner(crops[:1])["params"].shape == (1, 62)  # batch size changes are handled
    # the export folder and the TF Serving base folder open the SavedModel
    assert isinstance(load_runner(result.folder), SavedModelRunner)
    assert isinstance(load_runner(result.files["saved_model"].parent), SavedModelRunner)


@pytest.mark.slow
def test_reconstructor_runs_exported_files_like_keras(capsys):
    """`FaceReconstructor` / `tfface reconstruct --model X.tflite|.onnx`: detection, crops, refine and
    decoding around an exported file give the Keras preset's faces (fp32/ONNX exactly, int8 within its
    quantisation error); exported joint models keep their attribute names and verification threshold."""
    import json

    from conftest import SAMPLE_IMAGE

    from tfface.cli.main import main
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image

    image = read_image(SAMPLE_IMAGE)
    files = exported().files
    with FaceReconstructor() as rec:
        ref = rec(image)
    for fmt, bound in (("tflite_fp32", 0.01), ("onnx", 0.01), ("tflite_int8", 6.0)):
        with FaceReconstructor(files[fmt]) as rec:
            assert rec.preset is None and rec.attribute_names == []
            faces = rec(image)
        assert len(faces) == len(ref) == 2
        for f, r in zip(faces, ref):
            assert np.abs(f.landmarks[:, :2] - r.landmarks[:, :2]).max() < bound, fmt
            assert f.attributes is None and f.embedding is None
    assert main(["reconstruct", str(SAMPLE_IMAGE), "--json", "--model", str(files["onnx"])]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    np.testing.assert_allclose(np.array(out["faces"][0]["landmarks_2d"]), ref[0].landmarks[:, :2], atol=0.02)
    md = json.loads((exported().folder / "metadata.json").read_text())
    assert "verification_threshold" not in md  # the 3DMM preset has no embedding, hence no threshold
