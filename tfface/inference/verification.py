"""Face verification with a joint preset's identity embedding: are two photos the same person?

The embedding of the largest face in each photo, their cosine similarity, and a decision against a
threshold (by default the preset's `verification_threshold`, chosen on LFW-style pairs when the
preset was made).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfface.errors import DataFileError, NoFaceError, TffaceError
from tfface.inference.reconstructor import FaceReconstructor, largest_face
from tfface.io.images import read_image
from tfface.models.presets import JOINT_PRESET, Preset
from tfface.runtimes import Runner


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


@dataclass(frozen=True)
class Verification:
    similarity: float
    same: bool
    threshold: float
    a: str
    b: str
    far: float | None = None  # the false-accept rate of the threshold on held-out pairs (None: not known)

    def to_json(self) -> dict[str, Any]:
        return {"similarity": round(self.similarity, 6), "same": self.same, "threshold": self.threshold,
                "far": self.far, "a": self.a, "b": self.b}


class FaceVerifier:
    """`FaceVerifier(preset)(path_a, path_b)` -> Verification; `.embed(path)` -> (D,) embedding."""

    def __init__(self, preset: str | os.PathLike | Preset | Runner = JOINT_PRESET, threshold: float | None = None,
                 detector: str = "auto", min_score: float = 0.5, refine: int = 1) -> None:
        self.reconstructor = FaceReconstructor(preset, detector, min_score, refine)
        runner = self.reconstructor.runner
        if "embedding" not in runner.outputs:
            raise TffaceError(f"'{runner.name}' has no 'embedding' output, needed for face verification; "
                              f"use a joint model such as {JOINT_PRESET}")
        self.threshold = float(threshold if threshold is not None else _model_threshold(runner))
        self.far = runner.verification_far if threshold is None else None

    def embed(self, path: str | os.PathLike) -> np.ndarray:
        """The embedding of the largest face in the photo at `path`."""
        faces = self.reconstructor(read_image(path))
        if not faces:
            raise NoFaceError(f"{path}: no face found")
        return largest_face(faces).embedding

    def __call__(self, a: str | os.PathLike, b: str | os.PathLike) -> Verification:
        similarity = cosine_similarity(self.embed(a), self.embed(b))
        return Verification(similarity, similarity >= self.threshold, self.threshold, str(a), str(b), self.far)

    def close(self) -> None:
        self.reconstructor.close()


def read_pairs(path: str | os.PathLike) -> tuple[list[tuple[int, Path, Path]], list[str]]:
    """((line number, photo a, photo b) of a pairs file, one message per malformed line): two paths per
    line, tab-separated (or separated by spaces when the line has no tab), relative to the file's folder;
    blank lines and # comments skipped."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataFileError(f"{path}: cannot read the pairs file ({type(e).__name__})") from None
    pairs, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        if len(fields) == 2 and all(fields):
            pairs.append((number, *(path.parent / f for f in fields)))
        else:
            problems.append(f"{path}:{number}: expected two photo paths, found {len(fields)}: {line.strip()[:80]!r}")
    if not pairs and not problems:
        raise DataFileError(f"{path}: no pairs (two photo paths per line)")
    return pairs, problems


def _model_threshold(runner: Runner) -> float:
    """The threshold chosen when the model was made (preset config.json or export metadata.json)."""
    if runner.verification_threshold is None:
        raise TffaceError(f"'{runner.name}' has no verification_threshold in its config.json or export "
                          "metadata; pass a threshold (--threshold T)")
    return float(runner.verification_threshold)

