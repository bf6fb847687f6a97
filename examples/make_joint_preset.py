"""How the shipped joint preset `tfface_mb05_joint` is made from the shared CelebA photos.

    pip install -e .[teacher]                                   (dlib: labelling time only)
    python examples/make_joint_preset.py data   --celeba ../shared/data/celeba -o runs/joint
    tfface train --config runs/joint/train_joint.yaml      (train_shared.yaml, train_3dmm.yaml: the ablation)
    python examples/make_joint_preset.py widen  -o runs/joint   (the 13-block branch, from the joint run)
    tfface train --config runs/joint/train_joint13.yaml
    python examples/make_joint_preset.py refine -o runs/joint --from joint13 --name joint13gen --pooling avg \
        --wild-quota 16 --identity-weight 0 --refine-epochs 25      (fewer faces of the 200 memorisable people)
    tfface train --config runs/joint/train_joint13gen.yaml
    python examples/make_joint_preset.py refine -o runs/joint --from joint13gen --name joint13gen8 --pooling avg \
        --wild-quota 8 --identity-weight 0 --refine-epochs 20
    tfface train --config runs/joint/train_joint13gen8.yaml
    python examples/make_joint_preset.py report --celeba ../shared/data/celeba -o runs/joint \
        --experiments joint13gen joint13gen8 --mirror joint13gen8 --aligned joint13gen8
    python examples/make_joint_preset.py ship -o runs/joint --run joint13gen8 --mirror --aligned
        (-> tfface/assets/presets/tfface_mb05_joint, its branch reading the crop and its mirror image, its
        embedding averaged with that of the aligned crop)

    measured, not shipped: `refine -o runs/joint [--last-stride 1]` (the branch pooled by a global depthwise
    conv), then tfface train --config runs/joint/train_joint13gdc.yaml; teacher-labelled morphs:
    python examples/make_joint_preset.py morphs -o runs/joint --morphs 24000   (a second process: add --reverse)
    python examples/make_joint_preset.py refine -o runs/joint --from tfface_mb05_joint --name morph16 --pooling avg \
        --wild-quota 8 --identity-weight 0 --morph-quota 16 --refine-epochs 16   (the control: --name cont8, no morphs)
    tfface train --config runs/joint/train_morph16.yaml
    python examples/make_joint_preset.py refine -o runs/joint --from joint13gen8 --name mir8 --pooling avg \
        --wild-quota 8 --identity-weight 0 --refine-epochs 8 --mirror   (training mirror-averaged, as it ships)
    tfface train --config runs/joint/train_mir8.yaml

`data`: every photo of both CelebA folders gets the converted 3DDFA_V2 regressor's crop, 3DMM params and
landmarks (in-the-wild photos: BlazeFace + one refine; aligned half-resolution faces: the regressor's
median crop, no 3DMM label) and dlib's 128-d embedding, labelled in resumable chunks under OUT/labels;
then records: identity classes for the in-the-wild people, attributes where the attribute file has a
row, the centred teacher embedding. Every 5th person of the in-the-wild sample (50) is held out with
all their photos in either folder; 5 % of the rest is the validation set. Batches: 32 in-the-wild +
32 aligned faces. `morphs`: blends of two training faces (tfface.data.morphs) labelled by dlib on the
blended chips, records/train_morph (teacher label only), for `refine --morph-quota`. `widen`: the identity/attribute branch grows from the last 8 blocks to all 13 (only
conv1 stays shared with the 3DMM path), started from the joint run, so identity can use the early blocks
that the frozen regressor tuned for geometry. `report`: AFLW2000-3D NME, attributes (thresholds chosen on validation), verification
with the threshold at FAR 1 %, 1 - cos to the teacher on val photos and on the held-out people, and dlib
on the same pairs; `--experiments` adds a row per other run folder, `--mirror` one per run scored with its
branch mirror-averaged (tfface.models.mirror), `--aligned` one per run whose embedding is averaged with that
of the face's aligned crop (CelebA's aligned geometry, `identity_template`; mirror-averaged too when the run
is also given to `--mirror`). `ship`: the preset with those thresholds and its packaged model.tflite
(`--mirror`, `--aligned`: as scored).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm



RUNS = {"joint": "joint (3DMM + attributes + identity distillation, 8-block identity/attribute branch)",
        "joint13": "joint, 13-block identity/attribute branch (widened from joint)",
        "joint13gdc": "joint, 13-block branch pooled by a global depthwise conv (refined from joint13)",
        "joint13gdc8": "joint, 13-block branch, last stride 1 (8x8 map), global depthwise conv (refined from joint13)"}  # run folder -> report row
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


def identity_template(celeba: Path, out: Path) -> dict[str, list]:
    """The aligned faces' median landmarks and crop box: where the embedding's aligned second view puts
    every face (`tfface.morphable.crop.warp_aligned`), as stored in a preset's `identity_template`."""
    t = aligned_template(celeba, out / "labels")
    return {"landmarks": np.round(t["landmarks"][:, :2].astype(np.float64), 3).tolist(), "roi": t["roi"].astype(float).tolist()}


