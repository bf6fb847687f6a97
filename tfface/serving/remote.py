"""A photo -> faces pipeline whose network runs on a TF Serving server: local BlazeFace detection and
cropping (the 3DDFA_V2 box rule, `refine` re-crops), the `serving_default` signature on the server, and the
same `Face` results (and JSON) as `tfface.inference.reconstructor.FaceReconstructor`, through the same
crop -> run -> decode -> re-crop loop (`tfface.inference.face_path`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tfface.inference.face_path import reconstruct_rois
from tfface.inference.reconstructor import Face
from tfface.morphable.crop import roi_from_box
from tfface.morphable.decode import ShapeBasis, decode_faces


class ServedReconstructor:
    """`faces = ServedReconstructor(client)(image_rgb)` with a RestClient or GrpcClient: the network runs on
    the server (`serving_default`: de-normalised params), crops and decoding run here, as in
    `FaceReconstructor`."""

    def __init__(self, client: Any, image_size: int = 120, detector: str = "auto", min_score: float = 0.5,
                 refine: int = 1, morphable_model: str = "bfm_3ddfa_68") -> None:
        from tfface.detection import create_detector
        from tfface.models.presets import morphable_asset

        self.client, self.refine, self.image_size = client, refine, image_size
        lm = morphable_asset(morphable_model).landmark_model()
        self.basis = ShapeBasis(lm.mean, lm.id_basis, lm.exp_basis)
        self.detector = create_detector(detector, min_score)

    def run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        return {"params": np.asarray(self.client.predict(crops)["params"], np.float32)}

    def decode(self, params: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return decode_faces(params, rois, self.basis, self.image_size)

    def __call__(self, image: np.ndarray) -> list[Face]:
        detections = self.detector.detect(image)
        if not detections:
            return []
        rois = np.stack([roi_from_box(d.box) for d in detections])
        p = reconstruct_rois(image, rois, self.run, self.decode, self.image_size, self.refine)
        return [Face(np.asarray(d.box, np.float32), float(d.score), p.rois[i], p.outputs["params"][i],
                     p.landmarks[i], p.pose[i]) for i, d in enumerate(detections)]

    def close(self) -> None:
        self.detector.close()
