"""CelebA attributes: per-attribute accuracy and balanced accuracy, with the majority-class baseline
beside each (a model that always answers the more frequent label of the evaluated set)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tfface.errors import DataFileError
from tfface.evaluation.runner import Runner, as_runner, require_output

SPLITS = {"train": 0, "val": 1, "test": 2}
IMAGE_FOLDERS = ("img_align_celeba", "Img/img_align_celeba", "img_celeba", "Img/img_celeba")


def attribute_metrics(probabilities: np.ndarray, labels: np.ndarray, names: Sequence[str],
                      threshold: float | np.ndarray = 0.5) -> dict[str, Any]:
    """Predictions (N, A) probabilities and labels (N, A) in {0, 1} -> per-attribute and mean figures;
    `threshold`: one for all, or one per attribute (a model's `attribute_thresholds`)."""
    pred = np.asarray(probabilities) >= np.asarray(threshold)
    y = np.asarray(labels).astype(bool)
    if pred.shape != y.shape or y.ndim != 2 or y.shape[1] != len(names):
        raise ValueError(f"predictions {pred.shape}, labels {y.shape} and {len(names)} names do not match")
    accuracy = (pred == y).mean(axis=0)
    pos, neg = y.sum(axis=0), (~y).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.where(pos > 0, (pred & y).sum(axis=0) / pos, np.nan)
        tnr = np.where(neg > 0, (~pred & ~y).sum(axis=0) / neg, np.nan)
    balanced = np.nanmean(np.stack([tpr, tnr]), axis=0)  # one class absent: the other's recall
    majority = np.maximum(pos, neg) / len(y)
    per = [{"attribute": n, "accuracy": float(a), "balanced_accuracy": float(b), "majority_accuracy": float(m),
            "positive_rate": float(p / len(y))} for n, a, b, m, p in zip(names, accuracy, balanced, majority, pos)]
    return {"faces": int(len(y)), "threshold": np.asarray(threshold).tolist(),
            "mean_accuracy": float(accuracy.mean()), "mean_balanced_accuracy": float(np.mean(balanced)),
            "majority_mean_accuracy": float(majority.mean()), "majority_mean_balanced_accuracy": 0.5,
            "per_attribute": per}


def choose_thresholds(probabilities: np.ndarray, labels: np.ndarray,
                      grid: np.ndarray = np.linspace(0.05, 0.95, 19), min_gain: float = 0.05) -> np.ndarray:
    """Per attribute, the threshold that maximises accuracy + balanced accuracy on these (held-out) faces,
    where it beats 0.5 by at least `min_gain`; else 0.5. Only attributes whose 0.5 decision is far from
    balanced move: moving every one that gains at all overfits the validation faces (for the joint preset,
    2-fold cross-validation within them: 33 moved, accuracy -1.1 points for +0.1 balanced; with 0.05, 5 moved,
    -0.6 for +0.4)."""
    p, y = np.asarray(probabilities)[:, :, None], np.asarray(labels).astype(bool)[:, :, None]
    pred = p >= grid[None, None, :]
    accuracy = (pred == y).mean(axis=0)
    pos, neg = np.maximum(y.sum(axis=0), 1), np.maximum((~y).sum(axis=0), 1)
    balanced = 0.5 * ((pred & y).sum(axis=0) / pos + (~pred & ~y).sum(axis=0) / neg)
    score = accuracy + balanced
    at_half = score[:, int(np.argmin(np.abs(grid - 0.5)))]
    best = np.argmax(score, axis=1)
    return np.where(score.max(axis=1) - at_half >= min_gain, grid[best], 0.5)


def celeba_split(root: str | os.PathLike, split: str = "test") -> tuple[list[str], list[Path], np.ndarray]:
    """(attribute names, image paths, labels (N, 40) in {0, 1}) for the CelebA images of `split` that exist
    under `root` (img_align_celeba/ or img_celeba/, attributes list_attr_celeba*.txt, list_eval_partition.txt)."""
    root = Path(root)
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {[*SPLITS, 'all']}. Received: split={split!r}")
    attr_file = _find(root, ["list_attr_celeba.txt", "Anno/list_attr_celeba.txt", "list_attr_celeba*.txt"],
                      "the attribute list (list_attr_celeba.txt)")
    part_file = None if split == "all" else _find(root, ["list_eval_partition.txt", "Eval/list_eval_partition.txt"],
                                                  "the split file (list_eval_partition.txt)")
    from tfface.data.celeba import read_attributes, read_partition

    names, labels = read_attributes(attr_file)
    all_labels = labels
    if part_file is not None:
        partition = read_partition(part_file)
        labels = {f: v for f, v in labels.items() if partition.get(f) == SPLITS[split]}
    # The image folder holding most of the labelled images (aligned crops or in-the-wild photos).
    folders = [root / c for c in IMAGE_FOLDERS if (root / c).is_dir()]
    if not folders:
        raise DataFileError(f"{root}: not a CelebA folder: no image folder (looked for {', '.join(IMAGE_FOLDERS)})")
    image_dir = max(folders, key=lambda d: sum((d / f).is_file() for f in labels))
    files = sorted(f for f in labels if (image_dir / f).is_file())
    if not files:
        what = (f"none of the {len(labels)} {split} images with attribute labels is in {image_dir}" if labels
                else f"no {split}-split image has a row in {attr_file.name}")
        raise DataFileError(f"{root}: {what}{_other_splits(folders, all_labels, part_file)}")
    y = np.stack([np.asarray(labels[f]) for f in files]) > 0
    return list(names), [image_dir / f for f in files], y.astype(np.float32)


def _other_splits(folders: list[Path], labels: dict[str, Any], part_file: Path | None) -> str:
    """'; labelled images here: 528 in img_celeba (train): use --split train' - where the labels are."""
    from tfface.data.celeba import read_partition

    partition = read_partition(part_file) if part_file is not None else {}
    names = {v: k for k, v in SPLITS.items()}
    found = []
    for folder in folders:
        per = Counter(names.get(partition.get(f), "?") for f in labels if (folder / f).is_file())
        found += [f"{n} in {folder.name} ({s})" for s, n in sorted(per.items())]
    if not found:
        return " (and no labelled image of any split is in the image folders)"
    return f"; labelled images here: {', '.join(found)}: choose that --split (or --split all)"


def _find(root: Path, candidates: list[str], what: str) -> Path:
    for c in candidates:
        hits = sorted(root.glob(c))
        if hits:
            return hits[0]
    raise DataFileError(f"{root}: not a CelebA folder: {what} is missing (looked for {', '.join(candidates)})")


def evaluate_attributes(runner: Runner | str, root: str | os.PathLike, split: str = "test",
                        limit: int | None = None, detector: str = "auto", refine: int = 1,
                        progress: bool = True) -> dict[str, Any]:
    from tfface.evaluation.crops import DetectorCrops
    from tfface.io.images import read_image

    runner = as_runner(runner)
    require_output(runner, "attributes")
    names, paths, labels = celeba_split(root, split)
    paths, labels = paths[:limit], labels[:limit]
    detect = DetectorCrops(runner, detector, refine=refine)
    probs, missed = [], 0
    try:
        for path in tqdm(paths, desc=f"CelebA attributes ({split})", disable=not progress):
            pred = detect.face_or_centre(read_image(path))
            missed += pred.box is None
            probs.append(pred.outputs["attributes"])
    finally:
        detect.close()
    thresholds = np.asarray(runner.attribute_thresholds or 0.5)  # the model's own, chosen on held-out faces
    metrics = {"split": split, "faces_not_detected": missed,
               **attribute_metrics(np.stack(probs), labels, names, thresholds)}
    return {"metrics": metrics, "probabilities": np.stack(probs), "images": [str(p) for p in paths]}


def write_attributes_report(result: dict[str, Any], out_dir: str | os.PathLike, model: str) -> Path:
    from tfface.evaluation.outputs import markdown_table, write_csv, write_json
    from tfface.evaluation.plots import plot_attribute_bars

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = {"model": model, **result["metrics"]}
    per = m["per_attribute"]
    write_json(m, out / "metrics.json")
    write_csv(per, out / "per_attribute.csv")
    plot_attribute_bars([p["attribute"] for p in per], np.array([p["accuracy"] for p in per]),
                        np.array([p["majority_accuracy"] for p in per]), out / "attributes.png",
                        f"CelebA attributes ({m['split']}, {m['faces']} faces), {model}")
    rows = [[p["attribute"], 100 * p["accuracy"], 100 * p["majority_accuracy"], 100 * p["balanced_accuracy"], 50.0]
            for p in per]
    rows.append(["**mean**", 100 * m["mean_accuracy"], 100 * m["majority_mean_accuracy"],
                 100 * m["mean_balanced_accuracy"], 50.0])
    table = markdown_table(["attribute", "accuracy %", "majority %", "balanced acc. %", "majority balanced %"], rows)
    (out / "report.md").write_text(f"# CelebA attributes\n\nModel `{model}`, split {m['split']}, {m['faces']} "
                                   f"faces.\n\n{table}\n\n![attributes](attributes.png)\n")
    return out
