"""Converters from external checkpoint formats (no TensorFlow imported here)."""
