"""Face crops for evaluation: from ground-truth landmarks, or from the detector as a user gets them
(BlazeFace box -> 3DDFA_V2 box rule -> `refine` re-crops from the predicted landmarks, like
`FaceReconstructor`), for any Runner."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfface.inference.decode import DecodedFaces
from tfface.inference.face_path import reconstruct_rois
from tfface.morphable.crop import roi_from_box

from tfface.evaluation.runner import Runner


@dataclass(frozen=True)
class Prediction:
    roi: np.ndarray  # (4,) the crop the model saw
    outputs: dict[str, np.ndarray]  # runner outputs for this face, batch axis removed
    decoded: DecodedFaces  # one face
    box: np.ndarray | None = None  # detector box when the crop came from the detector
    score: float = float("nan")


def predict_roi(runner: Runner, image: np.ndarray, roi: np.ndarray, refine: int = 0) -> Prediction:
    """Run the model on the crop `roi`, then re-crop `refine` times from its own landmarks."""
    p = reconstruct_rois(image, np.asarray(roi, np.float32)[None], runner, runner.decoder.landmarks_pose,
                         runner.image_size, refine)
    decoded = DecodedFaces(p.outputs["params"], p.landmarks, p.pose)
    return Prediction(p.rois[0], {k: np.asarray(v)[0] for k, v in p.outputs.items()}, decoded)


class DetectorCrops:
    """BlazeFace detections -> predictions; `near` picks the detection closest to a point."""

    def __init__(self, runner: Runner, detector: str = "auto", min_score: float = 0.5, refine: int = 1) -> None:
        from tfface.detection import create_detector

        self.runner, self.refine = runner, refine
        self.detector = create_detector(detector, min_score)

    def __call__(self, image: np.ndarray, near: np.ndarray | None = None,
                 max_distance: float = np.inf) -> Prediction | None:
        """The detection whose centre is nearest `near` (default: the image centre), or None when
        nothing is found within `max_distance` pixels."""
        detections = self.detector.detect(image)
        if not detections:
            return None
        target = np.array([image.shape[1], image.shape[0]], np.float64) / 2 if near is None else np.asarray(near)
        dist = [np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - target) for d in detections]
        best = int(np.argmin(dist))
        if dist[best] > max_distance:
            return None
        det = detections[best]
        p = predict_roi(self.runner, image, roi_from_box(det.box), self.refine)
        return Prediction(p.roi, p.outputs, p.decoded, np.asarray(det.box, np.float32), float(det.score))

    def face_or_centre(self, image: np.ndarray) -> Prediction:
        """The detected face nearest the image centre, else the centred square of the whole image (for
        datasets of face-centred photos: LFW, aligned CelebA); `box` is None when nothing was found."""
        pred = self(image)
        if pred is None:
            h, w = image.shape[:2]
            side = min(h, w)
            roi = np.array([(w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2], np.float32)
            pred = predict_roi(self.runner, image, roi, self.refine)
        return pred

    def close(self) -> None:
        self.detector.close()
