"""tfface: one face photo in; 3DMM, head pose, landmarks, dense mesh, attributes and identity out."""

__version__ = "0.1.0"
