"""Backbones map normalised face crops to a feature vector, and nothing else."""
