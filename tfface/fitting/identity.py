"""Multi-image fitting: N photos of one person -> one identity, per-photo pose and expression.

The unknowns are [pose_1, exp_1, ..., pose_N, exp_N, id]; the normal matrix is an arrow (block
diagonal per photo + the shared identity block), small enough (N*(6+E)+K) to solve densely. Each photo
adds 68 constraints on the same identity, so the identity is far better determined than from one
photo, where it trades off against expression, pose and landmark noise (Liu et al.).
"""

from __future__ import annotations

import numpy as np

from tfface.fitting.fitter import FitResult, LandmarkFitter
from tfface.fitting.problem import State, check_targets, normalise_targets


class IdentityFitter(LandmarkFitter):
    """`fit_identity(points (N, 68, D))` -> FitResult whose N rows share alpha_id."""

    def fit_identity(self, points: np.ndarray, weights: np.ndarray | None = None) -> FitResult:
        points, base_w = check_targets(points, weights)
        targets, centre, size = normalise_targets(points)
        single = self._solve(self.problem.initial_state(targets, base_w), targets, base_w)
        single.beta_id = np.broadcast_to(single.beta_id.mean(axis=0), single.beta_id.shape).copy()
        state = self._solve_shared(single, targets, base_w)
        return self.result(state, points, centre, size, base_w)

    def _solve_shared(self, state: State, targets: np.ndarray, base_w: np.ndarray) -> State:
        problem, cfg = self.problem, self.config
        n, dim = targets.shape[0], targets.shape[-1]
        k, e = problem.num_id, problem.num_exp if cfg.fit_expression else 0
        lam = 1e-3
        for _ in range(cfg.iterations):
            sqrt_w = np.sqrt(problem.weights(base_w, state, dim)) / cfg.landmark_sigma
            r, _, j_pose, j_id, j_exp = problem.evaluate(state, targets, sqrt_w)
            j_local = np.concatenate([j_pose, j_exp[..., :e]], axis=-1)  # (N, M, p)
            p = j_local.shape[-1]
            size = n * p + k
            h, g = np.zeros((size, size)), np.zeros(size)
            reg_local = np.r_[np.zeros(j_pose.shape[-1]), np.ones(e)]
            for i in range(n):  # arrow structure: per-photo blocks + coupling to the shared identity
                sl = slice(i * p, (i + 1) * p)
                h[sl, sl] = j_local[i].T @ j_local[i] + np.diag(reg_local)
                h[sl, n * p:] = j_local[i].T @ j_id[i]
                h[n * p:, sl] = h[sl, n * p:].T
                h[n * p:, n * p:] += j_id[i].T @ j_id[i]
                g[sl] = j_local[i].T @ r[i] + reg_local * np.r_[np.zeros(j_pose.shape[-1]), state.beta_exp[i, :e]]
                g[n * p:] += j_id[i].T @ r[i]
            h[n * p:, n * p:] += np.eye(k)
            g[n * p:] += state.beta_id[0]
            cost = (r ** 2).sum() + (state.beta_id[0] ** 2).sum() + (state.beta_exp ** 2).sum()
            delta = -np.linalg.solve(h + lam * np.diag(np.diag(h) + 1e-9), g)
            local = delta[:n * p].reshape(n, p)
            d_exp = np.zeros_like(state.beta_exp)
            d_exp[:, :e] = local[:, j_pose.shape[-1]:]
            d_id = np.broadcast_to(delta[n * p:], state.beta_id.shape) if cfg.fit_identity else np.zeros_like(state.beta_id)
            trial = problem.step(state, local[:, :j_pose.shape[-1]], d_id, d_exp)
            r_new, _ = problem.evaluate(trial, targets, sqrt_w, jacobian=False)
            new_cost = (r_new ** 2).sum() + (trial.beta_id[0] ** 2).sum() + (trial.beta_exp ** 2).sum()
            if new_cost <= cost:
                state, lam = trial, max(lam / 3.0, 1e-7)
            else:
                lam = min(lam * 4.0, 1e6)
        return state
