"""How the shipped joint preset `tfface_mb05_joint` is made from the shared CelebA sample.

    python examples/make_joint_preset.py data   --celeba ../shared/data/celeba -o runs/joint
    tfface train --config runs/joint/train_joint.yaml      (and runs/joint/train_3dmm.yaml: the ablation)
    python examples/make_joint_preset.py report --celeba ../shared/data/celeba -o runs/joint

`data`: every photo of the 250 identities gets a face crop and surrogate 3DMM labels from the
converted 3DDFA_V2 regressor as teacher (BlazeFace + one landmark refine), its identity, and its
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


def teacher_labels(celeba: Path, out: Path) -> dict[str, np.ndarray]:
    """Detect, crop and label every photo in identity_CelebA_subset.txt with the default model (cached)."""
    cache = out / "teacher.npz"
    if cache.is_file():
        return dict(np.load(cache))
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image

    ids = dict(line.split() for line in (celeba / "identity_CelebA_subset.txt").read_text().splitlines())
    rec = FaceReconstructor()
    rows: dict[str, list] = {k: [] for k in ("names", "rois", "params", "landmarks", "identity")}
    for name in tqdm(sorted(ids), desc="teacher labels"):
        faces = rec(read_image(celeba / "img_celeba" / name))
        if not faces:
            continue
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * f.score)
        for key, value in zip(rows, (name, face.roi_box, face.params, face.landmarks, int(ids[name]))):
            rows[key].append(value)
    rec.close()
    arrays = {k: np.array(v) for k, v in rows.items()}
    out.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **arrays)
    return arrays


def split_identities(identity: np.ndarray) -> tuple[dict[int, int], set[int]]:
    """(CelebA id -> class id for training identities, held-out CelebA ids)."""
    people = sorted(set(identity.tolist()))
    held_out = set(people[::HELD_OUT_EVERY])
    train = [p for p in people if p not in held_out]
    return {p: i for i, p in enumerate(train)}, held_out


def build_data(celeba: Path, out: Path) -> None:
    from tfface.data.celeba import read_attributes
    from tfface.data.records import FaceRecord, write_shards

    t = teacher_labels(celeba, out)
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
    joint = {**common, "loss": {"wpdc": 1.0, "landmarks": 0.01, "attributes": 1.0, "identity": 0.02, "id_loss": "arcface"},
             "phases": [{"name": "end_to_end", "epochs": 6}], "trainer": {"output_dir": str(out / "joint")}}
    only = {**common, "loss": {"wpdc": 1.0, "landmarks": 0.01, "attributes": 0.0, "identity": 0.0},
            "phases": [{"name": "end_to_end", "epochs": 6}], "trainer": {"output_dir": str(out / "3dmm_only")}}
    (out / "train_joint.yaml").write_text(yaml.safe_dump(joint, sort_keys=False))
    (out / "train_3dmm.yaml").write_text(yaml.safe_dump(only, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["data"])
    parser.add_argument("--celeba", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/joint"))
    args = parser.parse_args()
    build_data(args.celeba, args.output)


if __name__ == "__main__":
    main()
