"""False faces and lost faces of `FaceReconstructor`, with and without the phantom check
(`tfface.inference.face_path.holds_face`), on the shared photos.

    python benchmarks/phantom_faces.py [--data ../shared/data]

identity_photos: one person per photo, so every face beyond one per photo is a false face.
AFLW2000-3D (300 photos, one annotated face each): a photo whose annotated face (a face within one face
size of the ground-truth landmarks' centre) is not among the results is a lost face; faces elsewhere are
listed (there are real, unannotated people in some photos).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def identity_counts(rec, folder: Path) -> tuple[int, int]:
    from tfface.io.images import read_image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    extra = sum(max(len(rec(read_image(p))) - 1, 0) for p in files)
    return len(files), extra


def aflw_counts(rec, folder: Path) -> tuple[int, int, int]:
    from tfface.data.mat3d import aflw2000_pairs, read_3d_mat
    from tfface.io.images import read_image

    lost = others = 0
    pairs = aflw2000_pairs(folder)
    for image_path, mat_path in pairs:
        gt = read_3d_mat(mat_path).landmarks[:, :2]
        centre, size = gt.mean(0), np.sqrt(np.prod(gt.max(0) - gt.min(0)))
        near = [np.linalg.norm(f.landmarks[:, :2].mean(0) - centre) < size for f in rec(read_image(image_path))]
        lost += not any(near)
        others += len(near) - sum(near)
    return len(pairs), lost, others


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA)
    args = p.parse_args()
    from tfface.inference.reconstructor import FaceReconstructor

    print("| check | identity_photos: false faces | AFLW2000-3D: annotated faces lost | other faces |")
    print("|---|---|---|---|")
    for name, max_turn in (("none", None), ("holds_face (default)", "default")):
        kw = {} if max_turn == "default" else {"max_turn": None}
        with FaceReconstructor(**kw) as rec:
            n_id, extra = identity_counts(rec, args.data / "identity_photos")
            n_aflw, lost, others = aflw_counts(rec, args.data / "aflw2000_3d" / "AFLW2000")
        print(f"| {name} | {extra} ({n_id} photos) | {lost} of {n_aflw} | {others} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
