"""Semantic 3D face editing in a joint model's shared representation (after Weng et al.).

The attribute head is linear on the backbone features f: logit_k = w_k . f + b_k. Moving the shared
representation to f' = f + A w_k / |w_k|^2 changes that logit by exactly A (the smallest such move),
and every other head (3DMM params, shape decoders, the other attributes) is decoded from f' with the
model's own layers: a Keras sub-model from the shared features to the heads, so nothing is copied.
Geometry is compared in the pose of the unedited face: only the shape changes.

A model whose attributes read their own branch (the shipped joint preset) shares no features between
the attribute and 3DMM heads, so no feature move reaches the 3D face. There the same move changes the
attribute logits, and the 3DMM identity + expression params move by what goes with that change across
many faces: `fit_shape_directions`, a ridge regression of the params on the 40 logits (all else equal),
fitted when the preset is made and stored in its config (`attribute_shape_directions`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import keras
import numpy as np

from tfface.errors import NoFaceError, TffaceError
from tfface.fitting.dense import DenseFace, DenseFitter, sample_colours
from tfface.inference.reconstructor import Face, FaceReconstructor, largest_face
from tfface.io.images import write_image
from tfface.io.outputs import write_json_atomic
from tfface.models.presets import JOINT_PRESET, Preset
from tfface.morphable.decode import CAMERA_DIM, apply_camera, camera_of, crop_to_image
from tfface.render.mesh_export import write_mesh
from tfface.render.rasterize import rasterize, vertex_normals

HEADS = ("params", "attributes", "shape_id", "shape_res")  # what an edit decodes from the features
SHAPE_DIRECTIONS = "attribute_shape_directions"  # preset config: (A, P - 12) params per attribute logit


def fit_shape_directions(logits: np.ndarray, params: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """(A, P - 12): per attribute logit, the change of the normalised identity + expression params that
    goes with it, the other logits held fixed: ridge regression over faces (N, A) -> (N, P); `ridge` is
    relative to the logits' mean variance."""
    x = np.asarray(logits, np.float64) - np.mean(logits, axis=0)
    y = np.asarray(params, np.float64)[:, CAMERA_DIM:]
    y = y - y.mean(axis=0)
    if len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"fit_shape_directions needs at least 2 faces with finite outputs. Received: {len(x)} faces")
    gram = x.T @ x
    penalty = ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    return np.linalg.solve(gram + penalty, x.T @ y).astype(np.float32)


def split_at_features(model: keras.Model, name: str | None = None) -> tuple[keras.Model, keras.Model]:
    """(crops -> shared features f, f -> HEADS): the two halves of a FaceModel, sharing its layers.

    f is the tensor the attribute head reads (the backbone's output, after dropout when configured).
    """
    if getattr(model, "branch_blocks", 0):
        raise TffaceError(f"'{name or model.name}': its attributes read their own branch ({model.branch_blocks} "
                          "blocks): it has no features shared with the 3DMM head to split at (AttributeEditor "
                          f"edits such a model with its stored {SHAPE_DIRECTIONS})")
    shared = model.get_layer("fc_attributes").input
    features = keras.Model(model.input, shared, name="shared_features")
    heads = keras.Model(shared, {k: model.output[k] for k in HEADS}, name="heads_from_features")
    return features, heads


def attribute_step(kernel: np.ndarray, index: int, amount: float) -> np.ndarray:
    """The move of f that changes attribute `index`'s logit by `amount`: amount * w / |w|^2."""
    w = np.asarray(kernel, np.float64)[:, index]
    return (amount * w / (w @ w)).astype(np.float32)


