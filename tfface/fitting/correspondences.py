"""iBUG-68 landmark correspondences of the supported models.

BFM (3DDFA 68-point base): built in (the model *is* the 68 points). ICT-FaceKit: `landmarks68` of its
file (and the network-matched set, see tfface.fitting.ict_asset). Surrey Face Model: eos'
`ibug_to_sfm.txt` (TOML), which leaves the 16 jaw points 1-8, 10-17 undefined (they slide along the
outline); they come back with weight 0, so the fitter ignores them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfface.errors import DataFileError
from tfface.morphable.model import NUM_LANDMARKS


@dataclass(frozen=True)
class Correspondence:
    vertex_ids: np.ndarray  # (68,) int32; 0 where undefined
    weights: np.ndarray  # (68,) float 1 where defined, 0 where not

    @property
    def defined(self) -> np.ndarray:
        return self.weights > 0


def read_ibug_mapping(path: str | os.PathLike) -> Correspondence:
    """eos-style mapping file: `[landmark_mappings]` with `<ibug 1-based> = <vertex id>` lines."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        table = tomllib.loads(path.read_text())["landmark_mappings"]
    except (tomllib.TOMLDecodeError, KeyError, UnicodeDecodeError) as e:
        raise DataFileError(f"{path}: not an iBUG mapping file with [landmark_mappings] ({e})") from e
    ids, weights = np.zeros(NUM_LANDMARKS, np.int32), np.zeros(NUM_LANDMARKS)
    for key, vertex in table.items():
        if not (key.isdigit() and 1 <= int(key) <= NUM_LANDMARKS and isinstance(vertex, int) and vertex >= 0):
            raise DataFileError(f"{path}: bad mapping '{key} = {vertex}' (iBUG 1..68 = vertex id)")
        ids[int(key) - 1], weights[int(key) - 1] = vertex, 1.0
    return Correspondence(ids, weights)
