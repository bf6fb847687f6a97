"""Face morphs for identity distillation: new faces, labelled by the teacher.

With a few thousand people, a student matches the teacher on the faces it saw and drifts on new people.
Two faces blended pixel by pixel are a face of nobody in the data; the teacher's embedding of the blend
says how it sees the space *between* people, which is where unseen people fall ("function matching":
Beyer et al., *Knowledge distillation: A good teacher is patient and consistent*, CVPR 2022, where
mixup views labelled by the teacher were what let students generalise from small data).

Each side gets its own blend of the same two faces with the same weight: the student's stored crops
(tfface.data.records' frame, the one crop rule) and the teacher's aligned chips (tfface.data.teacher).
The blend is stored as a record with the teacher label only, its roi `tfface.data.records.stored_roi`.
"""

from __future__ import annotations

import numpy as np


def blend(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """weight * a + (1 - weight) * b of two uint8 images of one shape, rounded to uint8."""
    if a.shape != b.shape:
        raise ValueError(f"blend needs images of one shape, got {a.shape} and {b.shape}")
    mixed = weight * a.astype(np.float32) + (1.0 - weight) * b.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def morph_pairs(candidates: np.ndarray, count: int, seed: int = 0, low: float = 0.2,
                high: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """`count` pairs (count, 2) of distinct entries of `candidates` and blend weights U(low, high):
    weights near 0 or 1 would be one face with a ghost, which the teacher labels as that face."""
    if len(candidates) < 2:
        raise ValueError("morphs need at least two faces")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(candidates), count)
    second = (first + rng.integers(1, len(candidates), count)) % len(candidates)  # never the same face
    return np.stack([candidates[first], candidates[second]], axis=1), rng.uniform(low, high, count)