@dataclass(frozen=True)
class AttributeEdit:
    """One face before and after moving its features along an attribute direction."""

    attribute: str
    amount: float
    face: Face
    logits: np.ndarray  # (2, A) attribute logits before, after
    params: np.ndarray  # (2, 62) de-normalised params decoded from f and f'
    landmarks: np.ndarray  # (2, 68, 3) image px from the 3DMM params, both in the pose of "before"
    decoder_landmarks: np.ndarray | None  # (2, 68, 3) from the shape decoders (None: a branch model's)
    attribute_names: tuple[str, ...]

    @property
    def index(self) -> int:
        return self.attribute_names.index(self.attribute)

    @property
    def probabilities(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits.astype(np.float64)))

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers: the edited attribute, landmark displacement, the other attributes."""
        k, p = self.index, self.probabilities
        change = p[1] - p[0]
        others = sorted((i for i in range(len(self.attribute_names)) if i != k), key=lambda i: -abs(change[i]))
        return {
            "attribute": self.attribute, "amount": self.amount,
            "face": {"box": _rounded(self.face.box, 2), "roi_box": _rounded(self.face.roi_box, 2)},
            "logit": {"before": round(float(self.logits[0, k]), 5), "after": round(float(self.logits[1, k]), 5)},
            "probability": {"before": round(float(p[0, k]), 5), "after": round(float(p[1, k]), 5)},
            "landmark_displacement_px": _displacement(self.landmarks),
            **({"decoder_landmark_displacement_px": _displacement(self.decoder_landmarks)}
               if self.decoder_landmarks is not None else {}),
            "other_attributes": {self.attribute_names[i]: {"before": round(float(p[0, i]), 4),
                                                           "after": round(float(p[1, i]), 4),
                                                           "change": round(float(change[i]), 4)} for i in others},
        }


class AttributeEditor:
    """`AttributeEditor(preset)(image_rgb, "Smiling", 3.0)` -> AttributeEdit of the largest face."""

    def __init__(self, preset: str | os.PathLike | Preset = JOINT_PRESET, detector: str = "auto",
                 min_score: float = 0.5, refine: int = 1) -> None:
        # editing moves the network's inner features: the Keras model, not the shipped TFLite file
        self.reconstructor = FaceReconstructor(preset, detector, min_score, refine, runtime="keras")
        self.preset = self.reconstructor.preset
        if self.preset is None:  # editing moves the network's inner features: a Keras model is needed
            raise TffaceError(f"{preset}: attribute editing needs a Keras preset, not an exported file")
        self.preset.require("attributes", "attribute editing")
        self.kernel = self.preset.model.get_layer("fc_attributes").get_weights()[0]
        self.attribute_names = tuple(self.reconstructor.attribute_names)
        self.directions = None
        if getattr(self.preset.model, "branch_blocks", 0):
            self.directions = _stored_directions(self.preset, len(self.attribute_names))
        else:
            self.features, self.heads = split_at_features(self.preset.model, self.preset.name)

    def attribute(self, name: str) -> str:
        """The attribute's exact name (case-insensitive match), or an error listing the valid names."""
        by_lower = {n.lower(): n for n in self.attribute_names}
        if name.lower() not in by_lower:
            raise TffaceError(f"unknown attribute '{name}'; valid names: {', '.join(self.attribute_names)}")
        return by_lower[name.lower()]

    def __call__(self, image: np.ndarray, attribute: str, amount: float, source: str = "image") -> AttributeEdit:
        """Edit the largest face; `source` names the photo in errors."""
        attribute = self.attribute(attribute)
        faces = self.reconstructor(image)
        if not faces:
            raise NoFaceError(f"{source}: no face found")
        return self.edit_face(image, largest_face(faces), attribute, amount)

    def edit_face(self, image: np.ndarray, face: Face, attribute: str, amount: float) -> AttributeEdit:
        """Edit one reconstructed face (the crop at its roi_box) along `attribute` by `amount` logits."""
        attribute = self.attribute(attribute)
        x = self.preset.preprocessor.normalize(self.reconstructor.crops(image, face.roi_box[None]))
        step = attribute_step(self.kernel, self.attribute_names.index(attribute), amount)
        out = self._branch_edit(x, step) if self.directions is not None else self._shared_edit(x, step)
        params = np.asarray(self.preset.param_stats.denormalize(out["params"]))
        posed = params.copy()
        posed[1, :CAMERA_DIM] = params[0, :CAMERA_DIM]  # the pose of "before" for both
        rois = np.repeat(face.roi_box[None].astype(np.float32), 2, axis=0)
        landmarks = self.reconstructor.decoder.decode_params(posed, rois).landmarks
        decoded = self._decoder_landmarks(posed, out, rois) if "shape_id" in out else None
        return AttributeEdit(attribute, float(amount), face, out["attributes"], params, landmarks, decoded,
                             self.attribute_names)

    def _shared_edit(self, x: np.ndarray, step: np.ndarray) -> dict[str, np.ndarray]:
        """Every head decoded from the shared features before and after the move."""
        f = np.asarray(self.features(x, training=False))
        # one call per row: identical inputs must give bit-identical outputs (amount 0 moves nothing)
        rows = [{k: np.asarray(v) for k, v in self.heads(z, training=False).items()} for z in (f, f + step)]
        return {k: np.concatenate([r[k] for r in rows]) for k in HEADS}

    def _branch_edit(self, x: np.ndarray, step: np.ndarray) -> dict[str, np.ndarray]:
        """The branch's move changes the logits by step . W (the head is linear); the identity +
        expression params move by the stored directions of that change; the camera stays."""
        out = self.preset.model(x, training=False)
        logits, params = np.asarray(out["attributes"]), np.asarray(out["params"])
        change = step @ self.kernel
        moved = params.copy()
        moved[:, CAMERA_DIM:] += change @ self.directions
        return {"attributes": np.concatenate([logits, logits + change]), "params": np.concatenate([params, moved])}

    def _decoder_landmarks(self, posed: np.ndarray, out: dict[str, np.ndarray], rois: np.ndarray) -> np.ndarray:
        """s_mean + shape_id + shape_res, through the camera of "before" into image pixels."""
        decoder = self.reconstructor.decoder
        shape = decoder.basis.mean + out["shape_id"] + out["shape_res"]
        return crop_to_image(apply_camera(camera_of(posed), shape), rois, decoder.image_size)

    def close(self) -> None:
        self.reconstructor.close()


