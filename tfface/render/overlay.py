"""Landmarks, boxes and head-pose axes drawn on an RGB photo (pure functions, return a new image)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from tfface.morphable.decode import camera_of, rotation_from_camera

# iBUG-68 contours: (first, last, closed)
_CONTOURS = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
             (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))
_AXIS_COLOURS = ((230, 40, 40), (40, 200, 40), (40, 90, 240))  # x red, y green, z blue (RGB)


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray, colour: tuple[int, int, int] = (60, 220, 255),
                   thickness: int = 1) -> np.ndarray:
    out = image.copy()
    pts = np.round(landmarks[:, :2]).astype(np.int32)
    for first, last, closed in _CONTOURS:
        cv2.polylines(out, [pts[first:last + 1]], closed, colour, thickness, cv2.LINE_AA)
    for p in pts:
        cv2.circle(out, (int(p[0]), int(p[1])), max(1, thickness + 1), (255, 80, 80), -1, cv2.LINE_AA)
    return out


def draw_pose_axes(image: np.ndarray, params: np.ndarray, origin: np.ndarray, length: float,
                   thickness: int = 2) -> np.ndarray:
    """Head x (subject's left), y (up) and z (forward, out of the face) axes from `origin` (image px)."""
    out = image.copy()
    rotation = rotation_from_camera(camera_of(np.asarray(params, np.float64)[None]))[0]
    o = (int(round(origin[0])), int(round(origin[1])))
    for axis, colour in zip(rotation.T, _AXIS_COLOURS):
        # crop frame has y up; image has y down
        tip = (int(round(origin[0] + length * axis[0])), int(round(origin[1] - length * axis[1])))
        cv2.arrowedLine(out, o, tip, colour, thickness, cv2.LINE_AA, tipLength=0.15)
    return out


def draw_faces(image: np.ndarray, faces: Sequence) -> np.ndarray:
    """Every face's box, 68 landmarks, pose axes and yaw/pitch/roll label."""
    out = image.copy()
    scale = max(image.shape[:2]) / 800.0
    thick = max(1, int(round(2 * scale)))
    for face in faces:
        if not all(np.isfinite(np.asarray(v, np.float64)).all() for v in (face.box, face.landmarks, face.params, face.pose)):
            continue  # a degenerate prediction (NaN/inf) has nothing drawable; its JSON carries the warning
        x0, y0, x1, y1 = np.round(face.box).astype(int)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 255), thick, cv2.LINE_AA)
        out = draw_landmarks(out, face.landmarks, thickness=thick)
        size = float(np.ptp(face.landmarks[:, 0]) + np.ptp(face.landmarks[:, 1])) / 2
        out = draw_pose_axes(out, face.params, face.landmarks[30], 0.6 * size, thick + 1)
        yaw, pitch, roll = face.pose
        cv2.putText(out, f"yaw {yaw:.0f} pitch {pitch:.0f} roll {roll:.0f}", (x0, max(0, y0 - 6)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale + 0.2, (255, 255, 0), thick, cv2.LINE_AA)
    return out
