"""Synthetic faces whose labels are exactly right: landmarks drawn as dots, decoded from known params.

For tests, fixtures and benchmarks of the data layer (no real data needed): `synthetic_params` draws
plausible 3DDFA params (scaled rotation camera, coefficients around the preset's statistics);
`render_landmarks` draws the 68 points on a textured background, a few in pure colours so a test can
find them again after augmentation.
"""

from __future__ import annotations

import cv2
import numpy as np

from tfface.data.records import FaceRecord

# landmark index -> pure RGB colour: right eye outer corner, left eye outer corner, nose tip, right mouth corner
MARKERS = {36: (255, 0, 0), 45: (0, 255, 0), 30: (0, 0, 255), 48: (255, 0, 255)}


def synthetic_params(count: int, size: int = 120, seed: int = 0, max_yaw: float = 50.0) -> np.ndarray:
    """(count, 62) de-normalised params in a size x size 3DDFA crop, faces roughly centred."""
    from tfface.models.presets import load_preset
    from tfface.morphable.params import join_params, srt_to_camera
    from tfface.morphable.pose import rotation_from_euler

    stats = load_preset().param_stats
    rng = np.random.default_rng(seed)
    angles = rng.uniform([-max_yaw, -15, -15], [max_yaw, 15, 15], (count, 3)).astype(np.float32)
    k = size / 120.0
    scale = np.linalg.norm(stats.mean[:3]) * rng.uniform(0.9, 1.1, count) * k
    translation = (stats.mean[[3, 7, 11]] + rng.normal(0, 2, (count, 3))) * k
    camera = srt_to_camera(scale.astype(np.float32), rotation_from_euler(angles), translation.astype(np.float32))
    alphas = stats.mean[12:] + 0.5 * stats.std[12:] * rng.standard_normal((count, 50))
    return join_params(camera, alphas[:, :40], alphas[:, 40:]).numpy().astype(np.float32)


def landmarks_from_params(params: np.ndarray, size: int = 120) -> np.ndarray:
    """(N, 62) -> (N, 68, 2) crop pixels with the 68-point BFM (tfface.morphable.geometry conventions)."""
    from tfface.losses.geometry import FaceGeometry
    from tfface.models.presets import load_preset

    preset = load_preset()
    return FaceGeometry(preset.param_stats, preset.shape_model, size).landmarks_px(params).numpy()


def render_landmarks(landmarks: np.ndarray, size: int, seed: int = 0, radius: int = 2) -> np.ndarray:
    """RGB uint8 (size, size, 3): dim noise, grey dots at the landmarks, MARKERS in their colours."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    image[..., :] = image[..., :1]  # grey noise: no pure colour in the background
    points = np.asarray(landmarks)[:, :2]
    order = [i for i in range(len(points)) if i not in MARKERS] + list(MARKERS)  # markers on top
    for i in order:
        colour = MARKERS.get(i, (90, 90, 90))
        centre = (int(round(points[i, 0] * 16)), int(round(points[i, 1] * 16)))
        cv2.circle(image, centre, radius * 16, colour, -1, cv2.LINE_AA, shift=4)
    return image


def marker_positions(image_rgb: np.ndarray) -> dict[int, np.ndarray]:
    """Centroid (x, y) of each marker colour found in an RGB image (float), keyed by landmark index."""
    img = np.asarray(image_rgb, np.float32)
    ys, xs = np.mgrid[:img.shape[0], :img.shape[1]]
    found = {}
    for index, colour in MARKERS.items():
        on = np.array(colour) > 0
        weight = np.clip(img[..., on].min(-1) - (img[..., ~on].max(-1) if (~on).any() else 0), 0, None)
        weight = np.where(weight > 60, weight, 0)
        if weight.sum() > 0:
            found[index] = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    return found


def synthetic_records(count: int, size: int = 120, seed: int = 0, source: str = "synthetic",
                      with_params: bool = True) -> list[FaceRecord]:
    """Records of synthetic face crops (JPEG bytes, roi = the whole image) with params and landmarks."""
    params = synthetic_params(count, size, seed)
    landmarks = landmarks_from_params(params, size)
    roi = np.array([0, 0, size, size], np.float32)
    records = []
    for i in range(count):
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(render_landmarks(landmarks[i], size, seed + i), cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 95])
        records.append(FaceRecord(image=jpeg.tobytes(), source=source, key=f"{source}/{seed}/{i}", roi=roi,
                                  landmarks=landmarks[i], params=params[i] if with_params else None, param_size=size))
    return records