def _stored_directions(preset: Preset, num_attributes: int) -> np.ndarray:
    """A branch model's `attribute_shape_directions` from its preset config, checked."""
    stored = preset.config.get(SHAPE_DIRECTIONS)
    if stored is None:
        raise TffaceError(f"'{preset.name}': its attributes read their own branch ({preset.model.branch_blocks} blocks), "
                          f"apart from the 3DMM path, and its config has no {SHAPE_DIRECTIONS} to move the 3D face "
                          "with (fit them with tfface.inference.editing.fit_shape_directions when the preset is made)")
    directions = np.asarray(stored, np.float32)
    expected = (num_attributes, preset.model.num_params - CAMERA_DIM)
    if directions.shape != expected or not np.isfinite(directions).all():
        raise TffaceError(f"'{preset.name}': {SHAPE_DIRECTIONS} in its config must be {expected[0]} x {expected[1]} "
                          f"finite numbers. Received: shape {directions.shape}")
    return directions


def _rounded(values: np.ndarray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def _displacement(pair: np.ndarray) -> dict[str, float]:
    d = np.linalg.norm(pair[1].astype(np.float64) - pair[0], axis=-1)
    return {"mean": round(float(d.mean()), 5), "max": round(float(d.max()), 5)}


# ----------------------------------------------------------------------------------------------------
# Outputs: dense meshes and a before | after | displacement figure


def edit_meshes(edit: AttributeEdit, fitter: DenseFitter) -> tuple[DenseFace, DenseFace]:
    """ICT-FaceKit meshes fitted to the 68 3D landmarks before and after (both in the pose of before)."""
    before, after = fitter(edit.landmarks)
    return before, after


def shade(vertices: np.ndarray, triangles: np.ndarray, colours: np.ndarray, size: int,
          background: int = 32) -> np.ndarray:
    """A (size, size) Lambert-shaded render (light from the viewer) of per-vertex RGB colours."""
    raster = rasterize(vertices, triangles, size, size)
    normals = raster.interpolate(vertex_normals(vertices, triangles).astype(np.float32), triangles)
    rgb = raster.interpolate(np.asarray(colours, np.float32), triangles)
    light = np.clip(np.abs(normals[..., 2:3]), 0, 1) * 0.8 + 0.2
    out = np.full((size, size, 3), background, np.float32)
    out[raster.mask] = (rgb * light)[raster.mask]
    return np.clip(out, 0, 255).astype(np.uint8)


def edit_figure(edit: AttributeEdit, before: DenseFace, after: DenseFace, size: int = 320) -> np.ndarray:
    """before | after | per-vertex displacement heat map, each the face's crop box at `size` px."""
    x0, y0, x1, _ = (float(v) for v in edit.face.roi_box)
    scale = size / (x1 - x0)

    def to_panel(v: np.ndarray) -> np.ndarray:
        return (v - np.array([x0, y0, 0.0])) * scale

    grey = np.full((len(before.vertices), 3), (200, 200, 230), np.float32)
    displacement = np.linalg.norm(after.vertices - before.vertices, axis=1)
    top = max(float(displacement.max()), 1e-6)
    heat = cv2.applyColorMap((displacement / top * 255).astype(np.uint8)[:, None], cv2.COLORMAP_INFERNO)
    heat = heat[:, 0, ::-1].astype(np.float32)  # BGR -> RGB
    p = edit.probabilities[:, edit.index]
    panels = [shade(to_panel(before.vertices), before.triangles, grey, size),
              shade(to_panel(after.vertices), after.triangles, grey, size),
              shade(to_panel(after.vertices), after.triangles, heat, size)]
    captions = [f"before  {edit.attribute} {p[0]:.2f}", f"after ({edit.amount:+g})  {p[1]:.2f}",
                f"|displacement| 0..{top:.2f} px"]
    for panel, text in zip(panels, captions):
        cv2.putText(panel, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate(panels, axis=1)


def write_edit_outputs(out_dir: str | os.PathLike, stem: str, image: np.ndarray, edit: AttributeEdit,
                       fitter: DenseFitter | None = None, source: str | None = None) -> dict[str, Any]:
    """<stem>_before.obj, <stem>_after.obj, <stem>_edit.png and <stem>_edit.json; returns the JSON
    (`source`, the photo's path, goes in as "image")."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before, after = edit_meshes(edit, fitter or DenseFitter())
    colours = sample_colours(image, before.vertices)  # one texture for both: only the shape moves
    files = {"before_mesh": write_mesh(out_dir / f"{stem}_before.obj", before.vertices, before.triangles, colours),
             "after_mesh": write_mesh(out_dir / f"{stem}_after.obj", after.vertices, after.triangles, colours),
             "figure": out_dir / f"{stem}_edit.png", "summary": out_dir / f"{stem}_edit.json"}
    write_image(files["figure"], edit_figure(edit, before, after))
    summary = {"image": source or stem, **edit.summary(), "mesh_displacement_px": _displacement(np.stack([before.vertices, after.vertices])),
               "files": {k: str(v) for k, v in files.items()}}
    write_json_atomic(files["summary"], summary)
    return summary
