"""Gaussian priors on morphable-model coefficients (the regulariser of every fit).

The fitter works in whitened coefficients beta = (alpha - mean) / std, so the prior is ||beta||^2 and
the normal equations stay well conditioned whatever the basis scaling (3DDFA's BFM coefficients are
~1e5, ICT's are ~1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfface.morphable.model import MorphableModel
from tfface.morphable.params import CAMERA_DIM, ParamStats


@dataclass(frozen=True)
class CoefficientPrior:
    id_mean: np.ndarray  # (K,)
    id_std: np.ndarray  # (K,)
    exp_mean: np.ndarray  # (E,)
    exp_std: np.ndarray  # (E,)
    exp_bounds: tuple[float, float] | None = None  # blendshape weights (ICT: [0, 1]) are clipped

    def __post_init__(self) -> None:
        for name in ("id_mean", "id_std", "exp_mean", "exp_std"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), np.float64).reshape(-1))
        if self.id_mean.shape != self.id_std.shape or self.exp_mean.shape != self.exp_std.shape:
            raise ValueError("prior means and stds must have equal shapes")
        if np.any(self.id_std <= 0) or np.any(self.exp_std <= 0):
            raise ValueError("prior stds must be positive")

    @property
    def num_id(self) -> int:
        return int(self.id_mean.shape[0])

    @property
    def num_exp(self) -> int:
        return int(self.exp_mean.shape[0])

    @classmethod
    def standard(cls, num_id: int, num_exp: int, id_std: float = 1.0, exp_std: float = 1.0,
                 exp_bounds: tuple[float, float] | None = None) -> "CoefficientPrior":
        return cls(np.zeros(num_id), np.full(num_id, id_std), np.zeros(num_exp), np.full(num_exp, exp_std),
                   exp_bounds)

    @classmethod
    def from_param_stats(cls, stats: ParamStats, num_id: int = 40) -> "CoefficientPrior":
        """3DDFA: the training distribution of the 62-d params (mean/std) is the prior on alpha."""
        mean, std = stats.mean[CAMERA_DIM:], stats.std[CAMERA_DIM:]
        return cls(mean[:num_id], std[:num_id], mean[num_id:], std[num_id:])


def default_prior(model: MorphableModel) -> CoefficientPrior:
    """The prior that fits the model's coefficient convention.

    BFM (3DDFA, 40 + 10): the default preset's parameter statistics. ICT-FaceKit: identity ~ N(0, 1),
    ARKit blendshape weights in [0, 1] with a N(0, 0.5) pull towards neutral. Others: N(0, 1).
    """
    if model.name.startswith("bfm") and model.num_id == 40 and model.num_exp == 10:
        from tfface.models.presets import DEFAULT_PRESET, preset_dir

        stats = ParamStats.from_npz(preset_dir(DEFAULT_PRESET) / "param_stats.npz")
        return CoefficientPrior.from_param_stats(stats, model.num_id)
    if model.name.startswith("ict"):
        return CoefficientPrior.standard(model.num_id, model.num_exp, 1.0, 0.5, (0.0, 1.0))
    return CoefficientPrior.standard(model.num_id, model.num_exp)
