"""`auto` detection: BlazeFace short-range; where it finds no face, full-range on the whole photo and
on overlapping tiles, merged.

Short-range (128 px input) finds faces that fill a good part of the photo and is the most accurate on
them, but on a 1600 px photo it already misses a 145 px face. Full-range (192 px) finds faces of
~7-9% of the photo's long side (one of two at 3.5-5%); tiles of at most 1024 px bring faces down to
~80 px in a 12 MP photo (a person across a room) above that limit (`benchmarks/detection_scales.py`).
Tile detections must score `tile_score` (0.65): measured here, real faces on tiles scored 0.70-0.91
and false detections on noise images 0.51-0.61. The second stage runs only on photos where
short-range found nothing, so portraits and selfies cost and behave exactly as with `short`; a photo
with one large face and other small ones gets only the large one (use `full` for group photos).
"""

from __future__ import annotations

import numpy as np

from tfface.detection.blazeface import BlazeFaceDetector, Detection

MIN_TILE, MAX_TILE = 384, 1024  # px: smaller tiles add little; larger ones lose faces under ~80 px


class CascadeDetector:
    """RGB uint8 image -> faces, best first (see the module docstring). A context manager, like
    `BlazeFaceDetector`."""

    model = "auto"

    def __init__(self, min_score: float = 0.5, nms_iou: float = 0.3, tile_overlap: float = 0.25,
                 tile_score: float = 0.65) -> None:
        self.min_score, self.nms_iou, self.tile_overlap = min_score, nms_iou, tile_overlap
        self.tile_score = max(tile_score, min_score)
        self.short = BlazeFaceDetector("short", min_score, nms_iou)
        self._full: BlazeFaceDetector | None = None

    @property
    def full(self) -> BlazeFaceDetector:
        if self._full is None:
            self._full = BlazeFaceDetector("full", self.min_score, self.nms_iou)
        return self._full

    def detect(self, image: np.ndarray) -> list[Detection]:
        found = self.short.detect(image)
        if found:
            return found
        return non_max_suppression(self.full.detect(image) + self.detect_tiles(image), self.nms_iou)

    def detect_tiles(self, image: np.ndarray) -> list[Detection]:
        """Full-range on overlapping tiles (half the photo's short side, within MIN_TILE..MAX_TILE px)
        scoring at least `tile_score`, merged by non-maximum suppression; [] for photos too small to tile."""
        h, w = image.shape[:2]
        side = int(np.clip(min(h, w) // 2, MIN_TILE, MAX_TILE))
        if max(h, w) < 2 * MIN_TILE:
            return []
        found, cut = [], []
        for y0 in _starts(h, side, self.tile_overlap):
            for x0 in _starts(w, side, self.tile_overlap):
                tile = np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])
                th, tw = tile.shape[:2]
                shift = np.array([x0, y0], np.float32)
                for d in self.full.detect(tile):
                    if d.score < self.tile_score:
                        continue
                    found.append(Detection(d.box + np.tile(shift, 2), d.score, d.keypoints + shift))
                    # a box at an inner tile edge is probably a cut face, whole in the next tile
                    cut.append(bool((d.box[0] < 2 and x0 > 0) or (d.box[1] < 2 and y0 > 0)
                                    or (d.box[2] > tw - 2 and x0 + tw < w) or (d.box[3] > th - 2 and y0 + th < h)))
        return non_max_suppression(found, self.nms_iou, demoted=cut)

    def close(self) -> None:
        self.short.close()
        if self._full is not None:
            self._full.close()
            self._full = None

    def __enter__(self) -> "CascadeDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _starts(length: int, side: int, overlap: float) -> list[int]:
    """Tile origins covering [0, length) with tiles of `side` overlapping by about `overlap`."""
    if length <= side:
        return [0]
    count = int(np.ceil((length - side) / (side * (1 - overlap)))) + 1
    return [int(round(v)) for v in np.linspace(0, length - side, count)]


def non_max_suppression(detections: list[Detection], iou: float,
                        demoted: list[bool] | None = None) -> list[Detection]:
    """Best first; a detection overlapping a kept one by more than `iou` IoU, or lying mostly (60%)
    inside it, is dropped. `demoted` ones (cut by a tile edge) only count after all the others."""
    demoted = demoted or [False] * len(detections)
    kept: list[Detection] = []
    for i in sorted(range(len(detections)), key=lambda i: (demoted[i], -detections[i].score)):
        if all(not _duplicate(detections[i].box, k.box, iou) for k in kept):
            kept.append(detections[i])
    return sorted(kept, key=lambda d: -d.score)


def _duplicate(a: np.ndarray, b: np.ndarray, iou: float) -> bool:
    inter = float(np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None)))
    area_a, area_b = float(np.prod(a[2:] - a[:2])), float(np.prod(b[2:] - b[:2]))
    return inter / (area_a + area_b - inter) > iou or inter / max(min(area_a, area_b), 1e-6) > 0.6
