"""Inference: detection boxes -> crops -> network -> decoded landmarks, pose and parameters."""
