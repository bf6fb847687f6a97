"""The landmark-fitting problem shared by the single- and multi-image fitters (batched numpy).

Projection (weak perspective, 3DDFA's camera): p = s * (R v)[:D] + t, with D = 2 (image landmarks) or
D = 3 (3D landmarks: a similarity transform). Targets are normalised per face (centred, divided by the
landmark box size) so one noise level and one damping schedule fit every photo size; coefficients are
whitened by the prior. Rotations are updated on the left, R <- exp([w]x) R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfface.errors import TffaceError
from tfface.fitting.prior import CoefficientPrior
from tfface.morphable.model import NUM_LANDMARKS, MorphableModel

JAW = np.arange(0, 17)  # iBUG-68 contour points: on a turned face they slide along the silhouette


@dataclass(frozen=True)
class FitConfig:
    """How a fit weighs landmarks against the prior.

    landmark_sigma: expected landmark error as a fraction of the face size (sqrt of the landmark box
    area); smaller trusts the landmarks more and the prior less.
    silhouette_contour: the 2D jaw points come from the visible outline (annotations, MediaPipe), so on
    the far side of a turned face they do not sit on fixed model vertices; their weight then falls
    linearly with |yaw| from 1 at 0 deg to `contour_min_weight` at 45 deg. Set False for landmarks that
    are fixed model vertices (the default network's, AFLW2000-3D pt3d_68).
    """

    iterations: int = 15
    landmark_sigma: float = 0.02
    silhouette_contour: bool = True
    contour_min_weight: float = 0.1
    fit_identity: bool = True
    fit_expression: bool = True

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1. Received: iterations={self.iterations}")
        if not self.landmark_sigma > 0:
            raise ValueError(f"landmark_sigma must be > 0. Received: landmark_sigma={self.landmark_sigma}")
        if not 0 <= self.contour_min_weight <= 1:
            raise ValueError(f"contour_min_weight must be in [0, 1]. Received: {self.contour_min_weight}")


@dataclass
class State:
    """Normalised unknowns of B faces."""

    log_s: np.ndarray  # (B,)
    rotation: np.ndarray  # (B, 3, 3)
    t: np.ndarray  # (B, D)
    beta_id: np.ndarray  # (B, K) whitened
    beta_exp: np.ndarray  # (B, E) whitened

    def copy(self) -> "State":
        return State(*(a.copy() for a in (self.log_s, self.rotation, self.t, self.beta_id, self.beta_exp)))

    def select(self, take: np.ndarray, other: "State") -> "State":
        """Per face: this state where `take`, else `other`."""
        def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.where(take.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        return State(*(pick(a, b) for a, b in zip(
            (self.log_s, self.rotation, self.t, self.beta_id, self.beta_exp),
            (other.log_s, other.rotation, other.t, other.beta_id, other.beta_exp))))


def rodrigues(w: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (B, 3) -> rotations (B, 3, 3)."""
    theta = np.linalg.norm(w, axis=-1)[:, None, None]
    k = np.zeros(w.shape[:-1] + (3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = w[:, 2], -w[:, 1], w[:, 0]
    small = theta < 1e-8
    a = np.where(small, 1.0, np.sin(theta) / np.where(small, 1.0, theta))
    b = np.where(small, 0.5, (1 - np.cos(theta)) / np.where(small, 1.0, theta) ** 2)
    return np.eye(3) + a * k + b * (k @ k)


def yaw_of(rotation: np.ndarray) -> np.ndarray:
    """Yaw in degrees (tfface.morphable.pose convention) of rotations (B, 3, 3)."""
    return np.degrees(np.arcsin(np.clip(-rotation[:, 0, 2], -1.0, 1.0)))


class LandmarkProblem:
    """A model's 68 landmark vertices, whitened by a prior, against normalised targets."""

    def __init__(self, model: MorphableModel, prior: CoefficientPrior, config: FitConfig) -> None:
        if (prior.num_id, prior.num_exp) != (model.num_id, model.num_exp):
            raise ValueError(f"prior ({prior.num_id} id, {prior.num_exp} exp) does not match {model.name} "
                             f"({model.num_id} id, {model.num_exp} exp)")
        lm = model.landmarks
        self.model, self.prior, self.config = model, prior, config
        id_b = model.id_basis[:, lm].astype(np.float64)
        exp_b = model.exp_basis[:, lm].astype(np.float64)
        self.mean = (model.mean[lm].astype(np.float64) + np.einsum("k,klc->lc", prior.id_mean, id_b)
                     + np.einsum("k,klc->lc", prior.exp_mean, exp_b))
        self.id_basis = id_b * prior.id_std[:, None, None]
        self.exp_basis = exp_b * prior.exp_std[:, None, None]
        # the jaw points' side of the face (model x relative to the face centre) for contour weights
        self._jaw_side = np.sign(self.mean[JAW, 0] - self.mean[:, 0].mean())

    @property
    def num_id(self) -> int:
        return self.id_basis.shape[0]

    @property
    def num_exp(self) -> int:
        return self.exp_basis.shape[0]

    def shapes(self, state: State) -> np.ndarray:
        b = len(state.beta_id)
        return (self.mean + (state.beta_id @ self.id_basis.reshape(self.num_id, -1)
                             + state.beta_exp @ self.exp_basis.reshape(self.num_exp, -1)).reshape(b, -1, 3))

    def weights(self, base: np.ndarray, state: State, dim: int) -> np.ndarray:
        """Per-landmark weights (B, 68): the caller's, with far-side jaw points down-weighted by yaw."""
        if dim != 2 or not self.config.silhouette_contour:
            return base
        yaw = yaw_of(state.rotation)
        far_w = np.clip(1.0 - np.abs(yaw) / 45.0, self.config.contour_min_weight, 1.0)
        # R[2, 0] * x < 0: the rotation moves that side of the face away from the camera
        far = (state.rotation[:, 2, 0][:, None] * self._jaw_side[None]) < 0
        w = base.copy()
        w[:, JAW] *= np.where(far, far_w[:, None], 1.0)
        return w

    def evaluate(self, state: State, targets: np.ndarray, sqrt_w: np.ndarray, jacobian: bool = True):
        """Data residuals (B, 68*D) and Jacobians w.r.t. pose (B, M, 4+D), beta_id, beta_exp."""
        dim = targets.shape[-1]
        s = np.exp(state.log_s)[:, None, None]
        y = self.shapes(state) @ state.rotation.transpose(0, 2, 1)
        proj = s * y[..., :dim] + state.t[:, None, :]
        sw = sqrt_w[..., None]
        r = ((proj - targets) * sw).reshape(len(targets), -1)
        if not jacobian:
            return r, proj
        b = len(targets)
        zero = np.zeros_like(y[..., 0])
        crosses = (np.stack([zero, -y[..., 2], y[..., 1]], -1), np.stack([y[..., 2], zero, -y[..., 0]], -1),
                   np.stack([-y[..., 1], y[..., 0], zero], -1))
        cols = [s * y[..., :dim]] + [s * c[..., :dim] for c in crosses]
        cols += [np.broadcast_to(np.eye(dim)[d], y[..., :dim].shape) for d in range(dim)]
        j_pose = np.stack([(c * sw).reshape(b, -1) for c in cols], axis=-1)
        j_id = self._basis_jacobian(self.id_basis, state, s, sw, dim)
        j_exp = self._basis_jacobian(self.exp_basis, state, s, sw, dim)
        return r, proj, j_pose, j_id, j_exp

    @staticmethod
    def _basis_jacobian(basis: np.ndarray, state: State, s: np.ndarray, sw: np.ndarray, dim: int) -> np.ndarray:
        k = basis.shape[0]
        rb = basis.reshape(1, -1, 3) @ state.rotation[:, :dim].transpose(0, 2, 1)  # (B, K*68, D)
        jac = rb.reshape(-1, k, basis.shape[1], dim) * (s[:, :, :, None] * sw[:, None])
        return jac.reshape(jac.shape[0], k, -1).transpose(0, 2, 1)

    def step(self, state: State, delta_pose: np.ndarray, delta_id: np.ndarray, delta_exp: np.ndarray) -> State:
        dim = delta_pose.shape[-1] - 4
        new = State(state.log_s + delta_pose[:, 0], rodrigues(delta_pose[:, 1:4]) @ state.rotation,
                    state.t + delta_pose[:, 4:4 + dim], state.beta_id + delta_id, state.beta_exp + delta_exp)
        bounds = self.prior.exp_bounds
        if bounds is not None:  # project blendshape weights back into their range
            alpha = np.clip(self.prior.exp_mean + new.beta_exp * self.prior.exp_std, *bounds)
            new.beta_exp = (alpha - self.prior.exp_mean) / self.prior.exp_std
        return new

    def initial_state(self, targets: np.ndarray, weights: np.ndarray) -> State:
        """Pose of the prior-mean shape: weighted Umeyama (3D) or affine -> scaled orthographic (2D)."""
        b, dim = len(targets), targets.shape[-1]
        v = np.broadcast_to(self.mean, (b, NUM_LANDMARKS, 3))
        w = weights / weights.sum(axis=1, keepdims=True)
        vc = v - np.einsum("bl,blc->bc", w, v)[:, None]
        xc = targets - np.einsum("bl,blc->bc", w, targets)[:, None]
        if dim == 3:
            cov = np.einsum("bl,bli,blj->bij", w, xc, vc)
            u, sv, vt = np.linalg.svd(cov)
            d = np.ones((b, 3))
            d[:, 2] = np.sign(np.linalg.det(u @ vt))
            rotation = u @ (d[:, :, None] * vt)
            scale = (sv * d).sum(-1) / np.einsum("bl,blc->b", w, vc ** 2)
        else:
            a = np.einsum("bl,bli,blj->bij", w, vc, vc) + 1e-12 * np.eye(3)
            p = np.linalg.solve(a, np.einsum("bl,bli,blj->bij", w, vc, xc)).transpose(0, 2, 1)  # (B, 2, 3)
            u, sv, vt = np.linalg.svd(p, full_matrices=False)
            r2 = u @ vt
            rotation = np.concatenate([r2, np.cross(r2[:, 0], r2[:, 1])[:, None]], axis=1)
            scale = sv.mean(-1)
        t = np.einsum("bl,blc->bc", w, targets) - scale[:, None] * np.einsum(
            "bij,bj->bi", rotation, np.einsum("bl,blc->bc", w, v))[:, :dim]
        return State(np.log(scale), rotation, t, np.zeros((b, self.num_id)), np.zeros((b, self.num_exp)))


def normalise_targets(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmarks (B, 68, D) -> centred / size, centre (B, D), size (B,) = sqrt of the x-y box area."""
    lo, hi = points[..., :2].min(axis=1), points[..., :2].max(axis=1)
    size = np.sqrt(np.prod(hi - lo, axis=-1))
    if not np.all(np.isfinite(points)) or np.any(size <= 0):
        raise TffaceError("landmarks must be finite and span a non-empty box")
    centre = points.mean(axis=1)
    return (points - centre[:, None]) / size[:, None, None], centre, size


def check_targets(points: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, np.float64)
    if points.ndim == 2:
        points = points[None]
    if points.ndim != 3 or points.shape[1] != NUM_LANDMARKS or points.shape[2] not in (2, 3):
        raise TffaceError(f"landmarks must be (B, 68, 2) or (B, 68, 3). Received: {points.shape}")
    if weights is None:
        weights = np.ones(points.shape[:2])
    weights = np.broadcast_to(np.asarray(weights, np.float64), points.shape[:2]).copy()
    if np.any(weights < 0) or np.any(weights.sum(axis=1) <= 0):
        raise TffaceError("landmark weights must be >= 0 with at least one positive per face")
    return points, weights

