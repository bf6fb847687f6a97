"""The one crop -> run -> decode -> re-crop loop, in NumPy, shared by `FaceReconstructor`, evaluation
crops, the TF Serving client and the TensorFlow-free edge app (mobile_demo imports this module, so it
imports NumPy, OpenCV and `tfface.morphable` only).

A pass cuts crops at square boxes (`tfface.morphable.crop`), runs the network on all of them at once and
decodes; each refine pass cuts again from the landmarks of the previous one (the crop rule of the
model's training data, which makes results depend far less on how the detector draws boxes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from tfface.morphable.crop import roi_from_landmarks, warp_aligned, warp_crop
from tfface.morphable.decode import camera_of, rotation_from_camera

# A face whose refined crop, run once more, turns the head by more than MAX_TURN_DEGREES is not a face:
# on the shared photos the phantom on identity_photos/obama1.jpg turned 101 deg and a duplicate box
# beside an AFLW2000-3D face 61 deg, while every other face (AFLW2000-3D's profiles included) stayed
# within 15 deg (benchmarks/phantom_faces.py). That extra pass runs only where the refine step itself
# turned the head by more than SUSPECT_TURN_DEGREES (both false detections: 57 and 83 deg; 3 of 301
# real faces: at most 38 deg), so nearly every face costs no third pass.
MAX_TURN_DEGREES = 40.0
SUSPECT_TURN_DEGREES = 20.0

RunFn = Callable[[np.ndarray], dict[str, np.ndarray]]  # uint8 RGB crops (F, S, S, 3) -> {"params": (F, 62), ...}
DecodeFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # params, rois -> landmarks, pose


@dataclass(frozen=True)
class RoiPass:
    rois: np.ndarray  # (F, 4) the square crops the network saw
    outputs: dict[str, np.ndarray]  # the runner's outputs ("params" de-normalised, heads)
    landmarks: np.ndarray  # (F, 68, 3) photo pixels
    pose: np.ndarray  # (F, 3) yaw, pitch, roll degrees
    turn: np.ndarray | None = None  # (F,) degrees the head turned from the first crop to this one (refine)


def crops_at(image: np.ndarray, rois: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB crops (F, S, S, 3) cut at `rois` (F, 4)."""
    rois = np.asarray(rois, np.float32).reshape(-1, 4)
    if not len(rois):
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([warp_crop(image, r, size) for r in rois])


def run_rois(image: np.ndarray, rois: np.ndarray, run: RunFn, decode: DecodeFn, size: int) -> RoiPass:
    """One batched network pass on the crops at `rois`, decoded."""
    rois = np.asarray(rois, np.float32).reshape(-1, 4)
    outputs = run(crops_at(image, rois, size))
    landmarks, pose = decode(outputs["params"], rois)
    return RoiPass(rois, outputs, landmarks, pose)


def reconstruct_rois(image: np.ndarray, rois: np.ndarray, run: RunFn, decode: DecodeFn, size: int,
                     refine: int = 1) -> RoiPass:
    """`run_rois`, then `refine` more passes, each cut from the previous pass's landmarks."""
    first = result = run_rois(image, rois, run, decode, size)
    for _ in range(refine):
        if not len(result.rois):
            return result
        result = run_rois(image, refined_rois(result.landmarks), run, decode, size)
    if result is first:
        return result
    return replace(result, turn=rotation_change(first.outputs["params"], result.outputs["params"]))


def with_aligned_embedding(image: np.ndarray, result: RoiPass, run: RunFn, template: dict, size: int) -> RoiPass:
    """The pass with its identity embedding averaged over two views of each face: its crop and its aligned
    crop (`tfface.morphable.crop.warp_aligned` onto `template`, the geometry of the aligned faces that
    dominated the branch's training). One more network pass; params, landmarks and attributes stay
    those of the crop. Held-out verification 86.5 -> 87.6 %, AUC 0.941 -> 0.949, TAR@FAR1% 46.4 -> 49.3
    (README, "Aligned second view")."""
    if "embedding" not in result.outputs or not len(result.rois):
        return result
    aligned = run(np.stack([warp_aligned(image, lm, template, size) for lm in result.landmarks]))["embedding"]
    return replace(result, outputs={**result.outputs, "embedding": embedding_mean(result.outputs["embedding"], aligned)})


def embedding_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The unit-length mean direction of two views' unit embeddings (N, D)."""
    mean = np.asarray(a, np.float64) + np.asarray(b, np.float64)
    return (mean / np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def refined_rois(landmarks: np.ndarray) -> np.ndarray:
    """(F, 68, 2+) landmarks -> (F, 4) crop boxes by the training crop rule."""
    return np.stack([roi_from_landmarks(lm) for lm in landmarks]).astype(np.float32)


def rotation_change(params_a: np.ndarray, params_b: np.ndarray) -> np.ndarray:
    """(F,) angle in degrees of the rotation between two passes' head poses."""
    ra, rb = rotation_from_camera(camera_of(params_a)), rotation_from_camera(camera_of(params_b))
    cos = (np.trace(ra @ rb.transpose(0, 2, 1), axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def holds_face(image: np.ndarray, result: RoiPass, run: RunFn, decode: DecodeFn, size: int,
               max_turn: float = MAX_TURN_DEGREES) -> np.ndarray:
    """(F,) bool: does the refined crop still hold a face? One more pass on the crop cut from `result`'s
    landmarks must agree on the head pose (a real face converges; a phantom's pose jumps); it runs on
    the faces whose refine step turned the head by more than SUSPECT_TURN_DEGREES (all without `turn`)."""
    keep = np.ones(len(result.rois), bool)
    suspects = np.flatnonzero(keep if result.turn is None else result.turn > SUSPECT_TURN_DEGREES)
    if len(suspects):
        again = run_rois(image, refined_rois(result.landmarks[suspects]), run, decode, size)
        keep[suspects] = rotation_change(result.outputs["params"][suspects], again.outputs["params"]) <= max_turn
    return keep


def track_rois(image: np.ndarray, landmarks: np.ndarray, params: np.ndarray, run: RunFn, decode: DecodeFn,
               size: int, max_turn: float = MAX_TURN_DEGREES) -> tuple[RoiPass, bool]:
    """Video tracking, as MediaPipe does it: this frame's crops are cut from the previous frame's
    landmarks (F, 68, 2+) and run once, without the detector. Returns the pass and whether tracking
    held: every face's head pose moved by at most `max_turn` from the previous frame's `params`."""
    result = run_rois(image, refined_rois(landmarks), run, decode, size)
    held = bool(np.all(rotation_change(params, result.outputs["params"]) <= max_turn))
    return result, held
