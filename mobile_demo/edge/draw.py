"""Annotations drawn on RGB frames with OpenCV: boxes, 68 landmarks, head-pose axes, attributes, mesh,
speed."""

from __future__ import annotations

import cv2
import numpy as np

from tfface.morphable.decode import rotation_from_camera

# iBUG-68 contours: (first, last, closed)
CONTOURS = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
            (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))
AXIS_COLOURS = ((230, 40, 40), (40, 200, 40), (40, 90, 240))  # head x red, y green, z blue (RGB)


def draw_face(image: np.ndarray, face, thickness: int = 2, attributes: int = 3) -> None:
    """In place: box, landmarks, pose axes from the nose tip, yaw/pitch/roll and the top attributes."""
    x0, y0, x1, y1 = np.round(face.box).astype(int)
    cv2.rectangle(image, (x0, y0), (x1, y1), (255, 255, 255), thickness, cv2.LINE_AA)
    pts = np.round(face.landmarks[:, :2]).astype(np.int32)
    for first, last, closed in CONTOURS:
        cv2.polylines(image, [pts[first:last + 1]], closed, (60, 220, 255), thickness, cv2.LINE_AA)
    for p in pts:
        cv2.circle(image, (int(p[0]), int(p[1])), thickness + 1, (255, 80, 80), -1, cv2.LINE_AA)
    size = float(np.ptp(face.landmarks[:, 0]) + np.ptp(face.landmarks[:, 1])) / 2
    rotation = rotation_from_camera(np.asarray(face.params[:12], np.float64).reshape(1, 3, 4))[0]
    o = face.landmarks[30, :2]
    for axis, colour in zip(rotation.T, AXIS_COLOURS):  # crop frame has y up, the image y down
        tip = (int(round(o[0] + 0.6 * size * axis[0])), int(round(o[1] - 0.6 * size * axis[1])))
        cv2.arrowedLine(image, (int(round(o[0])), int(round(o[1]))), tip, colour, thickness + 1, cv2.LINE_AA,
                        tipLength=0.15)
    yaw, pitch, roll = face.pose
    lines = [f"yaw {yaw:.0f} pitch {pitch:.0f} roll {roll:.0f}"]
    if face.attributes:
        top = sorted(face.attributes.items(), key=lambda kv: -kv[1])[:attributes]
        lines += [f"{name} {p:.2f}" for name, p in top]
    scale = max(0.4, size / 300)
    for i, text in enumerate(lines):
        y = max(12, y0 - 8 - int(22 * scale) * (len(lines) - 1 - i))
        cv2.putText(image, text, (x0, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 0), thickness,
                    cv2.LINE_AA)


def draw_mesh(image: np.ndarray, vertices: np.ndarray, triangles: np.ndarray,
              colour: tuple[int, int, int] = (235, 235, 235)) -> int:
    """In place: the wireframe of the camera-facing triangles (clockwise in image coordinates); returns
    how many were drawn. Hidden faces are culled, not depth-sorted: a wireframe needs no more."""
    xy = np.asarray(vertices, np.float32)[:, :2]
    a, b, c = xy[triangles[:, 0]], xy[triangles[:, 1]], xy[triangles[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    front = triangles[cross < 0]
    cv2.polylines(image, list(np.round(xy[front]).astype(np.int32)), True, colour, 1, cv2.LINE_AA)
    return len(front)


def draw_speed(image: np.ndarray, ms: float, fps: float, detail: str = "") -> None:
    """In place: 'ms/frame, fps' in the top-left corner, on a dark band so it reads on any photo."""
    text = f"{ms:.1f} ms/frame  {fps:.0f} fps" + (f"  ({detail})" if detail else "")
    scale = max(0.5, image.shape[1] / 1600)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(image, (0, 0), (w + 12, h + base + 12), (0, 0, 0), -1)
    cv2.putText(image, text, (6, h + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
