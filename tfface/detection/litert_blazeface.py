"""BlazeFace short-range and full-range on LiteRT with NumPy pre/post-processing (no MediaPipe): tfface's
detector and the edge app's (mobile_demo), which imports this module without TensorFlow.

MediaPipe's face detection graph, reproduced: letterbox the photo to the model's square input, map
pixels to [-1, 1], decode the SSD regressors against anchors, sigmoid scores, weighted NMS, undo the
letterbox. Anchors follow MediaPipe's published SsdAnchorsCalculator options: short-range (128 px) 4
layers, strides 8, 16, 16, 16, 2 anchors per layer and cell; full-range (192 px) 1 layer, stride 4,
1 anchor per cell; fixed anchor size for both. The number of anchors is checked against the model's
output shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tfface.detection.names import MODEL_FILES
from tfface.litert import open_interpreter

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "mediapipe"
DETECTORS = {name: ASSETS / file for name, file in MODEL_FILES.items()}
DEFAULT_DETECTOR = DETECTORS["short"]

STRIDES = (8, 16, 16, 16)  # short-range SSD layers; layers with one stride share a grid
ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 plus the interpolated scale
ANCHOR_CONFIGS = {128: (STRIDES, ANCHORS_PER_LAYER), 192: ((4,), 1)}  # by input size: short-, full-range
NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in image pixels
    score: float
    keypoints: np.ndarray  # (6, 2) image pixels


def ssd_anchors(input_size: int, strides: tuple[int, ...] = STRIDES, per_layer: int = ANCHORS_PER_LAYER) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1] (fixed anchor size: width = height = 1), MediaPipe's order:
    per stride group, row by row, column by column, then the anchors of each cell."""
    centres = []
    i = 0
    while i < len(strides):
        stride, repeats = strides[i], 0
        while i < len(strides) and strides[i] == stride:
            repeats, i = repeats + 1, i + 1
        grid = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=-1)
        centres.append(np.repeat(cells, repeats * per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Regressors (A, 16) -> boxes (A, 4) x0, y0, x1, y1 and keypoints (A, 6, 2), both in [0, 1] of the
    model input (offsets are in input pixels relative to the anchor centre)."""
    r = raw.astype(np.float32) / float(input_size)
    cx, cy = r[:, 0] + anchors[:, 0], r[:, 1] + anchors[:, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
    kps = r[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    return boxes, kps


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: the best box absorbs every remaining box overlapping it by
    more than `iou_threshold`, averaging their coordinates weighted by score; the best score stays."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while len(order):
        merge = iou(boxes[order[0]], boxes[order]) > iou_threshold
        merge[0] = True  # a degenerate (zero-area) best box still counts once
        group = order[merge]
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kps = (keypoints[group] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, kps, float(scores[order[0]])))
        order = order[~merge]
    return out


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """RGB image -> (size, size, 3) uint8 with the photo centred and black borders, the scale and the
    top-left offset (input pixels) that map image pixels into it."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    offset = np.array([(size - w * scale) / 2, (size - h * scale) / 2])
    # MediaPipe maps the region's corners onto the tensor's corners (no half-pixel shift); matching it
    # keeps scores and boxes identical to MediaPipe's on the same pixels.
    m = np.array([[scale, 0, offset[0]], [0, scale, offset[1]]])
    out = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    return out, scale, offset


class BlazeFace:
    """`BlazeFace()(image_rgb)` -> detections, best first."""

    def __init__(self, model_path: str | Path = DEFAULT_DETECTOR, min_score: float = 0.5, nms_iou: float = 0.3,
                 num_threads: int | None = None) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1]. Received: min_score={min_score}")
        self.interpreter = open_interpreter(model_path, num_threads)
        inp = self.interpreter.get_input_details()[0]
        self._input = inp["index"]
        self.input_size = int(inp["shape"][1])
        outs = {d["name"]: d for d in self.interpreter.get_output_details()}
        # The box regressor has 16 values per anchor, the classifier one.
        by_width = {int(d["shape"][-1]): d["index"] for d in outs.values()}
        if set(by_width) != {16, 1}:
            raise ValueError(f"{model_path}: not a BlazeFace model (outputs {[d['shape'] for d in outs.values()]})")
        self._boxes, self._scores = by_width[16], by_width[1]
        if self.input_size not in ANCHOR_CONFIGS:
            raise ValueError(f"{model_path}: input {self.input_size} px is neither BlazeFace short-range (128) "
                             "nor full-range (192)")
        self.anchors = ssd_anchors(self.input_size, *ANCHOR_CONFIGS[self.input_size])
        num = int(outs[next(iter(outs))]["shape"][1])
        if num != len(self.anchors):
            raise ValueError(f"{model_path}: {num} anchors in the model, {len(self.anchors)} from the "
                             f"{self.input_size}-px anchor configuration: not a MediaPipe BlazeFace model")
        self.min_score, self.nms_iou = min_score, nms_iou

    def __call__(self, image: np.ndarray) -> list[Detection]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3). Received: {image.shape} {image.dtype}")
        size = self.input_size
        x, scale, offset = letterbox(image, size)
        self.interpreter.set_tensor(self._input, (x.astype(np.float32) / 127.5 - 1.0)[None])
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self.interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores >= self.min_score
        boxes, kps = decode_boxes(raw[keep], self.anchors[keep], size)
        result = []
        for box, kp, score in weighted_nms(boxes, kps, scores[keep], self.nms_iou):
            to_image = lambda p: (p * size - offset) / scale  # noqa: E731
            b = to_image(box.reshape(2, 2)).reshape(4)
            result.append(Detection(b.astype(np.float32), score, to_image(kp).astype(np.float32)))
        return result


class AutoBlazeFace:
    """Short-range, and full-range on the frames where short-range finds no face (tfface's `auto`
    detector without its tiles, which would cost too much per video frame)."""

    def __init__(self, min_score: float = 0.5, nms_iou: float = 0.3, num_threads: int | None = None) -> None:
        self.short = BlazeFace(DETECTORS["short"], min_score, nms_iou, num_threads)
        self.full = BlazeFace(DETECTORS["full"], min_score, nms_iou, num_threads)

    def __call__(self, image: np.ndarray) -> list[Detection]:
        return self.short(image) or self.full(image)


def open_detector(spec: str | Path = "auto", min_score: float = 0.5,
                  num_threads: int | None = None) -> BlazeFace | AutoBlazeFace:
    """"auto", "short", "full", or the path of a MediaPipe BlazeFace .tflite."""
    if str(spec) == "auto":
        return AutoBlazeFace(min_score, num_threads=num_threads)
    return BlazeFace(DETECTORS.get(str(spec), spec), min_score, num_threads=num_threads)