def label_photo(rec, dlib, template: dict, image: np.ndarray, folder: str) -> tuple | None:
    """(roi, params, landmarks, dlib embedding) of the largest face; aligned photos: the template's
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
    return roi, params, landmarks, dlib(image, landmarks)


def teacher_labels(celeba: Path, out: Path, chunk: int = 500, reverse: bool = False) -> dict[str, np.ndarray]:
    """Every photo of both folders: the 3DDFA_V2 regressor's roi/params/landmarks (BlazeFace + one refine)
    and dlib's embedding. Cached in chunks under OUT/labels/ (resumable; `reverse` lets a second process
    work from the end)."""
    from tfface.data.teacher import DlibTeacher
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image

    photos = photo_list(celeba)
    cache = out / "labels"
    cache.mkdir(parents=True, exist_ok=True)
    template = aligned_template(celeba, cache)
    starts = list(range(0, len(photos), chunk))
    with FaceReconstructor() as rec:
        dlib = DlibTeacher()
        for c in tqdm(starts[::-1] if reverse else starts, desc="teacher label chunks"):
            path = cache / f"chunk{c // chunk:04d}.npz"
            if path.is_file():
                continue
            rows: dict[str, list] = {k: [] for k in LABEL_KEYS}
            for folder, name, person in photos[c:c + chunk]:
                labels = label_photo(rec, dlib, template, read_image(celeba / folder / name), folder)
                if labels is None:
                    continue
                for key, value in zip(rows, (name, folder, *labels[:3], person, *labels[3:])):
                    rows[key].append(value)
            tmp = cache / f"tmp{c // chunk:04d}.npz"
            np.savez(tmp, **{k: np.array(v) for k, v in rows.items()})
            tmp.rename(path)
    return cached_labels(out)


def cached_labels(out: Path) -> dict[str, np.ndarray]:
    """The labelled chunks written so far under OUT/labels/."""
    parts = [np.load(f) for f in sorted((out / "labels").glob("chunk*.npz"))]
    if not parts:
        raise SystemExit(f"no teacher labels under {out / 'labels'}: run the 'data' stage")
    return {k: np.concatenate([p[k] for p in parts]) for k in LABEL_KEYS}


def split_identities(identity: np.ndarray) -> tuple[dict[int, int], set[int]]:
    """(CelebA id -> class id for training identities, held-out CelebA ids: every 5th of the in-the-wild
    sample's 250 people; all their photos, in either folder, stay out of training)."""
    from tfface.data.celeba import held_out_people

    held_out = held_out_people(identity)
    train = [p for p in sorted(set(identity.tolist())) if p not in held_out]
    return {p: i for i, p in enumerate(train)}, held_out


def fitted_labels(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Surrogate labels from the fitter: per person, one shared identity fitted to the teacher's 68
    landmarks of all their in-the-wild photos, with per-photo pose and expression (Liu et al.)."""
    from tfface.fitting import FitConfig, fit_crop_labels
    from tfface.fitting.labels import bfm_fitter

    # the teacher's landmarks are fixed model vertices: no silhouette down-weighting
    fitter = bfm_fitter(FitConfig(silhouette_contour=False))
    rois, params = t["rois"].copy(), t["params"].copy()
    wild = t["folder"] == FOLDERS[0]
    for person in tqdm(np.unique(t["identity"][wild]), desc="shared-identity fits"):
        idx = np.flatnonzero(wild & (t["identity"] == person))
        labels = fit_crop_labels(t["landmarks"][idx], fitter, shared_identity=len(idx) > 1)
        rois[idx], params[idx] = labels.roi_boxes, labels.params
    return {**t, "rois": rois, "params": params}


GROUPS = ("train_wild", "train_aligned", "val", "test", "test_aligned")


VAL_SPLITS = ("photos", "people")


def assign_groups(folder: np.ndarray, identity: np.ndarray, held_out: set[int], val_split: str = "photos") -> np.ndarray:
    """Each photo's group. Held-out people -> test (either folder). val: 5 % of the other photos at random
    ("photos", the shipped preset's split: val people are trained on, so val shows a fit to known people),
    or every 20th other person with all their photos ("people": val measures people never trained on, as
    the report's test does). The rest -> train by folder."""
    if val_split not in VAL_SPLITS:
        raise ValueError(f"val_split must be one of {VAL_SPLITS}. Received: {val_split!r}")
    rng = np.random.default_rng(0)
    val_people = set(sorted(set(identity.tolist()) - held_out)[1::20]) if val_split == "people" else set()
    groups = []
    for f, person in zip(folder.astype(str), identity.tolist()):
        if person in held_out:
            groups.append("test" if f == FOLDERS[0] else "test_aligned")
        elif person in val_people or (val_split == "photos" and rng.random() < 0.05):
            groups.append("val")
        else:
            groups.append("train_wild" if f == FOLDERS[0] else "train_aligned")
    return np.array(groups)


def data_groups(t: dict[str, np.ndarray], out: Path) -> tuple[np.ndarray, set[int]]:
    """(each labelled photo's group, held-out people), by the split `data` recorded in OUT/split.json."""
    split = json.loads((out / "split.json").read_text())["val"] if (out / "split.json").is_file() else "photos"
    _, held = split_identities(t["identity"][t["folder"] == FOLDERS[0]])
    return assign_groups(t["folder"], t["identity"], held, split), held


def build_data(celeba: Path, out: Path, labels: str = "teacher", cached: bool = False,
               epochs: tuple[int, int] = (2, 60), steps: int = 100, val_split: str = "photos") -> None:
    """Records for every labelled photo: in-the-wild ones with 3DMM labels, identity class, attributes
    where the attribute file has a row and dlib's embedding; aligned ones with attributes + embedding."""
    from tfface.data.celeba import read_attributes
    from tfface.data.records import FaceRecord, write_shards
    from tfface.io.outputs import write_json_atomic

    t = cached_labels(out) if cached else teacher_labels(celeba, out)
    t = fitted_labels(t) if labels == "fitted" else t
    _, attr = read_attributes(next(celeba.glob("list_attr_celeba*.txt")))
    classes, held_out = split_identities(t["identity"][t["folder"] == FOLDERS[0]])
    write_json_atomic(out / "split.json", {"val": val_split})
    group_of, _ = data_groups(t, out)
    groups: dict[str, list] = {g: [] for g in GROUPS}
    teacher = centred(t["teacher"], teacher_mean(t, held_out))
    for i, name in enumerate(t["names"]):
        folder, person, row = str(t["folder"][i]), int(t["identity"][i]), attr.get(str(name))
        has_3d = np.all(np.isfinite(t["params"][i]))
        groups[group_of[i]].append(FaceRecord(
            image=celeba / folder / str(name), source=folder, key=f"{folder}/{name}", roi=t["rois"][i],
            params=t["params"][i] if has_3d else None, landmarks=t["landmarks"][i][:, :2] if has_3d else None,
            attributes=None if row is None else (row > 0).astype(np.float32), identity=classes.get(person, -1),
            teacher=teacher[i]))
    for group, records in groups.items():
        if group.startswith("test"):
            continue  # the report cuts held-out crops straight from the photos
        summary = write_shards(records, out / "records" / group, prefix=group, shard_size=512)
        print(group, summary["written"], "records")
    attrs = np.array([r.attributes for r in groups["train_wild"] + groups["train_aligned"] if r.attributes is not None])
    write_configs(out, len(classes), attrs.mean(axis=0), epochs, steps, validation=bool(groups["val"]))


MORPH_CHUNK = 1000


def morph_labels(celeba: Path, out: Path, count: int = 32000, reverse: bool = False) -> Path:
    """`count` morphs of two training faces (tfface.data.morphs): each chunk of MORPH_CHUNK under
    OUT/morphs/ holds the pairs (indices into the cached labels), weights, dlib's raw embedding of the
    blended chips and the blended stored crops as JPEG (resumable; `reverse`: a second process from the end)."""
    import cv2

    from tfface.data.morphs import blend, morph_pairs
    from tfface.data.records import DEFAULT_CROP_SIZE, stored_crop_box
    from tfface.data.teacher import DlibTeacher
    from tfface.io.images import read_image
    from tfface.morphable.crop import warp_crop

    t = cached_labels(out)
    group_of, _ = data_groups(t, out)
    pairs, weights = morph_pairs(np.flatnonzero(np.char.startswith(group_of.astype(str), "train")), count)
    cache = out / "morphs"
    cache.mkdir(parents=True, exist_ok=True)
    teacher = DlibTeacher()
    starts = list(range(0, count, MORPH_CHUNK))
    for c in tqdm(starts[::-1] if reverse else starts, desc="morph chunks"):
        path = cache / f"chunk{c // MORPH_CHUNK:04d}.npz"
        if path.is_file():
            continue
        faces = {}
        for i in np.unique(pairs[c:c + MORPH_CHUNK]):
            image = read_image(celeba / str(t["folder"][i]) / str(t["names"][i]))
            faces[i] = (warp_crop(image, stored_crop_box(t["rois"][i]), DEFAULT_CROP_SIZE),
                        teacher.chip(image, t["landmarks"][i]))
        first = int(pairs[c, 0])
        if float(teacher.embed_chips([faces[first][1]])[0] @ t["teacher"][first]) < 0.999:
            raise SystemExit(f"{path}: the chips do not reproduce the cached teacher labels (labels changed?)")
        chips, jpegs = [], []
        for (a, b), w in zip(pairs[c:c + MORPH_CHUNK], weights[c:c + MORPH_CHUNK]):
            chips.append(blend(faces[a][1], faces[b][1], w))
            crop = cv2.cvtColor(blend(faces[a][0], faces[b][0], w), cv2.COLOR_RGB2BGR)
            jpegs.append(np.frombuffer(cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])[1], np.uint8))
        tmp = cache / f"tmp{c // MORPH_CHUNK:04d}.npz"
        np.savez(tmp, pairs=pairs[c:c + MORPH_CHUNK], weights=weights[c:c + MORPH_CHUNK],
                 teacher=teacher.embed_chips(chips), jpeg=np.concatenate(jpegs),
                 offsets=np.cumsum([0] + [len(j) for j in jpegs]))
        tmp.rename(path)
    return cache


def morph_records(out: Path) -> None:
    """records/train_morph: every labelled morph as a record with the (centred) teacher label only."""
    from tfface.data.records import FaceRecord, stored_roi, write_shards

    t = cached_labels(out)
    _, held_out = data_groups(t, out)
    mean = teacher_mean(t, held_out)
    records = []
    for f in sorted((out / "morphs").glob("chunk*.npz")):
        m = np.load(f)
        teacher = centred(m["teacher"], mean)
        for k, ((a, b), w) in enumerate(zip(m["pairs"], m["weights"])):
            jpeg = m["jpeg"][m["offsets"][k]:m["offsets"][k + 1]].tobytes()
            records.append(FaceRecord(image=jpeg, source="morph", key=f"morph/{a}+{b}@{w:.3f}", roi=stored_roi(),
                                      teacher=teacher[k]))
    summary = write_shards(records, out / "records" / "train_morph", prefix="train_morph", shard_size=2048)
    print("train_morph", summary["written"], "records")


def teacher_mean(t: dict[str, np.ndarray], held_out: set[int]) -> np.ndarray:
    """The mean of dlib's embeddings over every photo but the held-out people's (the centring of `centred`)."""
    return t["teacher"][~np.isin(t["identity"], list(held_out))].mean(axis=0)


def centred(embeddings: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """dlib's embeddings share one large mean direction (any two faces score cos ~0.7): without it the
    distillation target is what tells people apart. Unit-norm, minus the training faces' mean."""
    e = embeddings - mean
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


def write_configs(out: Path, num_ids: int, positive_rate: np.ndarray, epochs: tuple[int, int] = (2, 60),
                  steps: int = 100, validation: bool = True) -> None:
    """data.yaml (32 in-the-wild + 32 aligned faces per batch) and the joint / 3DMM-only training configs."""
    data = {"sources": [
        {"name": "wild", "files": ["records/train_wild/*.tfrecord"], "quota": 32, "task": "params"},
        {"name": "aligned", "files": ["records/train_aligned/*.tfrecord"], "quota": 32, "task": "attributes"}],
        "validation": [{"name": "val", "files": ["records/val/*.tfrecord"], "quota": 64}] if validation else [],
        "augment": {"max_rotation": 20.0, "min_scale": 0.85, "max_scale": 1.15, "occlusion": 0.3,
                    "downscale": 0.3, "min_resolution": 0.35}}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    rate = np.clip(positive_rate, 0.02, 0.98)
    common = {
        "model": {"init_preset": "tfface_mb05_3ddfa", "num_ids": num_ids, "id_head": "arcface",
                  "id_latent_dim": 128, "id_hidden_dim": 512, "freeze_batch_norm": True},
        "data": {"source": "pipeline", "pipeline_config": str(out / "data.yaml"), "batch_size": 64,
                 "steps_per_epoch": steps, "validation_steps": 3 if validation else 0},
        "optimizer": {"learning_rate": 1.0e-4},
    }
    # New heads first (backbone and 3DMM head frozen, so 3DMM is untouched), then the rest.
    heads = {"name": "heads", "epochs": epochs[0], "trainable": ["attributes", "identity", "residual", "decoders"],
             "learning_rate": 1.0e-3}
    loss = {"wpdc": 4.0, "landmarks": 0.02, "shape": 0.01, "attributes": 1.0,
            "attribute_pos_weight": [round(float(v), 3) for v in np.sqrt((1 - rate) / rate)],
            "identity": 0.02, "id_consistency": 0.001, "id_loss": "arcface", "distill": 1.0, "distill_structure": 2.0}
    # The shipped design: identity and attributes get their own copy of the last 8 backbone blocks
    # (from the 15x15 feature map on), trained while the backbone and 3DMM head stay frozen.
    branch = {**common, "model": {**common["model"], "branch_blocks": 8}, "loss": loss,
              "phases": [heads, {"name": "branch", "epochs": epochs[1], "learning_rate": 3.0e-4,
                                 "trainable": ["branch", "attributes", "identity", "residual", "decoders"]}],
              "trainer": {"output_dir": str(out / "joint")}}
    # The alternative measured beside it: everything shares the backbone, trained end to end (wpdc x4:
    # the 3DMM loss is ~0.004 at the teacher's level, far below the new tasks' losses).
    shared = {**common, "loss": loss, "phases": [heads, {"name": "end_to_end", "epochs": epochs[1]}],
              "trainer": {"output_dir": str(out / "joint_shared")}}
    only = {**common, "loss": {"wpdc": 4.0, "landmarks": 0.02, "shape": 0.0, "attributes": 0.0, "identity": 0.0},
            "phases": [{"name": "end_to_end", "epochs": epochs[1]}], "trainer": {"output_dir": str(out / "3dmm_only")}}
    (out / "train_shared.yaml").write_text(yaml.safe_dump(shared, sort_keys=False))
    (out / "train_joint.yaml").write_text(yaml.safe_dump(branch, sort_keys=False))
    (out / "train_3dmm.yaml").write_text(yaml.safe_dump(only, sort_keys=False))


WIDE_BLOCKS = 13  # every depthwise block after conv1


def widen(out: Path, epochs: int = 80, learning_rate: float = 5.0e-4) -> Path:
    """train_joint13.yaml: the joint run continued with a 13-block identity/attribute branch. Its blocks
    6-13 and every head start as the joint run's, blocks 1-5 as the regressor's (which the 8-block branch
    read frozen), so it starts exactly where the joint run ended and can now tune the early blocks. The
    branch's batch norms train (the frozen backbone's stay in inference mode): with them frozen the branch
    learned ~4x slower per epoch."""
    return continued(out, out / "joint", "joint13", {"branch_blocks": WIDE_BLOCKS, "freeze_batch_norm": False},
                     epochs, learning_rate)


def refine(out: Path, source: str, last_stride: int = 2, epochs: int = 30, learning_rate: float = 2.0e-4,
           pooling: str = "gdc", wild_quota: int | None = None, identity_weight: float | None = None,
           run: str | None = None, morph_quota: int = 0, mirror: bool = False) -> Path:
    """train_<run>.yaml: the 13-block run (`source`: a run folder under OUT, or a preset such as
    tfface_mb05_joint) continued with one change. `pooling` "gdc" (run joint13gdc): a global depthwise conv
    pools the branch's last map (one learned weight per position and channel, MobileFaceNet's habit); its
    kernel starts as the average, so the run starts exactly where the source ended. `last_stride` 1
    (joint13gdc8): the branch's last stride-2 block keeps the 8x8 map. `wild_quota` (of the 64 per batch;
    the rest aligned faces) and `identity_weight` (the margin loss on the in-the-wild people): how much the
    branch sees of the 200 training people it can memorise; `morph_quota`: blends of two training faces
    labelled by the teacher (the `morphs` stage) per batch, taken from the aligned faces' share; `mirror`:
    the branch trains mirror-averaged, as it ships."""
    src = out / source if (out / source / "model.keras").is_file() else source
    run = run or ("joint13gdc" if last_stride == 2 else "joint13gdc8")
    model = {"branch_blocks": WIDE_BLOCKS, "freeze_batch_norm": False, "branch_pooling": pooling,
             "branch_last_stride": last_stride, "mirror_average": mirror}
    return continued(out, src, run, model, epochs, learning_rate, wild_quota, identity_weight, morph_quota)


def continued(out: Path, source: Path | str, run: str, model: dict, epochs: int, learning_rate: float,
              wild_quota: int | None = None, identity_weight: float | None = None, morph_quota: int = 0) -> Path:
    """train_<run>.yaml: train_joint.yaml's data, batch and losses with the model changed by `model`,
    every layer the source has (a run folder or a preset name) starting as the source's, then one
    phase training the branch and heads (backbone and 3DMM head frozen); `wild_quota`: data_<run>.yaml
    with that many in-the-wild faces and `morph_quota` morphs per batch (the rest aligned);
    `identity_weight`: the margin loss's."""
    import keras

    from tfface.models.presets import load_preset
    from tfface.training.config import load_config
    from tfface.training.trainer import build_model

    config = yaml.safe_load((out / "train_joint.yaml").read_text())
    config["model"] = {**config["model"], **model}
    if identity_weight is not None:
        config["loss"] = {**config["loss"], "identity": identity_weight}
    if wild_quota is not None or morph_quota:
        data = yaml.safe_load((out / "data.yaml").read_text())
        total = sum(src["quota"] for src in data["sources"])
        wild = data["sources"][0]["quota"] if wild_quota is None else wild_quota
        data["sources"][0]["quota"], data["sources"][1]["quota"] = wild, total - wild - morph_quota
        if morph_quota:
            data["sources"].append({"name": "morph", "files": ["records/train_morph/*.tfrecord"],
                                    "quota": morph_quota, "task": "teacher"})
        (out / f"data_{run}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        config["data"] = {**config["data"], "pipeline_config": str(out / f"data_{run}.yaml")}
    target = build_model(load_config(overrides=config).model)
    source_model = (load_preset(source).model if isinstance(source, str)
                    else keras.saving.load_model(source / "model.keras", compile=False))
    copied = copy_matching_weights(source_model, target)
    init = out / f"{run}_init.weights.h5"
    target.save_weights(init)
    print(f"wrote {init}: {copied} layers from {source}, the rest as {config['model']['init_preset']}")
    config["model"]["init_weights"] = str(init)
    config["phases"] = [{"name": run, "epochs": epochs, "learning_rate": learning_rate,
                         "trainable": ["branch", "attributes", "identity", "residual", "decoders"]}]
    if isinstance(source, str) and config["loss"]["identity"] > 0:
        # a preset has no identity classifier (training-only): it catches up first, alone
        config["phases"].insert(0, {"name": "classifier", "epochs": 2, "learning_rate": 1.0e-3,
                                    "trainable": ["id_classifier"]})
    config["trainer"] = {**config.get("trainer", {}), "output_dir": str(out / run)}
    path = out / f"train_{run}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def copy_matching_weights(source, target) -> int:
    """Copy every layer's weights from `source` to the same-named layer of `target` where the shapes agree
    (nested models are walked, not copied whole)."""
    import keras

    def leaves(model):
        return [la for la in model._flatten_layers(include_self=False) if la.weights and not isinstance(la, keras.Model)]

    layers = {la.name: la for la in leaves(target)}
    copied = 0
    for la in leaves(source):
        to = layers.get(la.name)
        if to is None:
            continue
        weights = la.get_weights()
        if [w.shape for w in weights] == [w.shape for w in to.get_weights()]:
            to.set_weights(weights)
            copied += 1
    return copied


def load_run(run: Path, name: str, weights: str | None = None, mirror: bool = False, template: dict | None = None):
    """A trained run's model.keras as a Preset (the teacher's preprocessor, param stats and 68-point
    model); `weights`: a phase's weights file in the run instead of the final ones; `mirror`: its
    branch mirror-averaged (tfface.models.mirror), as the shipped preset runs; `template`: its
    embedding also reads the aligned crop (`identity_template`)."""
    import keras

    import tfface.models.face_model  # noqa: F401  (registers FaceModel)
    from tfface.models.presets import DEFAULT_PRESET, Preset, inference_copy, load_preset

    teacher = load_preset(DEFAULT_PRESET)
    model = keras.saving.load_model(run / "model.keras", compile=False)
    if weights:
        model.load_weights(run / weights)
    if mirror:
        model = inference_copy(model, mirror_average=True)
    config = teacher.config if template is None else {**teacher.config, "identity_template": template}
    return Preset(name, model, teacher.preprocessor, teacher.param_stats, teacher.shape_model, config)


TRAIN_SAMPLE = 400  # in-the-wild training photos the report embeds to compare the fit with val and test


def eval_sets(celeba: Path, out: Path) -> dict[str, dict[str, np.ndarray]]:
    """val (threshold choice), test and test_aligned (held-out people): 120 px crops cut at the labelled
    rois by the one crop rule, the aligned crops of the embedding's second view, identities, attributes
    (-1 where unlabelled) and dlib's embeddings."""
    from tfface.data.celeba import read_attributes
    from tfface.io.images import read_image
    from tfface.models.preprocessor import FacePreprocessor
    from tfface.morphable.crop import warp_aligned
    from tfface.runtimes import identity_template as template_arrays

    t = cached_labels(out)
    template = template_arrays({"identity_template": identity_template(celeba, out)})
    _, attr = read_attributes(next(celeba.glob("list_attr_celeba*.txt")))
    group, held = data_groups(t, out)
    pre = FacePreprocessor()
    target = centred(t["teacher"], teacher_mean(t, held))  # the training target, as in `data`
    sets = {}
    for name in ("train_wild", "val", "test", "test_aligned"):
        idx = np.flatnonzero(group == name)
        if name == "train_wild":  # a fixed sample of training photos: how closely the trained-on faces fit
            idx = np.sort(np.random.default_rng(0).permutation(idx)[:TRAIN_SAMPLE])
        if not len(idx):
            continue
        crops, aligned = [], []
        for i in tqdm(idx, desc=f"{name} crops"):
            image = read_image(celeba / str(t["folder"][i]) / str(t["names"][i]))
            crops.append(pre.crop(image, t["rois"][i]))
            aligned.append(warp_aligned(image, t["landmarks"][i], template, pre.image_size))
        labels = np.array([(attr[str(t["names"][i])] > 0) if str(t["names"][i]) in attr else np.full(40, -1)
                           for i in idx], np.int8)
        sets[name] = {"crops": np.stack(crops), "aligned": np.stack(aligned), "identity": t["identity"][idx],
                      "attributes": labels, "teacher": t["teacher"][idx], "target": target[idx]}
    return sets


def run_outputs(run, crops: np.ndarray, keys: tuple[str, ...] = ("attributes", "embedding")) -> dict[str, np.ndarray]:
    """`keys` of `run` (a runner, or its `raw`) on the crops, 64 at a time."""
    outs = [run(crops[i:i + 64]) for i in range(0, len(crops), 64)]
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0] if k in keys}


def evaluate_run(runner, sets: dict, aflw: Path, aflw_limit: int | None = None) -> dict:
    """AFLW2000-3D NME (GT crops); attributes on the held-out in-the-wild photos at thresholds chosen on
    val; verification on held-out pairs with the threshold at FAR 1 %."""
    from tfface.evaluation.aflw2000 import evaluate_aflw2000
    from tfface.evaluation.attributes import attribute_metrics, choose_thresholds
    from tfface.evaluation.verification import embedding_verification
    from tfface.inference.face_path import embedding_mean
    from tfface.models.attributes import ATTRIBUTE_NAMES

    result = {"aflw2000": evaluate_aflw2000(runner, aflw, crop="gt", limit=aflw_limit, progress=False)["metrics"]}
    out = {name: run_outputs(runner, s["crops"]) for name, s in sets.items()}
    if runner.identity_template is not None:  # the embedding's aligned second view, as FaceReconstructor runs it
        for name, s in sets.items():
            second = run_outputs(runner, s["aligned"], ("embedding",))["embedding"]
            out[name]["embedding"] = embedding_mean(out[name]["embedding"], second)
    if "attributes" in out["test"]:
        val = sets["val"]["attributes"][:, 0] >= 0 if "val" in sets else np.zeros(0, bool)
        thresholds = (choose_thresholds(out["val"]["attributes"][val], sets["val"]["attributes"][val]) if val.any()
                      else np.full(len(ATTRIBUTE_NAMES), 0.5))
        for name in ("test", "test_aligned"):
            if name not in sets:
                continue
            lab = sets[name]["attributes"][:, 0] >= 0
            if lab.any():
                for key, t in (("attributes", 0.5), ("attributes_tuned", thresholds)):
                    m = attribute_metrics(out[name]["attributes"][lab], sets[name]["attributes"][lab], ATTRIBUTE_NAMES, t)
                    result[f"{key}_{name}"] = {k: v for k, v in m.items() if k not in ("per_attribute", "threshold")}
        result["attribute_thresholds"] = [round(float(v), 3) for v in thresholds]
    if "embedding" in out["test"]:
        result["verification"] = embedding_verification(out["test"]["embedding"], sets["test"]["identity"])
        # 1 - cos to the distillation target: on training photos, val (photos not trained on, of people
        # mostly trained on) and the held-out people; the differences are how much of the fit is memorised
        result["distill"] = {name: float(np.mean(1 - np.sum(out[name]["embedding"] * sets[name]["target"], axis=1)))
                             for name in sets}
    return result


def row_name(run: str, mirror: bool = False, aligned: bool = False) -> str:
    """A run folder's row in report.json."""
    return RUNS.get(run, f"{run} (experiment)") + (MIRROR_ROW if mirror else "") + (ALIGNED_ROW if aligned else "")


MIRROR_ROW = ", mirror-averaged branch"
ALIGNED_ROW = ", embedding + aligned second view"


def report(celeba: Path, out: Path, aflw: Path, aflw_limit: int | None = None, baselines: bool = True,
           experiments: list[str] = (), mirror: list[str] = (), aligned: list[str] = ()) -> dict:
    """Every run (and, with `baselines`, the presets) on the held-out people; `experiments`: more run
    folders under OUT (e.g. a continuation not shipped), a row each, so every figure quoted comes from here;
    `mirror`: runs (of either) to score again with their branch mirror-averaged, a row each; `aligned`:
    runs to score with the embedding's aligned second view (mirror-averaged if also in `mirror`)."""
    from tfface.evaluation.verification import embedding_verification
    from tfface.io.outputs import write_json_atomic
    from tfface.runtimes import KerasRunner

    sets = eval_sets(celeba, out)
    runs = {row_name(run): (out / run, False, False) for run in RUNS}  # row -> (folder, mirror, aligned) or preset
    if baselines:
        runs = {"teacher (converted 3DDFA_V2)": "tfface_mb05_3ddfa", "previous joint preset": "tfface_mb05_joint",
                **runs, "joint, shared backbone trained end to end": (out / "joint_shared", False, False),
                "3DMM only": (out / "3dmm_only", False, False)}
    for name in experiments:
        if not (out / name / "model.keras").is_file():
            raise SystemExit(f"{out / name}: no model.keras (an experiment to report is a trained run folder)")
        runs[f"{name} (experiment)"] = (out / name, False, False)  # a second row even for a run of RUNS
    for name in mirror:
        if not (out / name / "model.keras").is_file():
            raise SystemExit(f"{out / name}: no model.keras (a run to mirror-average is a trained run folder)")
        runs[row_name(name, mirror=True)] = (out / name, True, False)
    for name in aligned:
        if not (out / name / "model.keras").is_file():
            raise SystemExit(f"{out / name}: no model.keras (a run to score with the aligned view is a trained run folder)")
        runs[row_name(name, mirror=name in mirror, aligned=True)] = (out / name, name in mirror, True)
    template = identity_template(celeba, out) if aligned else None
    results = {}
    for name, spec in runs.items():
        if not isinstance(spec, str) and not (spec[0] / "model.keras").is_file():
            continue
        preset = spec if isinstance(spec, str) else load_run(spec[0], name, mirror=spec[1],
                                                             template=template if spec[2] else None)
        results[name] = evaluate_run(KerasRunner(preset), sets, aflw, aflw_limit)
        print(name, json.dumps(results[name]["aflw2000"]["nme_2d"]))
    teacher = {"verification": embedding_verification(sets["test"]["teacher"], sets["test"]["identity"])}
    results["dlib ResNet (the distillation teacher, same pairs)"] = teacher
    write_json_atomic(out / "report.json", results)  # strict JSON: an empty yaw bin's NaN becomes null
    (out / "report.md").write_text(report_markdown(results, sets))
    print((out / "report.md").read_text())
    return results


def report_markdown(results: dict, sets: dict) -> str:
    n_attr = int((sets["test"]["attributes"][:, 0] >= 0).sum())
    lines = ["| model | AFLW2000-3D NME 0-30 / 30-60 / 60-90 / mean (%) | attributes acc / balanced acc, at 0.5 → "
             f"at tuned thresholds ({n_attr} held-out in-the-wild photos) | verification acc / AUC / TAR@FAR1% "
             f"({len(sets['test']['crops'])} held-out photos, 50 people) | 1 − cos to the teacher: in-the-wild "
             f"training photos ({TRAIN_SAMPLE}) / val photos / held-out people |", "|---|---|---|---|---|"]
    for name, r in results.items():
        nme = (" / ".join(f"{v:.2f}" if v is not None and np.isfinite(v) else "–"
                          for v in list(r["aflw2000"]["nme_2d"].values())[:4]) if "aflw2000" in r else "–")
        a, b = r.get("attributes_test"), r.get("attributes_tuned_test")
        att = (f"{100 * a['mean_accuracy']:.1f} / {100 * a['mean_balanced_accuracy']:.1f} → "
               f"{100 * b['mean_accuracy']:.1f} / {100 * b['mean_balanced_accuracy']:.1f}") if a else "–"
        v = r.get("verification")
        ver = (f"{100 * v['accuracy_mean']:.1f} ± {100 * v['accuracy_std']:.1f} / {v['auc']:.3f} / "
               f"{100 * v['tar_at_far']['0.01']:.1f}") if v else "–"
        d = r.get("distill", {})
        gap = " / ".join(f"{d[k]:.2f}" if k in d else "–" for k in ("train_wild", "val", "test")) if d else "–"
        lines.append(f"| {name} | {nme} | {att} | {ver} | {gap} |")
    a = next((r["attributes_test"] for r in results.values() if "attributes_test" in r), None)
    if a:
        lines.append(f"| majority class per attribute (of the test labels) | – | "
                     f"{100 * a['majority_mean_accuracy']:.1f} / 50.0 | 50.0 / 0.500 / – | – |")
    return "\n".join(lines) + "\n"


def shape_directions(preset, sets: dict) -> list[list[float]]:
    """`tfface edit`'s attribute -> 3DMM directions (tfface.inference.editing.fit_shape_directions), fitted
    on the model's own outputs for the training people's photos of the report's sets (no held-out person)."""
    from tfface.inference.editing import fit_shape_directions
    from tfface.runtimes import KerasRunner

    crops = np.concatenate([sets[name]["crops"] for name in ("train_wild", "val") if name in sets])
    raw = run_outputs(KerasRunner(preset).raw, crops, ("attributes", "params"))  # logits, normalised params
    directions = fit_shape_directions(raw["attributes"], raw["params"])
    return [[round(float(v), 6) for v in row] for row in directions]


def ship(out: Path, target: Path, run: str = "joint13", mirror: bool = False,
         celeba: Path = Path("../shared/data/celeba"), aligned: bool = False) -> None:
    """A joint run (`run`: its folder under OUT) as the shipped preset, with the verification threshold at
    FAR 1 % on the held-out pairs, the attribute thresholds chosen on val and the attribute -> 3DMM
    directions `tfface edit` moves its 3D face by; `mirror`: its branch mirror-averaged (scored by
    `report --mirror RUN`); `aligned`: its embedding also reads the aligned crop (`report --aligned RUN`)."""
    from tfface.inference.editing import SHAPE_DIRECTIONS
    from tfface.models.packaging import package_preset
    from tfface.models.presets import DEFAULT_PRESET, load_preset, save_preset

    results = json.loads((out / "report.json").read_text())
    row = row_name(run, mirror, aligned)
    if row not in results:
        how = ((f" --mirror {run}" if mirror else "") + (f" --aligned {run}" if aligned else "")
               or ("" if run in RUNS else f" --experiments {run}"))
        raise SystemExit(f"{out / 'report.json'} has no results for the run '{run}': train it, then run 'report{how}'")
    joint = results[row]
    teacher = load_preset(DEFAULT_PRESET)
    template = identity_template(celeba, out) if aligned else None
    preset = load_run(out / run, run, mirror=mirror, template=template)
    model = preset.model
    extra = {"description": "MobileNetV1 x0.5 joint model: 3DMM (62 params) + 40 CelebA attributes + 128-d "
                            "identity embedding distilled from dlib's ResNet, fine-tuned from tfface_mb05_3ddfa "
                            f"on the CelebA sample; identity and attributes read their own copy of the last "
                            f"{model.branch_blocks} backbone blocks"
                            + (", on the crop and its mirror image, averaged" if mirror else "")
                            + ("; the embedding is averaged with that of the face's aligned crop" if aligned else ""),
             "licence": "weights trained on CelebA photos: non-commercial research use only (see README)",
             "verification_threshold": round(float(joint["verification"]["threshold_at_far"]), 4),
             "verification_far": joint["verification"]["far"],
             "attribute_thresholds": joint["attribute_thresholds"],
             "held_out_report": {k: v for k, v in joint.items() if k not in ("aflw2000", "attribute_thresholds")},
             "aflw2000_nme_2d": joint["aflw2000"]["nme_2d"],
             SHAPE_DIRECTIONS: shape_directions(preset, eval_sets(celeba, out)),
             **({"identity_template": template} if aligned else {})}
    save_preset(model, target, teacher.param_stats, teacher.preprocessor, extra=extra)
    parity = package_preset(target)  # the model.tflite inference runs, checked against the Keras weights
    print(f"packaged {target / 'model.tflite'}: {parity}")
    print(f"wrote {target} ({sum(f.stat().st_size for f in target.iterdir()) / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["data", "morphs", "widen", "refine", "report", "ship"])
    parser.add_argument("--run", default="joint13", help=f"ship: the run folder to ship ({', '.join(RUNS)} or "
                                                            "an experiment that 'report --experiments' scored)")
    parser.add_argument("--from", dest="source", default="joint13",
                        help="refine: the run folder under OUTPUT (or a preset name) to continue from")
    parser.add_argument("--last-stride", type=int, choices=[1, 2], default=2,
                        help="refine: 1 keeps the branch's last 8x8 map (run joint13gdc8)")
    parser.add_argument("--pooling", choices=["avg", "gdc"], default="gdc", help="refine: the branch's pooling")
    parser.add_argument("--wild-quota", type=int, default=None, help="refine: in-the-wild faces per batch of 64")
    parser.add_argument("--identity-weight", type=float, default=None, help="refine: the margin loss's weight")
    parser.add_argument("--morph-quota", type=int, default=0, help="refine: teacher-labelled morphs per batch of 64")
    parser.add_argument("--morphs", type=int, default=32000, help="morphs: how many to make")
    parser.add_argument("--reverse", action="store_true", help="morphs: label chunks from the end (a second process)")
    parser.add_argument("--refine-epochs", type=int, default=30, help="refine: epochs")
    parser.add_argument("--lr", type=float, default=2.0e-4, help="refine: learning rate (cosine decay)")
    parser.add_argument("--name", default=None, help="refine: the run's folder (default joint13gdc / joint13gdc8)")
    parser.add_argument("--experiments", nargs="*", default=[],
                        help="report: more run folders under OUTPUT to evaluate, a row each (named by folder)")
    parser.add_argument("--mirror", nargs="*", default=None,
                        help="report: run folders to score again with a mirror-averaged branch; ship, refine "
                             "(no values): ship / train the run that way")
    parser.add_argument("--aligned", nargs="*", default=None,
                        help="report: runs to score with the embedding's aligned second view; ship (no values): "
                             "ship the run that way")
    parser.add_argument("--aflw", type=Path, default=Path("../shared/data/aflw2000_3d"))
    parser.add_argument("--labels", choices=["teacher", "fitted"], default="teacher",
                        help="3DMM labels: the regressor's own predictions, or shared-identity fits to its landmarks")
    parser.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/joint"))
    parser.add_argument("--cached-labels", action="store_true",
                        help="data: build records from the teacher labels computed so far (no labelling)")
    parser.add_argument("--epochs", type=int, nargs=2, default=(2, 60), help="data: heads / branch epochs")
    parser.add_argument("--steps", type=int, default=100, help="data: steps per epoch")
    parser.add_argument("--val-split", choices=VAL_SPLITS, default="photos",
                        help="data: val = 5 %% of the photos (the shipped preset's) or 5 %% of the people, "
                             "all their photos (val then measures people never trained on)")
    parser.add_argument("--target", type=Path,
                        default=Path(__file__).resolve().parents[1] / "tfface/assets/presets/tfface_mb05_joint")
    args = parser.parse_args()
    if args.stage == "data":
        build_data(args.celeba, args.output, args.labels, args.cached_labels, tuple(args.epochs), args.steps,
                   args.val_split)
    elif args.stage == "morphs":
        morph_labels(args.celeba, args.output, args.morphs, args.reverse)
        if not args.reverse:
            morph_records(args.output)
    elif args.stage == "widen":
        print(f"wrote {widen(args.output)}")
    elif args.stage == "refine":
        path = refine(args.output, args.source, args.last_stride, args.refine_epochs, args.lr, args.pooling,
                      args.wild_quota, args.identity_weight, args.name, args.morph_quota, args.mirror is not None)
        print(f"wrote {path}")
    elif args.stage == "report":
        report(args.celeba, args.output, args.aflw, experiments=args.experiments, mirror=args.mirror or [],
               aligned=args.aligned or [])
    else:
        ship(args.output, args.target, args.run, mirror=args.mirror is not None, celeba=args.celeba,
             aligned=args.aligned is not None)


if __name__ == "__main__":
    main()
