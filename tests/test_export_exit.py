"""`tfface export` exits non-zero when a parity bound fails and warns (with the measured drift) when the
quantised files were calibrated on too few faces. Converters and runners are stubbed: this checks the
command's verdict, not the conversion (tests/test_export.py covers that)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from tfface.cli.main import main
from tfface.export.representative import MIN_CALIBRATION_FACES, calibration_warning


def _report(int8_pass: bool) -> dict:
    entry = {"params_normalized": {"max_abs": 0.3, "mean_abs": 0.05}, "landmarks_px": {"max": 6.2, "mean": 1.1},
             "pose_deg": {"max_abs": 11.4}, "pass": int8_pass}
    return {"faces": 20, "runtimes": {"tflite_int8": entry,
                                      "onnx": {"params_normalized": {"max_abs": 1e-6}, "pass": True}}}


def _export(preset, out, formats, *args) -> SimpleNamespace:
    out.mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(files={f: out / f"{f}.bin" for f in formats})


@pytest.fixture
def stubbed(monkeypatch, tmp_path):
    monkeypatch.setattr("tfface.export.exporter.load_export_preset", lambda *a: SimpleNamespace(name="stub"))
    monkeypatch.setattr("tfface.export.exporter.unsupported_formats", lambda preset: {})
    monkeypatch.setattr("tfface.export.representative.face_crops", lambda *a: np.zeros((20, 8, 8, 3), np.uint8))
    monkeypatch.setattr("tfface.export.exporter.export_preset", _export)
    monkeypatch.setattr("tfface.runtimes.KerasRunner", lambda preset: None)
    monkeypatch.setattr("tfface.export.parity.to_markdown", lambda report: "| table |")
    state = {"pass": True}
    monkeypatch.setattr("tfface.export.parity.parity_report", lambda *a: _report(state["pass"]))
    return state


def test_failed_parity_bound_exits_non_zero_and_small_calibration_warns(tmp_path, capsys, stubbed):
    args = ["export", "--formats", "tflite_int8", "onnx", "--representative", str(tmp_path)]
    assert main([*args, "-o", str(tmp_path / "ok")]) == 0
    err = capsys.readouterr().err
    assert ("tfface: warning: tflite_int8 calibrated on only 20 faces (at least 100 recommended: --representative "
            "with more photos); measured max drift from Keras: tflite_int8 6.20 px / 11.4 deg") in err
    stubbed["pass"] = False
    assert main([*args, "-o", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert f"tfface: error: parity bound not met for tflite_int8 (see {tmp_path / 'bad' / 'parity.json'})" in err
    assert json.loads((tmp_path / "bad" / "parity.json").read_text())["runtimes"]["tflite_int8"]["pass"] is False


def test_calibration_warning_only_for_small_quantised_sets():
    assert calibration_warning(20, ["onnx", "tflite_fp16"], None) is None
    assert calibration_warning(MIN_CALIBRATION_FACES, ["tflite_int8"], None) is None
    assert calibration_warning(5, ["tflite_int16x8"], None) == (
        "tflite_int16x8 calibrated on only 5 faces (at least 100 recommended: --representative with more photos)")
