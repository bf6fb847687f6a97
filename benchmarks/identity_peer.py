"""Face verification, tfface's joint preset beside dlib's ResNet recognizer, on the same held-out pairs.

    python benchmarks/identity_peer.py [--celeba ../shared/data/celeba] [--preset tfface_mb05_joint]
                                       [--runtime EXPORT_DIR/*.tflite EXPORT_DIR/*.onnx]
                                       [--photos ../shared/data/identity_photos]

Held-out people: every 5th of the 250 identities of the in-the-wild CelebA sample (the split
examples/make_joint_preset.py keeps out of training). Every photo is detected once (BlazeFace + one
landmark refine); tfface embeds the 120 px crop, dlib (optional: `pip install -e .[teacher]`, skipped
with a note when absent) embeds the same face with its own 5-point alignment. Pairs: 3,000 balanced
pairs with a fixed seed. Columns: accuracy of a threshold chosen on one half of the pairs and scored
on the other; LFW-style 10-fold accuracy (dlib also on tfface's own 120 px crop, upsampled by its chip
step: what dlib makes of the pixels tfface reads, i.e. what a larger input could at most give back); AUC; TAR at FAR 1 %; median ms per face of the embedding
step alone (1 thread, crop/chip + network; tfface: both views when the preset averages its embedding
over the crop and the aligned crop, and beside it, in the same run, the crop alone), and the ratio to tfface's.
`--photos DIR` (a folder per person): every pair of its photos at each model's threshold at FAR 1 % on
the held-out pairs (what `tfface verify` ships): the different-person pairs accepted, by name, and the
same-person pairs accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def held_out_photos(celeba: Path) -> list[tuple[Path, int]]:
    from tfface.data.celeba import held_out_people, read_identities

    ids = read_identities(celeba / "identity_CelebA_subset.txt")
    held = held_out_people(list(ids.values()))
    return [(celeba / "img_celeba" / name, person) for name, person in sorted(ids.items()) if person in held]


def embed_all(photos: list[tuple[Path, int]], preset: str, use_dlib: bool,
              runtimes: tuple[str, ...] = ()) -> dict[str, tuple]:
    from tqdm import tqdm

    from tfface.inference.reconstructor import FaceReconstructor, largest_face
    from tfface.io.images import read_image
    from tfface.runtimes import load_runner

    extra = {str(f): load_runner(f, num_threads=1) for f in runtimes}  # exported files, same crops
    teacher = None
    if use_dlib:
        from tfface.data.teacher import DlibTeacher

        teacher = DlibTeacher()
    rows: dict[str, list] = {"tfface": [], "tfface_crop": [], "dlib": [], "dlib_crop": [], "identity": [],
                             "ms_tfface": [], "ms_tfface_crop": [], "ms_dlib": [], "ms_dlib_crop": [],
                             **{k: [] for f in extra for k in (f, f"ms_{f}")}}
    with FaceReconstructor(preset) as rec:
        for path, person in tqdm(photos, desc="held-out photos"):
            image = read_image(path)
            faces = rec(image)
            if not faces:
                continue
            face = largest_face(faces)
            t0 = time.perf_counter()
            crop = rec.crops(image, face.roi_box[None])
            emb = embed_face(rec.runner, image, face, crop)
            rows["ms_tfface"].append(1000 * (time.perf_counter() - t0))
            assert np.allclose(emb, face.embedding, atol=1e-5)  # what `tfface verify` compares
            rows["tfface"].append(emb)
            if rec.runner.identity_template is not None:  # the same network without the aligned view
                t0 = time.perf_counter()
                rows["tfface_crop"].append(embed_face(rec.runner, image, face, rec.crops(image, face.roi_box[None]),
                                                      aligned=False))
                rows["ms_tfface_crop"].append(1000 * (time.perf_counter() - t0))
            for name, runner in extra.items():  # the network alone: the crop is tfface's above
                t0 = time.perf_counter()
                rows[name].append(embed_face(runner, image, face, crop))
                rows[f"ms_{name}"].append(1000 * (time.perf_counter() - t0))
            rows["identity"].append(person)
            if teacher is not None:
                t0 = time.perf_counter()
                rows["dlib"].append(teacher(image, face.landmarks))
                rows["ms_dlib"].append(1000 * (time.perf_counter() - t0))
                t0 = time.perf_counter()  # the pixels tfface reads: is its input size what holds it back?
                side = face.roi_box[2] - face.roi_box[0]
                rows["dlib_crop"].append(teacher(crop[0], (face.landmarks - [*face.roi_box[:2], 0]) * crop.shape[1] / side))
                rows["ms_dlib_crop"].append(1000 * (time.perf_counter() - t0))
    return {k: np.array(v) for k, v in rows.items()}


def embed_face(runner, image: np.ndarray, face, crop: np.ndarray, aligned: bool = True) -> np.ndarray:
    """The face's embedding from its crop, and (a preset with an identity template, unless not `aligned`) its
    aligned second view."""
    from tfface.inference.face_path import RoiPass, with_aligned_embedding

    p = RoiPass(face.roi_box[None], runner(crop), face.landmarks[None], face.pose[None])
    if aligned and runner.identity_template is not None:
        p = with_aligned_embedding(image, p, runner, runner.identity_template, runner.image_size)
    return p.outputs["embedding"][0]


def photo_folder(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    from tfface.data.identity_folders import read_identity_folders

    people = read_identity_folders(root)
    names = sorted(people)
    return [(f, i) for i, name in enumerate(names) for f in people[name]], names


def pairs_at_threshold(embeddings: np.ndarray, identity: np.ndarray, threshold: float,
                       names: list[str]) -> dict:
    """Every pair of the photos: different-person pairs at or above `threshold` (by the two names) and
    same-person pairs accepted."""
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    i, j = np.triu_indices(len(e), 1)
    scores, same = np.sum(e[i] * e[j], axis=1), identity[i] == identity[j]
    false = [(names[identity[a]], names[identity[b]], float(s)) for a, b, s in zip(i, j, scores)
             if s >= threshold and identity[a] != identity[b]]
    return {"threshold": threshold, "different_pairs": int((~same).sum()), "different_accepted": len(false),
            "same_pairs": int(same.sum()), "same_accepted": int((scores[same] >= threshold).sum()),
            "false_accepts": false}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    parser.add_argument("--preset", default="tfface_mb05_joint")
    parser.add_argument("--limit", type=int, default=None, help="first N held-out photos only")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    parser.add_argument("--runtime", nargs="+", default=(), metavar="FILE",
                        help="exported files (.tflite, .onnx, SavedModel folder) to score on the same crops")
    parser.add_argument("--photos", type=Path, default=None,
                        help="a folder per person (e.g. ../shared/data/identity_photos): its pairs at each "
                             "model's threshold at FAR 1 %% on the held-out pairs")
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    try:
        import dlib  # noqa: F401

        use_dlib = True
    except ImportError:
        use_dlib = False
        print("dlib is not installed (pip install -e .[teacher]): its row is skipped", file=sys.stderr)
    from tfface.evaluation.verification import embedding_verification

    photos = held_out_photos(args.celeba)[:args.limit]
    rows = embed_all(photos, args.preset, use_dlib, tuple(args.runtime))
    table = {}
    crop_only = ("tfface_crop",) if len(rows["tfface_crop"]) else ()
    for name in ("tfface", *crop_only, *args.runtime, *(("dlib", "dlib_crop") if use_dlib else ())):
        m = embedding_verification(rows[name], rows["identity"])
        table[name] = {"half_split_accuracy": m["half_split_accuracy"], "accuracy_10fold": m["accuracy_mean"],
                       "auc": m["auc"], "tar_at_far_1%": m["tar_at_far"]["0.01"],
                       "ms_per_face": float(np.median(rows[f"ms_{name}"])), "threshold_at_far_1%": m["threshold_at_far"]}
    print(f"{len(rows['identity'])} held-out photos of {len(set(rows['identity'].tolist()))} people, "
          f"{m['pairs']} pairs")
    print("| model | accuracy (half split) | accuracy (10-fold) | AUC | TAR@FAR1% | ms / face | ms vs tfface |")
    print("|---|---|---|---|---|---|---|")
    base = table["tfface"]["ms_per_face"]
    for name, r in table.items():
        label = {"tfface": f"tfface {args.preset}", "tfface_crop": f"tfface {args.preset}, crop only (no aligned view)",
                 "dlib": "dlib ResNet (face_recognition)",
                 "dlib_crop": "dlib ResNet on tfface's 120 px crop"}.get(name, name)
        print(f"| {label} | {100 * r['half_split_accuracy']:.1f} | {100 * r['accuracy_10fold']:.1f} | {r['auc']:.3f} | "
              f"{100 * r['tar_at_far_1%']:.1f} | {r['ms_per_face']:.1f} | {r['ms_per_face'] / base:.1f}x |")
    if args.photos:
        photos, names = photo_folder(args.photos)
        found = embed_all(photos, args.preset, use_dlib, tuple(args.runtime))
        print(f"\n{args.photos}: {len(found['identity'])} photos of {len(names)} people "
              f"({len(photos) - len(found['identity'])} without a detected face, left out), "
              "at each model's threshold at FAR 1 % on the held-out pairs")
        print("| model | threshold | different-person pairs accepted | same-person pairs accepted |")
        print("|---|---|---|---|")
        for name, r in table.items():
            r["photos"] = pairs_at_threshold(found[name], found["identity"], r["threshold_at_far_1%"], names)
            p = r["photos"]
            worst = ", ".join(f"{a}/{b} {s:.2f}" for a, b, s in sorted(p["false_accepts"], key=lambda f: -f[2])[:4])
            print(f"| {name} | {p['threshold']:.3f} | {p['different_accepted']} of {p['different_pairs']}"
                  f"{f' ({worst})' if worst else ''} | {p['same_accepted']} of {p['same_pairs']} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
