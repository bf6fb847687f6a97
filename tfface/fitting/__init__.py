"""3DMM fitting to landmarks: single photos, shared identities, dense ICT-FaceKit meshes, surrogate labels.

    from tfface.fitting import LandmarkFitter, IdentityFitter, fit_crop_labels, DenseFitter
"""

from tfface.fitting.dense import DenseFace, DenseFitter
from tfface.fitting.fitter import FitResult, LandmarkFitter
from tfface.fitting.identity import IdentityFitter
from tfface.fitting.labels import CropLabels, fit_crop_labels
from tfface.fitting.prior import CoefficientPrior, default_prior
from tfface.fitting.problem import FitConfig

__all__ = ["CoefficientPrior", "CropLabels", "DenseFace", "DenseFitter", "FitConfig", "FitResult",
           "IdentityFitter", "LandmarkFitter", "default_prior", "fit_crop_labels"]
