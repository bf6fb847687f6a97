"""Surrogate-label a set of photos: landmarks -> 3DMM fit -> FaceRecords, with residuals and flags.

Single-image mode fits every photo alone; identity mode fits each person's photos together (one
shared identity, per-photo pose and expression). A fit whose residual (NME of the fitted model's
landmarks against the source landmarks) exceeds `max_nme` is flagged and left out of the records,
never silently kept; photos where the source finds no face or cannot be read are listed as failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tfface.errors import TffaceError
from tfface.fitting.labels import bfm_fitter, fit_crop_labels
from tfface.fitting.problem import FitConfig

DEFAULT_MAX_NME = 0.05  # 5 % of the face size: twice the typical landmark error of the default model


@dataclass
class LabelledFace:
    path: Path
    person: str | None
    landmarks: np.ndarray  # (68, 2) image pixels (source landmarks)
    roi: np.ndarray
    params: np.ndarray  # (62,)
    pose: np.ndarray  # (3,) yaw, pitch, roll degrees
    nme: float


@dataclass
class LabelRun:
    kept: list[LabelledFace] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    nmes: list[float] = field(default_factory=list)
    on_failed: Callable[[str], None] | None = None  # told each failure as one "FILE: reason" line, as it happens

    def fail(self, path: Path, reason: str) -> None:
        self.failed.append({"image": str(path), "reason": reason})
        if self.on_failed is not None:
            self.on_failed(reason if reason.startswith(f"{path}: ") else f"{path}: {reason}")

    def summary(self, max_nme: float, mode: str, source: str) -> dict[str, Any]:
        n = np.asarray(self.nmes) * 100
        stats = ({"mean": float(n.mean()), "median": float(np.median(n)), "p95": float(np.percentile(n, 95)),
                  "max": float(n.max())} if len(n) else {})
        return {"mode": mode, "landmark_source": source, "fitted": len(self.nmes), "kept": len(self.kept),
                "flagged": len(self.flagged), "failed": len(self.failed), "max_nme_percent": max_nme * 100,
                "fit_nme_percent": stats, "flagged_faces": self.flagged, "failed_images": self.failed}


def find_landmarks(items: Sequence[tuple[Path, str | None]], source: Callable[[np.ndarray], list[np.ndarray]],
                   run: LabelRun, progress: bool = True) -> list[tuple[Path, str | None, np.ndarray]]:
    """The largest face's 68 landmarks per photo; unreadable or faceless photos go to run.failed."""
    from tfface.io.guard import describe
    from tfface.io.images import read_image

    found = []
    for path, person in tqdm(items, desc="landmarks", unit="img", disable=not progress):
        try:
            faces = source(read_image(path))
        except Exception as e:  # noqa: BLE001 - whatever one photo does, it is that photo's line
            run.fail(path, str(e) if isinstance(e, TffaceError) else f"{path}: {describe(e)}")
            continue
        if not faces:
            run.fail(path, "no face found")
            continue
        found.append((path, person, faces[0]))
    return found


def fit_faces(found: list[tuple[Path, str | None, np.ndarray]], run: LabelRun, per_identity: bool,
              max_nme: float = DEFAULT_MAX_NME, config: FitConfig | None = None, progress: bool = True) -> LabelRun:
    fitter = bfm_fitter(config or FitConfig(silhouette_contour=False))
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, (_, person, _) in enumerate(found):
        groups[person if per_identity and person is not None else ("__single__", i // 256)].append(i)
    for key, idx in tqdm(groups.items(), desc="fitting", unit="group", disable=not progress):
        shared = per_identity and not isinstance(key, tuple) and len(idx) > 1
        labels = fit_crop_labels(np.stack([found[i][2] for i in idx]), fitter, shared_identity=shared)
        pose = labels.fit.pose()
        for j, i in enumerate(idx):
            path, person, lm = found[i]
            nme = float(labels.fit.nme[j])
            run.nmes.append(nme)
            if not np.isfinite(nme) or nme > max_nme:
                run.flagged.append({"image": str(path), "person": person, "nme_percent": round(nme * 100, 3)})
                continue
            run.kept.append(LabelledFace(path, person, lm, labels.roi_boxes[j], labels.params[j], pose[j], nme))
    return run
