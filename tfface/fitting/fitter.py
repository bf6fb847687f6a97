"""Fit a morphable model to 68 landmarks: pose + identity + expression, batched Levenberg-Marquardt.

    fitter = LandmarkFitter(morphable_asset("bfm_3ddfa_68"))
    result = fitter.fit(points)            # (B, 68, 2) in a y-up frame, or (B, 68, 3)
    result.params()                        # (B, 12 + K + E): [s*R | t] row-major, alpha_id, alpha_exp

Points are in a right-handed frame with y UP (3DDFA's crop frame, see tfface.morphable.geometry);
`tfface.fitting.labels` converts image pixels. 2D targets give a weak-perspective camera whose z
translation is unobservable (set by `FitResult.camera(tz=...)`); 3D targets give a similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfface.fitting.prior import CoefficientPrior, default_prior
from tfface.fitting.problem import (FitConfig, LandmarkProblem, State, check_targets, normalise_targets,
                                    yaw_of)
from tfface.morphable.model import MorphableModel


@dataclass(frozen=True)
class FitResult:
    scale: np.ndarray  # (B,)
    rotation: np.ndarray  # (B, 3, 3)
    translation: np.ndarray  # (B, 3); z is 0 for 2D fits
    alpha_id: np.ndarray  # (B, K)
    alpha_exp: np.ndarray  # (B, E)
    landmarks: np.ndarray  # (B, 68, D) the fitted model's landmarks, in the input frame
    errors: np.ndarray  # (B, 68) distance of each fitted landmark to its target, input units
    nme: np.ndarray  # (B,) mean weighted error / sqrt(landmark box area) (the fit residual)

    def camera(self, tz: float | None = None) -> np.ndarray:
        """(B, 3, 4) = [s*R | t]; `tz` replaces the z translation (unknown in 2D fits)."""
        t = self.translation.copy()
        if tz is not None:
            t[:, 2] = tz
        return np.concatenate([self.scale[:, None, None] * self.rotation, t[:, :, None]], axis=2)

    def params(self, tz: float | None = None) -> np.ndarray:
        """(B, 12 + K + E) float32 in the 3DDFA layout (62 for the BFM 40 + 10 model)."""
        cam = self.camera(tz).reshape(len(self.scale), 12)
        return np.concatenate([cam, self.alpha_id, self.alpha_exp], axis=1).astype(np.float32)

    def pose(self) -> np.ndarray:
        """(B, 3) yaw, pitch, roll in degrees (tfface.morphable.pose convention)."""
        r = self.rotation
        return np.degrees(np.stack([np.arcsin(np.clip(-r[:, 0, 2], -1, 1)), np.arctan2(r[:, 1, 2], r[:, 2, 2]),
                                    np.arctan2(r[:, 0, 1], r[:, 0, 0])], axis=-1))


class LandmarkFitter:
    """Regularised landmark fitting of one morphable model; `fit` handles any batch size."""

    def __init__(self, model: MorphableModel, prior: CoefficientPrior | None = None,
                 config: FitConfig | None = None) -> None:
        self.model = model
        self.prior = prior or default_prior(model)
        self.config = config or FitConfig()
        self.problem = LandmarkProblem(model, self.prior, self.config)

    def fit(self, points: np.ndarray, weights: np.ndarray | None = None) -> FitResult:
        """Landmarks (B, 68, 2|3) (or one (68, D)) + optional per-landmark weights (B, 68) -> FitResult."""
        points, base_w = check_targets(points, weights)
        targets, centre, size = normalise_targets(points)
        state = self.problem.initial_state(targets, base_w)
        state = self._solve(state, targets, base_w)
        return self.result(state, points, centre, size, base_w)

    def _solve(self, state: State, targets: np.ndarray, base_w: np.ndarray) -> State:
        problem, cfg = self.problem, self.config
        b, dim = targets.shape[0], targets.shape[-1]
        lam = np.full(b, 1e-3)
        for _ in range(cfg.iterations):
            sqrt_w = np.sqrt(problem.weights(base_w, state, dim)) / cfg.landmark_sigma
            r, _, j_pose, j_id, j_exp = problem.evaluate(state, targets, sqrt_w)
            blocks, priors = [j_pose], [np.zeros((b, j_pose.shape[-1]))]
            if cfg.fit_identity:
                blocks.append(j_id), priors.append(state.beta_id)
            if cfg.fit_expression:
                blocks.append(j_exp), priors.append(state.beta_exp)
            jac, beta = np.concatenate(blocks, axis=-1), np.concatenate(priors, axis=-1)
            n_pose = j_pose.shape[-1]
            reg = np.ones(jac.shape[-1])
            reg[:n_pose] = 0.0
            jt = jac.transpose(0, 2, 1)
            h = jt @ jac + np.diag(reg)
            g = (jt @ r[..., None])[..., 0] + reg * beta
            cost = (r ** 2).sum(-1) + (state.beta_id ** 2).sum(-1) + (state.beta_exp ** 2).sum(-1)
            diag = np.einsum("bii->bi", h)
            delta = -np.linalg.solve(h + lam[:, None, None] * np.einsum("bi,ij->bij", diag + 1e-9, np.eye(len(reg))),
                                     g[..., None])[..., 0]
            d_id = delta[:, n_pose:n_pose + problem.num_id] if cfg.fit_identity else np.zeros_like(state.beta_id)
            d_exp = delta[:, -problem.num_exp:] if cfg.fit_expression and problem.num_exp else np.zeros_like(state.beta_exp)
            trial = problem.step(state, delta[:, :n_pose], d_id, d_exp)
            r_new, _ = problem.evaluate(trial, targets, sqrt_w, jacobian=False)
            new_cost = (r_new ** 2).sum(-1) + (trial.beta_id ** 2).sum(-1) + (trial.beta_exp ** 2).sum(-1)
            better = new_cost <= cost
            state = trial.select(better, state)
            lam = np.where(better, np.maximum(lam / 3.0, 1e-7), np.minimum(lam * 4.0, 1e6))
        return state

    def result(self, state: State, points: np.ndarray, centre: np.ndarray, size: np.ndarray,
               base_w: np.ndarray) -> FitResult:
        dim = points.shape[-1]
        _, proj = self.problem.evaluate(state, np.zeros_like(points), np.ones(points.shape[:2]), jacobian=False)
        fitted = proj * size[:, None, None] + centre[:, None]
        errors = np.linalg.norm(fitted - points, axis=-1)
        w = self.problem.weights(base_w, state, dim) > 0
        nme = (errors * w).sum(-1) / w.sum(-1) / size
        translation = np.zeros((len(points), 3))
        translation[:, :dim] = state.t * size[:, None] + centre
        p = self.prior
        return FitResult(
            scale=np.exp(state.log_s) * size, rotation=state.rotation, translation=translation,
            alpha_id=p.id_mean + state.beta_id * p.id_std, alpha_exp=p.exp_mean + state.beta_exp * p.exp_std,
            landmarks=fitted, errors=errors, nme=nme)


__all__ = ["FitConfig", "FitResult", "LandmarkFitter", "yaw_of"]
