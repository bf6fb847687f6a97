"""Parity of every exported file with the Keras model: output differences on real face crops,
landmark differences in pixels, and AFLW2000-3D NME through `tfface.evaluation.aflw2000`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tfface.export.formats import QUANTISED_FORMATS, input_dtype
from tfface.runtimes import Runner, load_runner

# Bounds on max |difference| of the normalised params (the network's own output scale: de-normalised
# params reach ~6e5, where one float32 ulp is already 0.06). fp16 and the quantised files are judged by NME.
PARAM_BOUNDS = {"saved_model": 1e-4, "tflite_fp32": 1e-4, "onnx": 1e-4}
QUANTISED_NME_BUDGET = 0.15  # NME points int8 / int16x8 may cost (a published int8 3DDFA port lost 0.37)


def crop_landmarks(runner: Runner, params: np.ndarray) -> np.ndarray:
    """(N, 68, 2) landmarks in crop pixels from de-normalised params."""
    s = runner.image_size
    boxes = np.tile(np.array([[0, 0, s, s]], np.float32), (len(params), 1))
    return runner.decoder.decode_params(params, boxes).landmarks[..., :2]


def compare(reference: Runner, runner: Runner, crops: np.ndarray) -> dict[str, Any]:
    """Max/mean abs differences per output, normalised params, landmarks (px) and pose (degrees)."""
    ref, out = reference(crops), runner(crops)
    stats = reference.decoder.param_stats
    result: dict[str, Any] = {}
    for key in ref:
        d = np.abs(out[key].astype(np.float64) - ref[key])
        result[key] = {"max_abs": float(d.max()), "mean_abs": float(d.mean())}
    d = np.abs((out["params"] - ref["params"]) / stats.std)
    result["params_normalized"] = {"max_abs": float(d.max()), "mean_abs": float(d.mean())}
    lm = np.linalg.norm(crop_landmarks(runner, out["params"]) - crop_landmarks(reference, ref["params"]), axis=-1)
    result["landmarks_px"] = {"max": float(lm.max()), "mean": float(lm.mean())}
    s = reference.image_size
    boxes = np.tile(np.array([[0, 0, s, s]], np.float32), (len(crops), 1))
    pose = [r.decoder.decode_params(o["params"], boxes).pose for r, o in ((reference, ref), (runner, out))]
    result["pose_deg"] = {"max_abs": float(np.abs(pose[1] - pose[0]).max())}
    return result


def aflw_nme(runner: Runner, data_dir: str | os.PathLike, limit: int | None) -> dict[str, float]:
    from tfface.evaluation.aflw2000 import evaluate_aflw2000

    m = evaluate_aflw2000(runner, data_dir, crop="gt", limit=limit, progress=True)["metrics"]
    return {"nme_2d": m["nme_2d"]["all_images"], "nme_3d": m["nme_3d"]["all_images"],
            "nme_2d_balanced": m["nme_2d"]["mean"], "images": m["images"]}


def parity_report(reference: Runner, files: dict[str, Path], crops: np.ndarray,
                  aflw_dir: str | os.PathLike | None = None, limit: int | None = None) -> dict[str, Any]:
    """{"crops": N, "runtimes": {format: {...differences, "nme": {...}, "pass": bool}}, "keras_nme": ...}."""
    report: dict[str, Any] = {"faces": int(len(crops)), "reference": reference.name,
                              "param_bounds_normalized": PARAM_BOUNDS,
                              "quantised_nme_budget": QUANTISED_NME_BUDGET,
                              "runtimes": {}}
    if aflw_dir is not None:
        report["keras_nme"] = aflw_nme(reference, aflw_dir, limit)
    for fmt, path in files.items():
        runner = load_runner(path)
        entry = compare(reference, runner, crops)
        entry["file"] = str(path)
        if fmt in PARAM_BOUNDS:
            entry["pass"] = entry["params_normalized"]["max_abs"] <= PARAM_BOUNDS[fmt]
        if aflw_dir is not None:
            entry["nme"] = aflw_nme(runner, aflw_dir, limit)
            entry["nme_2d_cost"] = entry["nme"]["nme_2d"] - report["keras_nme"]["nme_2d"]
            if fmt in QUANTISED_FORMATS:  # int8 is reported as measured, pass or not
                entry["pass"] = entry["nme_2d_cost"] <= QUANTISED_NME_BUDGET
        report["runtimes"][fmt] = entry
    return report


def to_markdown(report: dict[str, Any]) -> str:
    has_nme = "keras_nme" in report
    head = "| runtime | input | params max abs (normalised) | params mean abs (normalised) | landmarks max / mean px | pose max deg |"
    sep = "|---|---|---|---|---|---|"
    if has_nme:
        k = report["keras_nme"]
        head += " AFLW2000-3D NME 2D / 3D (%) | NME 2D cost |"
        sep += "---|---|"
    head += " within bound |"
    sep += "---|"
    lines = [f"Parity against Keras on {report['faces']} real face crops"
             + (f"; NME on {report['keras_nme']['images']} AFLW2000-3D images (ground-truth crops), "
                f"Keras {k['nme_2d']:.3f} / {k['nme_3d']:.3f}" if has_nme else "") + ".", "", head, sep]
    for fmt, e in report["runtimes"].items():
        row = (f"| {fmt} | {input_dtype(fmt)} | {e['params_normalized']['max_abs']:.2e} | {e['params_normalized']['mean_abs']:.2e} | "
               f"{e['landmarks_px']['max']:.4f} / {e['landmarks_px']['mean']:.4f} | {e['pose_deg']['max_abs']:.4f} |")
        if has_nme:
            n = e["nme"]
            row += f" {n['nme_2d']:.3f} / {n['nme_3d']:.3f} | {e['nme_2d_cost']:+.3f} |"
        lines.append(row + {True: " yes |", False: " **no** |"}.get(e.get("pass"), " – |"))
    lines += ["", f"Bounds: params max abs ≤ {PARAM_BOUNDS['tflite_fp32']:g} (normalised) for SavedModel, TFLite "
              f"fp32 and ONNX; NME 2D cost ≤ {QUANTISED_NME_BUDGET} for {', '.join(QUANTISED_FORMATS)} (judged "
              "only with AFLW2000-3D); fp16 is reported without a bound."]
    extra = [k for k in ("attributes", "embedding") if any(k in e for e in report["runtimes"].values())]
    for key in extra:
        lines.append("")
        lines.append(f"{key}: " + ", ".join(f"{fmt} max {e[key]['max_abs']:.2e}"
                                            for fmt, e in report["runtimes"].items() if key in e))
    return "\n".join(lines) + "\n"


def write_parity(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    from tfface.io.outputs import write_json_atomic

    folder = Path(folder)
    write_json_atomic(folder / "parity.json", report)  # strict JSON: a NaN-producing runtime reads as null
    (folder / "parity.md").write_text(to_markdown(report))
    return folder / "parity.json", folder / "parity.md"
