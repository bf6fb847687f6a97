"""The metadata sidecar (`metadata.json`) every export carries: what goes in, what comes out, and the
constants a client needs to use the outputs without tfface."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

import tfface
from tfface.models.attributes import ATTRIBUTE_NAMES as CELEBA_ATTRIBUTES
from tfface.export.graph import ServingModule
from tfface.runtimes import identity_template

METADATA_VERSION = 1


def signature_shapes(module: ServingModule) -> dict[str, dict[str, list[int | None]]]:
    """Output name -> shape (None = any batch) for every serving signature."""
    shapes = {}
    for name, fn in module.signatures().items():
        out = fn.get_concrete_function().structured_outputs
        shapes[name] = {k: list(t.shape.as_list()) for k, t in out.items()}
    return shapes


def build_metadata(preset: Any, module: ServingModule, version: int) -> dict[str, Any]:
    pre, stats = preset.preprocessor, preset.param_stats
    sigs = signature_shapes(module)
    num_attr = sigs.get("attributes", {}).get("attributes", [None, 0])[1]
    md: dict[str, Any] = {
        "format": "tfface-export",
        "metadata_version": METADATA_VERSION,
        "tfface_version": tfface.__version__,
        "tensorflow_version": tf.__version__,
        "name": preset.name,
        "model_version": version,
        "input": {
            "name": "images", "dtype": "uint8", "shape": [None, pre.image_size, pre.image_size, 3],
            "dtype_note": "uint8 for every file except those dtype_by_file marks float32 (tflite_int16x8): "
                          "the same RGB 0..255 values as float32, not normalised",
            "image_size": pre.image_size, "colour_order": "rgb",
            "crop_rule": "square box from tfface.morphable.crop (3DDFA_V2 rule), resized with bilinear "
                         "sampling; zeros outside the photo",
            "inside_graph": {"network_channel_order": pre.channel_order, "offset": pre.offset,
                             "scale": pre.scale, "formula": "x = (pixel - offset) * scale, after the colour swap"},
        },
        "params": {
            "layout": "12 camera (3x4 [s*R | t], row-major, crop frame with y up) + 40 identity + 10 expression",
            "denormalised_inside_graph": True, "formula": "params = raw * std + mean",
            "mean": stats.mean.tolist(), "std": stats.std.tolist(),
        },
        "morphable_model": preset.config.get("morphable_model", "bfm_3ddfa_68"),
        "landmark_vertex_ids": preset.shape_model.landmarks.tolist(),
        "landmarks": "68 points (iBUG/300W order) in crop pixels: x right, y down (crop_to_image with box "
                     "[0, 0, S, S]); scale by roi side / S and add the box corner for photo pixels",
        "pose": "yaw, pitch, roll in degrees; AFLW2000-3D Pose_Para convention (tfface.morphable.pose)",
        "model_outputs": list(module.outputs),
        "output_shapes": {k: v for k, v in sigs["serving_default"].items() if k in module.outputs},
        "signatures": sigs,
        "attribute_names": list(CELEBA_ATTRIBUTES) if num_attr == len(CELEBA_ATTRIBUTES) else
                           [f"attribute_{i}" for i in range(num_attr or 0)],
        "files": {},
    }
    if preset.config.get("verification_threshold") is not None:  # chosen on held-out identities
        md["verification_threshold"] = float(preset.config["verification_threshold"])
        if preset.config.get("verification_far") is not None:
            md["verification_far"] = float(preset.config["verification_far"])
    if preset.config.get("attribute_thresholds"):  # chosen on held-out faces
        md["attribute_thresholds"] = [float(v) for v in preset.config["attribute_thresholds"]]
    template = identity_template(preset.config)  # the embedding's aligned second view, checked
    if template is not None:
        md["identity_template"] = {k: v.tolist() for k, v in template.items()}
    return md
