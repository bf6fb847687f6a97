"""Speed and fidelity of mobile_demo: the Python edge app (LiteRT) per TFLite variant and thread count,
against tfface itself (Keras + MediaPipe) in the same run; and, where headless Chromium is installed,
the face model in the browser with LiteRT.js (each TFLite file) and onnxruntime-web (the ONNX file).

    python -m benchmarks.mobile_demo_speed [--image examples/trump_hillary.jpg] [--repeats 30] [--no-browser]

Fidelity: max |landmark difference| against the Keras model on the same crops, in 120x120 crop pixels
(browser) or photo pixels (edge app, same detector boxes). Prints markdown tables. Run it with `-m` from
the repo root, where `mobile_demo` (a folder of the repo, not an installed package) imports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

VARIANTS = ("fp32", "fp16", "int8")
SHARED_CELEBA = REPO.parent / "shared" / "data" / "celeba" / "img_celeba"


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def export_all(folder: Path, preset, calibration: np.ndarray) -> dict[str, Path]:
    from mobile_demo.make_models import fix_batch, write_basis
    from tfface.export import export_preset

    result = export_preset(preset, folder, ("tflite_fp32", "tflite_fp16", "tflite_int8", "onnx"),
                           calibration, overwrite=True)
    for fmt, path in result.files.items():
        if fmt.startswith("tflite"):
            fix_batch(path)
    write_basis(preset.shape_model, folder / "landmark_basis.json")
    return result.files


def edge_table(image: np.ndarray, files: dict[str, Path], repeats: int) -> list[str]:
    from mobile_demo.edge.pipeline import EdgePipeline
    from tfface.inference.reconstructor import FaceReconstructor

    rec = FaceReconstructor()
    base = median_ms(lambda: rec(image), repeats)
    rows = ["| pipeline (sample photo, 2 faces, 1 refine) | threads | ms/frame | fps | x tfface "
            "| max landmark diff px |",
            "|---|---|---|---|---|---|",
            f"| tfface (TensorFlow + MediaPipe) | default | {base:.1f} | {1e3 / base:.0f} | 1.00 | 0 |"]
    for kind in VARIANTS:
        for threads in (1, 2):
            edge = EdgePipeline(files[f"tflite_{kind}"], num_threads=threads)
            faces = edge(image)
            ref = rec.from_boxes(image, np.stack([f.box for f in faces]))
            diff = max(np.abs(f.landmarks[:, :2] - r.landmarks[:, :2]).max() for f, r in zip(faces, ref))
            ms = median_ms(lambda: edge(image), repeats)
            rows.append(f"| edge app, LiteRT {kind} | {threads} | {ms:.1f} | {1e3 / ms:.0f} | {base / ms:.2f} "
                        f"| {diff:.2f} |")
    rec.close()
    return rows


def browser_table(crops: np.ndarray, files: dict[str, Path], folder: Path, reference: np.ndarray,
                  repeats: int) -> list[str]:
    from mobile_demo.edge.face_model import read_basis
    from tfface.morphable.decode import decode_faces as decode
    from mobile_demo.web_check import WEB, missing_requirements, serve

    why = missing_requirements()
    if why or not (WEB / "node_modules" / "onnxruntime-web").is_dir():
        return [f"browser benchmark skipped: {why or 'onnxruntime-web not installed (npm install in mobile_demo/web)'}"]
    md = json.loads((folder / "metadata.json").read_text())
    mean, std = np.asarray(md["params"]["mean"]), np.asarray(md["params"]["std"])
    basis = read_basis(folder / "landmark_basis.json")
    box = np.tile([[0, 0, 120, 120]], (len(crops), 1))
    ref_lm = decode(reference, box, basis, 120)[0][..., :2]
    (folder / "crops.bin").write_bytes(crops.tobytes())
    # Serve the web folder and the exported files side by side (symlinks).
    root = folder / "site"
    root.mkdir(exist_ok=True)
    for name, target in (("web", WEB), ("files", folder)):
        if not (root / name).exists():
            (root / name).symlink_to(target)
    rows = ["| browser runtime (Chromium, WebAssembly, 1 thread) | file | ms per face "
            "| max landmark diff px (crop) |",
            "|---|---|---|---|"]
    runs = [("litert", f"tflite_{k}") for k in VARIANTS] + [("ort", "onnx")]
    with serve(root) as base, tempfile.TemporaryDirectory() as tmp:
        for runtime, fmt in runs:
            url = (f"{base}web/bench.html?runtime={runtime}&model={base}files/{files[fmt].name}"
                   f"&crops={base}files/crops.bin&n={len(crops)}&repeat={repeats}")
            out = Path(tmp) / f"{fmt}.json"
            subprocess.run(["node", str(WEB / "bench_check.mjs"), url, str(out)], cwd=WEB, timeout=400,
                           capture_output=True)
            result = json.loads(out.read_text()) if out.is_file() else {"error": "no result"}
            if result.get("error"):
                rows.append(f"| {runtime} | {files[fmt].name} | failed: {result['error'][:80]} | |")
                continue
            params = np.asarray(result["outputs"], np.float64)
            params = params * std + mean if runtime == "litert" else params  # TFLite: normalised params
            lm = decode(params.astype(np.float32), box, basis, 120)[0][..., :2]
            name = "LiteRT.js" if runtime == "litert" else "onnxruntime-web"
            rows.append(f"| {name} | {files[fmt].name} | {np.median(result['ms']):.1f} | "
                        f"{np.abs(lm - ref_lm).max():.3f} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", default=str(REPO / "examples" / "trump_hillary.jpg"))
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--representative", default=str(SHARED_CELEBA) if SHARED_CELEBA.is_dir() else None,
                   help="photos whose faces calibrate int8 (default: ../shared CelebA photos when present, "
                        "else the benchmark image and its mirror)")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mobile_demo.edge.io import read_rgb
    from tfface.export.representative import face_crops
    from tfface.models.presets import load_preset
    from tfface.runtimes import KerasRunner

    preset = load_preset()
    image = read_rgb(args.image)
    crops = face_crops(args.image, preset, progress=False)
    calibration = (face_crops(args.representative, preset, max_faces=150, progress=False) if args.representative
                   else np.concatenate([crops, crops[:, :, ::-1]]))
    print(f"int8 calibrated on {len(calibration)} face crops from {args.representative or args.image}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = export_all(folder, preset, calibration)
        print("\n".join(edge_table(image, files, args.repeats)))
        if not args.no_browser:
            print()
            print("\n".join(browser_table(crops, files, folder, KerasRunner(preset)(crops)["params"], args.repeats)))


if __name__ == "__main__":
    main()
