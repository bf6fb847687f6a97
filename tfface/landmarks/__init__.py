"""Landmark sources for labelling photos: the default network's 68 points, MediaPipe's 468 mapped to 68."""
