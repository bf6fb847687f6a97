"""How the shipped joint preset `tfface_mb05_joint` is made from the shared CelebA sample.

    python examples/make_joint_preset.py data   --celeba ../shared/data/celeba -o runs/joint
    tfface train --config runs/joint/train_joint.yaml      (and runs/joint/train_3dmm.yaml: the ablation)
    python examples/make_joint_preset.py report --celeba ../shared/data/celeba -o runs/joint
    python examples/make_joint_preset.py ship -o runs/joint     (-> tfface/assets/presets/tfface_mb05_joint)

`data`: every photo of the 250 identities gets a face crop and surrogate 3DMM labels from the
converted 3DDFA_V2 regressor as teacher (BlazeFace + one landmark refine; `--labels fitted`: one
shared-identity fit per person to the teacher's landmarks instead), its identity, and its
attributes where the partial attribute file has a row. Every 5th identity (50) is held out
entirely: its photos are the test set for verification and attributes. Records go through
`tfface.data.records.write_shards`; the YAML files feed `tfface train` through the hybrid pipeline
(48 3DMM/identity + 16 attribute-labelled samples in every batch).
`report`: AFLW2000-3D NME, attribute accuracy and verification accuracy of both trained models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

HELD_OUT_EVERY = 5


FOLDERS = ("img_celeba", "img_align_celeba_half")  # in-the-wild photos, aligned half-resolution faces
LABEL_KEYS = ("names", "folder", "rois", "params", "landmarks", "identity", "teacher")


def photo_list(celeba: Path) -> list[tuple[str, str, int]]:
    """(folder, file name, CelebA identity) of every photo in both CelebA folders."""
    from tfface.data.celeba import read_identities

    ids = read_identities(celeba / "identity_CelebA.txt")
    return [(folder, f.name, int(ids[f.name])) for folder in FOLDERS
            for f in sorted((celeba / folder).glob("*.jpg")) if f.name in ids]


def aligned_template(celeba: Path, cache: Path, count: int = 200) -> dict[str, np.ndarray]:
    """CelebA's aligned faces sit at one place in their frame: the median roi and 68 landmarks of the
    regressor (BlazeFace + refine) on the first `count` of them stand for all (cached)."""
    from tfface.inference.reconstructor import FaceReconstructor, largest_face
    from tfface.io.images import read_image

    path = cache / "aligned_template.npz"
    if not path.is_file():
        rois, marks = [], []
        with FaceReconstructor() as rec:
            for f in sorted((celeba / FOLDERS[1]).glob("*.jpg"))[:count]:
                faces = rec(read_image(f))
                if faces:
                    rois.append(largest_face(faces).roi_box)
                    marks.append(largest_face(faces).landmarks)
        np.savez(path, roi=np.median(rois, axis=0), landmarks=np.median(marks, axis=0))
    return dict(np.load(path))


def label_photo(rec, dlib, template: dict, image: np.ndarray, folder: str, crop: bool) -> tuple | None:
    """(roi, params, landmarks, dlib embedding, crop) of the largest face; aligned photos: the template's
    roi and landmarks (their params are NaN: no 3DMM label), so only dlib runs on them."""
    from tfface.inference.reconstructor import largest_face

    if folder == FOLDERS[1]:
        roi, params, landmarks = template["roi"], np.full(62, np.nan, np.float32), template["landmarks"]
    else:
        faces = rec(image)
        if not faces:
            return None
        face = largest_face(faces)
        roi, params, landmarks = face.roi_box, face.params, face.landmarks
    pixels = rec.crops(image, roi[None])[0] if crop else np.zeros((1, 1, 3), np.uint8)
    return roi, params, landmarks, dlib(image, landmarks), pixels


def teacher_labels(celeba: Path, out: Path, chunk: int = 500, reverse: bool = False) -> dict[str, np.ndarray]:
    """Every photo of both folders: the 3DDFA_V2 regressor's roi/params/landmarks (BlazeFace + one refine)
    and dlib's embedding. Cached in chunks under OUT/labels/ (resumable; `reverse` lets a second process
    work from the end); the held-out photos keep their 120 px crops for the report."""
    from tfface.data.teacher import DlibTeacher
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image

    photos = photo_list(celeba)
    cache = out / "labels"
    cache.mkdir(parents=True, exist_ok=True)
    _, held = split_identities(np.array([p for folder, _, p in photos if folder == FOLDERS[0]]))
    template = aligned_template(celeba, cache)
    starts = list(range(0, len(photos), chunk))
    with FaceReconstructor() as rec:
        dlib = DlibTeacher()
        for c in tqdm(starts[::-1] if reverse else starts, desc="teacher label chunks"):
            path = cache / f"chunk{c // chunk:04d}.npz"
            if path.is_file():
                continue
            rows: dict[str, list] = {k: [] for k in LABEL_KEYS + ("crops",)}
            for folder, name, person in photos[c:c + chunk]:
                labels = label_photo(rec, dlib, template, read_image(celeba / folder / name), folder, person in held)
                if labels is None:
                    continue
                for key, value in zip(rows, (name, folder, *labels[:3], person, *labels[3:])):
                    rows[key].append(value)
            tmp = cache / f"tmp{c // chunk:04d}.npz"
            np.savez(tmp, **{k: np.array(v, dtype=object if k == "crops" else None) for k, v in rows.items()})
            tmp.rename(path)
    parts = [dict(np.load(f, allow_pickle=True)) for f in sorted(cache.glob("chunk*.npz"))]
    return {k: np.concatenate([p[k] for p in parts]) for k in LABEL_KEYS + ("crops",)}


def split_identities(identity: np.ndarray) -> tuple[dict[int, int], set[int]]:
    """(CelebA id -> class id for training identities, held-out CelebA ids: every 5th of the in-the-wild
    sample's 250 people; all their photos, in either folder, stay out of training)."""
    people = sorted(set(identity.tolist()))
    held_out = set(people[::HELD_OUT_EVERY])
    train = [p for p in people if p not in held_out]
    return {p: i for i, p in enumerate(train)}, held_out


def fitted_labels(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Surrogate labels from the fitter: per person, one shared identity fitted to the teacher's 68
    landmarks of all their photos, with per-photo pose and expression (Liu et al.)."""
    from tfface.fitting import FitConfig, fit_crop_labels
    from tfface.fitting.labels import bfm_fitter

    # the teacher's landmarks are fixed model vertices: no silhouette down-weighting
    fitter = bfm_fitter(FitConfig(silhouette_contour=False))
    rois, params = np.zeros_like(t["rois"]), np.zeros_like(t["params"])
    nme = np.zeros(len(params))
    for person in tqdm(np.unique(t["identity"]), desc="shared-identity fits"):
        idx = np.flatnonzero(t["identity"] == person)
        labels = fit_crop_labels(t["landmarks"][idx], fitter, shared_identity=len(idx) > 1)
        rois[idx], params[idx], nme[idx] = labels.roi_boxes, labels.params, labels.fit.nme
    print(f"fit residual NME to the teacher's landmarks: mean {100 * nme.mean():.2f} %, "
          f"95th pct {100 * np.percentile(nme, 95):.2f} %")
    return {**t, "rois": rois, "params": params}


def build_data(celeba: Path, out: Path, labels: str = "teacher") -> None:
    from tfface.data.celeba import read_attributes
    from tfface.data.records import FaceRecord, write_shards

    t = teacher_labels(celeba, out)
    t = fitted_labels(t) if labels == "fitted" else t
    names, attr = read_attributes(next(celeba.glob("list_attr_celeba*.txt")))
    classes, held_out = split_identities(t["identity"])
    rng = np.random.default_rng(0)
    groups: dict[str, list] = {"train_all": [], "train_attr": [], "val": [], "test": []}
    for i, name in enumerate(t["names"]):
        person = int(t["identity"][i])
        labels = attr.get(str(name))
        record = FaceRecord(
            image=celeba / "img_celeba" / str(name), source="celeba", key=str(name), roi=t["rois"][i],
            params=t["params"][i], landmarks=t["landmarks"][i][:, :2],
            attributes=None if labels is None else (labels > 0).astype(np.float32),
            identity=classes.get(person, -1), split="test" if person in held_out else "train")
        if person in held_out:
            groups["test"].append(record)
        elif rng.random() < 0.05:
            groups["val"].append(record)
        else:
            groups["train_all"].append(record)
            if labels is not None:
                groups["train_attr"].append(record)
    for group, records in groups.items():
        summary = write_shards(records, out / "records" / group, prefix=group, shard_size=512)
        print(group, json.dumps(summary)[:400])
    write_configs(out, len(classes))


def write_configs(out: Path, num_ids: int) -> None:
    data = {"sources": [
        {"name": "celeba_all", "files": ["records/train_all/*.tfrecord"], "quota": 48, "task": "params"},
        {"name": "celeba_attr", "files": ["records/train_attr/*.tfrecord"], "quota": 16, "task": "attributes"}],
        "validation": [{"name": "celeba_val", "files": ["records/val/*.tfrecord"], "quota": 64}]}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    common = {
        "model": {"init_preset": "tfface_mb05_3ddfa", "num_ids": num_ids, "id_head": "arcface",
                  "freeze_batch_norm": True},
        "data": {"source": "pipeline", "pipeline_config": str(out / "data.yaml"), "batch_size": 64,
                 "steps_per_epoch": 60, "validation_steps": 3},
        "optimizer": {"learning_rate": 1.0e-4},
    }
    # New heads first (backbone and 3DMM head frozen, so 3DMM is untouched), then everything together.
    heads = {"name": "heads", "epochs": 4, "trainable": ["attributes", "identity", "residual", "decoders"],
             "learning_rate": 1.0e-3}
    joint = {**common, "loss": {"wpdc": 1.0, "landmarks": 0.01, "shape": 0.01, "attributes": 1.0,
                                "identity": 0.05, "id_consistency": 0.001, "id_loss": "arcface"},
             "phases": [heads, {"name": "end_to_end", "epochs": 6}], "trainer": {"output_dir": str(out / "joint")}}
    only = {**common, "loss": {"wpdc": 1.0, "landmarks": 0.01, "shape": 0.0, "attributes": 0.0, "identity": 0.0},
            "phases": [{"name": "end_to_end", "epochs": 6}], "trainer": {"output_dir": str(out / "3dmm_only")}}
    (out / "train_joint.yaml").write_text(yaml.safe_dump(joint, sort_keys=False))
    (out / "train_3dmm.yaml").write_text(yaml.safe_dump(only, sort_keys=False))


def load_run(run: Path, name: str, weights: str | None = None):
    """A trained run's model.keras as a Preset (the teacher's preprocessor, param stats and 68-point
    model); `weights`: a phase's weights file in the run instead of the final ones."""
    import keras

    import tfface.models.face_model  # noqa: F401  (registers FaceModel)
    from tfface.models.presets import DEFAULT_PRESET, Preset, load_preset

    teacher = load_preset(DEFAULT_PRESET)
    model = keras.saving.load_model(run / "model.keras", compile=False)
    if weights:
        model.load_weights(run / weights)
    return Preset(name, model, teacher.preprocessor, teacher.param_stats, teacher.shape_model, teacher.config)


def held_out(celeba: Path, out: Path) -> dict[str, np.ndarray]:
    """The held-out identities' teacher crops, identities and (where labelled) attributes."""
    from tfface.data.celeba import read_attributes

    t = teacher_labels(celeba, out)
    _, held = split_identities(t["identity"])
    keep = np.isin(t["identity"], list(held))
    _, attr = read_attributes(next(celeba.glob("list_attr_celeba*.txt")))
    names = t["names"][keep]
    labels = np.array([(attr[str(n)] > 0) if str(n) in attr else np.full(40, -1) for n in names], np.int8)
    return {"crops": t["crops"][keep], "identity": t["identity"][keep], "attributes": labels}


def evaluate_run(runner, test: dict[str, np.ndarray], aflw: Path) -> dict:
    from tfface.data.celeba import read_attributes  # noqa: F401
    from tfface.evaluation.aflw2000 import evaluate_aflw2000
    from tfface.evaluation.attributes import attribute_metrics
    from tfface.evaluation.verification import best_threshold, generate_pairs, stratified_folds, verification_metrics
    from tfface.export.metadata import CELEBA_ATTRIBUTES

    result = {"aflw2000": evaluate_aflw2000(runner, aflw, crop="gt", progress=False)["metrics"]}
    out = {k: [] for k in ("attributes", "embedding")}
    for i in range(0, len(test["crops"]), 64):
        o = runner(test["crops"][i:i + 64])
        for k in out:
            if k in o:
                out[k].append(o[k])
    if out["attributes"]:
        labelled = test["attributes"][:, 0] >= 0
        probs = np.concatenate(out["attributes"])[labelled]
        m = attribute_metrics(probs, test["attributes"][labelled], CELEBA_ATTRIBUTES)
        result["attributes"] = {k: v for k, v in m.items() if k != "per_attribute"}
    if out["embedding"]:
        emb = np.concatenate(out["embedding"])
        index = {i: [i] for i in range(len(emb))}
        people: dict[str, list[int]] = {}
        for i, person in enumerate(test["identity"]):
            people.setdefault(str(person), []).append(i)
        first, second, same = generate_pairs({k: [Path(str(i)) for i in v] for k, v in people.items()}, 3000, seed=0)
        a = emb[[int(str(p)) for p in first]]
        b = emb[[int(str(p)) for p in second]]
        scores = np.sum(a * b, axis=1)
        m = verification_metrics(scores, same, stratified_folds(same, 10, 0))
        threshold, _ = best_threshold(scores, same)
        result["verification"] = {"pairs": m["pairs"], "accuracy_mean": m["accuracy_mean"],
                                  "accuracy_std": m["accuracy_std"], "auc": m["auc"], "threshold": threshold}
        del index
    return result


def report(celeba: Path, out: Path, aflw: Path) -> None:
    from tfface.runtimes import KerasRunner

    test = held_out(celeba, out)
    runs = {"teacher (converted 3DDFA_V2)": "tfface_mb05_3ddfa",
            "3DMM only": (out / "3dmm_only", None),
            "heads only (frozen backbone: phase 1 of the joint run)": (out / "joint", "phase0_heads.weights.h5"),
            "joint (3DMM + attributes + identity)": (out / "joint", None)}
    results = {}
    for name, spec in runs.items():
        preset = spec if isinstance(spec, str) else load_run(*spec[:1], name, spec[1])
        results[name] = evaluate_run(KerasRunner(preset), test, aflw)
        print(name, json.dumps(results[name]["aflw2000"]["nme_2d"]))
    (out / "report.json").write_text(json.dumps(results, indent=1, default=float))
    (out / "report.md").write_text(report_markdown(results, len(test["crops"]),
                                                   int((test["attributes"][:, 0] >= 0).sum())))
    print((out / "report.md").read_text())


def report_markdown(results: dict, test_photos: int, attr_photos: int) -> str:
    lines = ["| model | AFLW2000-3D NME 0-30 / 30-60 / 60-90 / mean (%) | attributes acc / balanced acc "
             f"({attr_photos} held-out photos) | verification acc / AUC ({test_photos} held-out photos, 50 ids) |",
             "|---|---|---|---|"]
    for name, r in results.items():
        n = r["aflw2000"]["nme_2d"]
        nme = " / ".join(f"{v:.2f}" for v in list(n.values())[:4])
        a = r.get("attributes")
        att = f"{100 * a['mean_accuracy']:.1f} / {100 * a['mean_balanced_accuracy']:.1f}" if a else "–"
        v = r.get("verification")
        ver = f"{100 * v['accuracy_mean']:.1f} ± {100 * v['accuracy_std']:.1f} / {v['auc']:.3f}" if v else "–"
        lines.append(f"| {name} | {nme} | {att} | {ver} |")
    a = next((r["attributes"] for r in results.values() if "attributes" in r), None)
    if a:
        lines.append(f"| majority class per attribute (of the test labels) | – | "
                     f"{100 * a['majority_mean_accuracy']:.1f} / 50.0 | 50.0 / 0.500 |")
    return "\n".join(lines) + "\n"


def ship(out: Path, target: Path) -> None:
    """The joint run as the shipped preset, with the verification threshold chosen on the held-out pairs."""
    from tfface.models.presets import DEFAULT_PRESET, load_preset, save_preset

    results = json.loads((out / "report.json").read_text())
    joint = next(r for name, r in results.items() if name.startswith("joint"))
    teacher = load_preset(DEFAULT_PRESET)
    model = load_run(out / "joint", "joint").model
    extra = {"description": "MobileNetV1 x0.5 joint model: 3DMM (62 params) + 40 CelebA attributes + "
                            "identity embedding, fine-tuned from tfface_mb05_3ddfa on the CelebA sample",
             "licence": "weights trained on CelebA photos: non-commercial research use only (see README)",
             "verification_threshold": round(float(joint["verification"]["threshold"]), 4),
             "held_out_report": {k: joint[k] for k in ("attributes", "verification")},
             "aflw2000_nme_2d": joint["aflw2000"]["nme_2d"]}
    save_preset(model, target, teacher.param_stats, teacher.preprocessor, extra=extra)
    print(f"wrote {target} ({sum(f.stat().st_size for f in target.iterdir()) / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["data", "report", "ship"])
    parser.add_argument("--aflw", type=Path, default=Path("../shared/data/aflw2000_3d"))
    parser.add_argument("--labels", choices=["teacher", "fitted"], default="teacher",
                        help="3DMM labels: the regressor's own predictions, or shared-identity fits to its landmarks")
    parser.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/joint"))
    args = parser.parse_args()
    if args.stage == "data":
        build_data(args.celeba, args.output, args.labels)
    elif args.stage == "report":
        report(args.celeba, args.output, args.aflw)
    else:
        ship(args.output, Path(__file__).resolve().parents[1] / "tfface/assets/presets/tfface_mb05_joint")


if __name__ == "__main__":
    main()
