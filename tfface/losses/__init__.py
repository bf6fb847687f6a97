"""Masked task losses of the joint face model (3DMM, MARN, attributes, identity) and their weighting."""

from tfface.losses.geometry import FaceGeometry
from tfface.losses.joint import TASKS, JointLoss, LossConfig
from tfface.losses.masked import masked_mean

__all__ = ["TASKS", "FaceGeometry", "JointLoss", "LossConfig", "masked_mean"]
