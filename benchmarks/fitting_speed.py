"""Speed of 3DMM landmark fitting, dense meshes and renders (CPU); prints a markdown table.

    python benchmarks/fitting_speed.py [--faces 512] [--stability ../shared/data/celeba]

Baseline (same run): the same fitter called one face at a time. With --stability, also the identity
stability experiment on CelebA (tfface.fitting.stability) with the default network's landmarks.
"""

from __future__ import annotations

import os

# The fit's matrices are small (B x 136 x 56): one BLAS thread beats several contending for 2 cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def _timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def synthetic_landmarks(model, n: int, seed: int = 0) -> np.ndarray:
    from tfface.fitting.prior import default_prior
    from tfface.morphable.pose import rotation_from_euler

    rng, prior = np.random.default_rng(seed), default_prior(model)
    angles = np.stack([rng.uniform(-60, 60, n), rng.uniform(-25, 25, n), rng.uniform(-20, 20, n)], 1)
    rot = rotation_from_euler(angles).numpy().astype(np.float64)
    shapes = (model.mean + np.einsum("bk,knc->bnc", prior.id_mean + rng.normal(size=(n, 40)) * prior.id_std, model.id_basis)
              + np.einsum("bk,knc->bnc", prior.exp_mean + rng.normal(size=(n, 10)) * prior.exp_std, model.exp_basis))
    pts = 7e-4 * np.einsum("bij,bnj->bni", rot, shapes)[..., :2] + 60
    return pts + rng.normal(scale=0.5, size=pts.shape)


def speed_table(faces: int) -> list[tuple[str, str, str]]:
    from tfface.fitting.dense import DenseFitter
    from tfface.fitting.identity import IdentityFitter
    from tfface.fitting.problem import FitConfig
    from tfface.models.presets import morphable_asset
    from tfface.render.maps import depth_image, shaded_overlay

    bfm = morphable_asset("bfm_3ddfa_68")
    fitter = IdentityFitter(bfm, config=FitConfig(silhouette_contour=False))
    pts = synthetic_landmarks(bfm, faces)
    batched = _timed(lambda: fitter.fit(pts))
    one = pts[:32]
    looped = _timed(lambda: [fitter.fit(p) for p in one]) / len(one) * faces
    shared = _timed(lambda: fitter.fit_identity(pts[:10]), repeat=2)
    rows = [("BFM-68 fit, batched numpy", f"{faces / batched:.0f} faces/s", f"{looped / batched:.1f}x vs one at a time"),
            ("BFM-68 fit, one face at a time (baseline)", f"{faces / looped:.0f} faces/s", "1.0x"),
            ("shared-identity fit, 10 photos", f"{shared * 1000:.0f} ms / person", "")]
    dense = DenseFitter()
    lm3d = np.concatenate([pts[:4], np.zeros((4, 68, 1))], axis=-1) * [4, -4, 4] + [300, 500, 0]
    t_dense = _timed(lambda: dense(lm3d)) / 4
    meshes = [(d.vertices, d.triangles) for d in dense(lm3d[:1])]
    image = np.zeros((600, 600, 3), np.uint8)
    rows += [(f"ICT-FaceKit dense fit ({dense.model.num_vertices:,} vertices)", f"{t_dense * 1000:.0f} ms / face", ""),
             ("depth render 600x600", f"{_timed(lambda: depth_image(meshes, 600, 600)) * 1000:.0f} ms", ""),
             ("shaded overlay 600x600", f"{_timed(lambda: shaded_overlay(image, meshes)) * 1000:.0f} ms", "")]
    return rows


def celeba_stability(root: Path, people: int = 12, per_person: int = 20) -> dict:
    from tfface.fitting.stability import identity_stability
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image

    ids: dict[str, list[str]] = collections.defaultdict(list)
    for line in (root / "identity_CelebA_subset.txt").read_text().splitlines():
        name, pid = line.split()
        ids[pid].append(name)
    rec = FaceReconstructor()
    landmarks = {}
    for pid in sorted(ids, key=lambda k: (-len(ids[k]), k))[:people]:
        found = []
        for name in ids[pid][:per_person]:
            faces = rec(read_image(root / "img_celeba" / name))
            if faces:
                face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
                found.append(face.landmarks[:, :2])
        landmarks[pid] = np.array(found)
    rec.close()
    return identity_stability(landmarks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=512)
    parser.add_argument("--stability", type=Path, help="CelebA folder (img_celeba/ + identity_CelebA_subset.txt)")
    args = parser.parse_args()
    print("| stage | speed | ratio |\n|---|---|---|")
    for row in speed_table(args.faces):
        print("| " + " | ".join(row) + " |")
    if args.stability:
        print(json.dumps(celeba_stability(args.stability), indent=1))


if __name__ == "__main__":
    main()
