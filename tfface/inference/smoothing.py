"""Temporal smoothing for video: a One-Euro filter (Casiez et al., CHI 2012) per tracked face.

A One-Euro filter is an exponential smoother whose cutoff frequency rises with speed: still faces get
a low cutoff (jitter removed), moving faces a high one (little lag). Here one cutoff per face and frame
is computed from the mean landmark speed in face sizes per second, and the same smoothing factor is
applied to the landmarks, the pose and the params, so the smoothed outputs stay consistent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    # Defaults chosen on mobile_demo.smoothing_eval's synthetic clip (see mobile_demo/README.md).
    min_cutoff: float = 0.5  # Hz at rest: lower = smoother still faces, more lag when motion starts
    beta: float = 20.0  # cutoff gain per (face size / s) of speed: higher = less lag on fast motion
    d_cutoff: float = 1.0  # Hz, for the speed estimate itself

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0. Received: {name}={getattr(self, name)}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0. Received: beta={self.beta}")


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """Filters a dict of arrays (e.g. landmarks, pose, params); `speed_key` and `scale` define the speed
    that drives the cutoff (mean point speed / scale per second)."""

    config: OneEuroConfig = field(default_factory=OneEuroConfig)
    speed_key: str = "landmarks"
    _last_t: float | None = None
    _state: dict[str, np.ndarray] = field(default_factory=dict)
    _speed: float = 0.0

    def __call__(self, t: float, values: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
        values = {k: np.asarray(v, np.float64) for k, v in values.items()}
        if self._last_t is None or t <= self._last_t:
            self._last_t, self._state, self._speed = t, values, 0.0
            return {k: v.astype(np.float32) for k, v in values.items()}
        dt = t - self._last_t
        key = self.speed_key
        raw = np.linalg.norm((values[key] - self._state[key])[..., :2], axis=-1).mean() / max(scale, 1e-6) / dt
        self._speed += _alpha(self.config.d_cutoff, dt) * (raw - self._speed)
        a = _alpha(self.config.min_cutoff + self.config.beta * self._speed, dt)
        self._state = {k: self._state[k] + a * (v - self._state[k]) for k, v in values.items()}
        self._last_t = t
        return {k: v.astype(np.float32) for k, v in self._state.items()}


def face_size(landmarks: np.ndarray) -> float:
    """Mean of the landmarks' width and height, in pixels: the unit of jitter and speed."""
    pts = np.asarray(landmarks)[:, :2]
    return float(np.ptp(pts[:, 0]) + np.ptp(pts[:, 1])) / 2.0


class FaceTracker:
    """Matches faces across frames by landmark centre distance and smooths each track separately;
    a face unseen for `max_missing` frames is dropped (its filter forgets it)."""

    def __init__(self, config: OneEuroConfig | None = None, max_missing: int = 5) -> None:
        self.config = config or OneEuroConfig()
        self.max_missing = max_missing
        self._tracks: list[dict] = []  # {"centre", "size", "filter", "missing"}

    def __call__(self, t: float, faces: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Each face: {"landmarks" (68, 3), plus any arrays to smooth alike}; returns them smoothed."""
        free = list(range(len(self._tracks)))
        out = []
        for face in faces:
            centre, size = face["landmarks"][:, :2].mean(0), face_size(face["landmarks"])
            dists = [np.linalg.norm(self._tracks[i]["centre"] - centre) for i in free]
            j = int(np.argmin(dists)) if dists else -1
            if j >= 0 and dists[j] < 0.5 * max(size, self._tracks[free[j]]["size"]):
                track = self._tracks[free.pop(j)]
            else:
                track = {"filter": OneEuroFilter(self.config)}
                self._tracks.append(track)
            track.update(centre=centre, size=size, missing=0)
            out.append(track["filter"](t, face, size))
        for i in free:
            self._tracks[i]["missing"] += 1
        self._tracks = [tr for tr in self._tracks if tr["missing"] <= self.max_missing]
        return out
