"""tfface: one face photo in; 3DMM, head pose, landmarks (and later attributes, identity) out."""

__version__ = "0.1.0"
