"""Shared test helpers: where the optional ../shared/data lives, and skipping when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_IMAGE = REPO / "examples" / "trump_hillary.jpg"


def shared_path(relative: str) -> Path:
    """A path under ../shared/data, or skip the test cleanly when it is not there."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"optional data not available: {path}")
    return path


@pytest.fixture(scope="session")
def default_preset():
    from tfface.models.presets import load_preset

    return load_preset()


@pytest.fixture(scope="session")
def reconstructor():
    from tfface.inference.reconstructor import FaceReconstructor

    rec = FaceReconstructor()
    yield rec
    rec.close()
