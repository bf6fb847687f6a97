"""Write the model files the edge app and the web page run, with tfface's own exporter (this script
needs TensorFlow; the demos do not):

    mobile_demo/models/tfface_mb05_3ddfa_fp16.tflite   `tfface export` TFLite (float16 weights), batch
                                                       fixed to 1 (LiteRT.js cannot resize inputs)
    mobile_demo/models/metadata.json                   its export metadata (input, param mean/std, outputs)
    mobile_demo/models/landmark_basis.json             the 68-point shape model the decoder needs
    mobile_demo/models/mesh_basis.json                 a coarse dense face mesh in the same coefficients
                                                       (ICT-FaceKit, MIT), for `--mesh` overlays

    python mobile_demo/make_models.py [--preset NAME] [--formats tflite_fp16 tflite_int8 onnx]
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parent / "models"
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "trump_hillary.jpg"
MESH_CELL = 0.07  # vertex-cluster size, fraction of the face size: ~1,000 vertices, like MediaPipe's mesh


def write_basis(shape_model, path: Path) -> None:
    """The landmark shape model as JSON (float32 precision) for the NumPy and JavaScript decoders."""
    lm = shape_model.landmark_model()
    as_list = lambda a: np.vectorize(lambda v: float(f"{v:.7g}"))(np.asarray(a, np.float32)).tolist()  # noqa: E731
    path.write_text(json.dumps({
        "name": str(lm.name), "units": str(lm.units),
        "note": "68 landmark vertices of the BFM-based 3DDFA shape model (3DDFA_V2, MIT; the Basel Face "
                "Model is licensed by the University of Basel for non-commercial research)",
        "mean": as_list(lm.mean), "id_basis": as_list(lm.id_basis), "exp_basis": as_list(lm.exp_basis)}))


def write_mesh_basis(shape_model, path: Path, cell: float = MESH_CELL) -> None:
    """The ICT-FaceKit face as a linear function of the network's coefficients (see
    tfface.fitting.dense_basis), coarsened to cells of `cell` x the face size, as float16 + triangles
    wound so that faces towards the camera turn clockwise in image coordinates (y down)."""
    from tfface.fitting.dense_basis import coarse_mesh_basis

    coarse = coarse_mesh_basis(shape_model, cell)
    arrays = {k: np.asarray(getattr(coarse, k), np.float32) for k in ("mean", "id_basis", "exp_basis")}
    scales = {k: float(np.abs(a).max()) for k, a in arrays.items()}  # BFM units reach 1e5: float16 needs a scale
    path.write_text(json.dumps({
        "note": "ICT-FaceKit face model (USC ICT, MIT) as a linear function of the 3DDFA coefficients "
                "(tfface.fitting.dense_basis), coarsened; arrays are base64 little-endian float16 times their scale",
        "shapes": {k: list(a.shape) for k, a in arrays.items()}, "scales": scales,
        **{k: base64.b64encode((a / scales[k]).astype("<f2").tobytes()).decode() for k, a in arrays.items()},
        "triangles": coarse.triangles.astype(int).tolist()}))


def fix_batch(path: Path) -> None:
    """Rewrite a .tflite so its batch dimension is 1 instead of dynamic (-1): LiteRT.js compiles the
    signature shape and cannot resize inputs; Python's Interpreter still resizes it to N faces."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            sig = tensor.shapeSignature
            if sig is not None and len(sig) and sig[0] == -1:
                tensor.shapeSignature = np.concatenate([[1], np.asarray(sig)[1:]]).astype(np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None, help="preset name or folder (default: tfface's bundled one)")
    p.add_argument("-o", "--output", type=Path, default=MODELS, help=f"folder (default {MODELS})")
    p.add_argument("--formats", nargs="+", default=["tflite_fp16"],
                   help="tfface export formats (default tflite_fp16; tflite_int8 calibrates on --representative)")
    p.add_argument("--representative", nargs="+", type=Path, default=[SAMPLE],
                   help="photos whose faces calibrate int8 (default: the bundled sample photo)")
    args = p.parse_args(argv)

    from tfface.export import export_preset
    from tfface.models.presets import DEFAULT_PRESET, load_preset

    preset = load_preset(args.preset or DEFAULT_PRESET)
    crops = None
    if "tflite_int8" in args.formats:
        from tfface.export.representative import face_crops

        crops = face_crops(list(args.representative), preset)
        crops = np.concatenate([crops, crops[:, :, ::-1]])  # and their mirror images
    args.output.mkdir(parents=True, exist_ok=True)
    result = export_preset(preset, args.output, tuple(args.formats), crops, overwrite=True)
    for fmt, path in result.files.items():
        if fmt.startswith("tflite"):
            fix_batch(path)
    write_basis(preset.shape_model, args.output / "landmark_basis.json")
    write_mesh_basis(preset.shape_model, args.output / "mesh_basis.json")
    for fmt, path in result.files.items():
        print(f"{fmt}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
