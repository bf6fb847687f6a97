"""Face verification: the LFW protocol (10 folds, the threshold chosen on the other nine) on cosine
similarity of L2-normalised embeddings, ROC and TAR@FAR; pairs from LFW `pairs.txt`, a CSV of
(img1, img2, same) or identity folders (balanced pairs drawn with a seed)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tfface.errors import DataFileError
from tfface.evaluation.runner import Runner, as_runner, require_output

FARS = (1e-3, 1e-2)
_TRUE = {"1", "true", "same", "yes", "match"}
_HEADER = {"same", "label", "is_same", "issame", "match"}
_FALSE = {"0", "false", "different", "no", "mismatch", "-1"}


@dataclass(frozen=True)
class PairSet:
    first: list[Path]
    second: list[Path]
    same: np.ndarray  # (P,) bool
    folds: np.ndarray  # (P,) int fold id
    source: str  # how the pairs and folds were made

    def __len__(self) -> int:
        return len(self.same)

    def check_files(self) -> None:
        missing = sorted({str(p) for p in self.first + self.second if not p.is_file()})
        if missing:
            raise DataFileError(f"{len(missing)} pair images not found, e.g. {missing[:3]} ({self.source})")


# ---------------------------------------------------------------------------------------------------
# Pair sources


def lfw_pairs(pairs_file: str | os.PathLike, data_root: str | os.PathLike) -> PairSet:
    """LFW view 2: `pairs.txt` (10 sets of 300 same + 300 different pairs) under `data_root`/name/name_NNNN.jpg."""
    from tfface.data.identity_folders import read_lfw_pairs

    pairs = read_lfw_pairs(pairs_file)
    root = Path(data_root)
    first, second, same, folds = [], [], [], []
    for p in pairs:
        first.append(root / p.name1 / f"{p.name1}_{p.index1:04d}.jpg")
        second.append(root / p.name2 / f"{p.name2}_{p.index2:04d}.jpg")
        same.append(p.same)
        folds.append(p.fold)
    return PairSet(first, second, np.array(same, bool), np.array(folds, int),
                   f"LFW pairs file {pairs_file}: its own 10 folds")


def csv_pairs(csv_file: str | os.PathLike, data_root: str | os.PathLike, num_folds: int = 10,
              seed: int = 0) -> PairSet:
    """A CSV of img1, img2, same (1/0, true/false, same/different; a header row is optional)."""
    path, root = Path(csv_file), Path(data_root)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    first, second, same = [], [], []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 3:
                raise DataFileError(f"{path}:{i}: expected img1, img2, same; found {row}")
            flag = row[2].strip().lower()
            if i == 1 and (flag in _HEADER or flag not in _TRUE | _FALSE):
                continue  # a header row
            if flag not in _TRUE | _FALSE:
                raise DataFileError(f"{path}:{i}: 'same' must be 1/0, true/false or same/different; found {row[2]!r}")
            first.append(root / row[0].strip())
            second.append(root / row[1].strip())
            same.append(flag in _TRUE)
    if not same:
        raise DataFileError(f"{path}: no pairs")
    same_arr = np.array(same, bool)
    return PairSet(first, second, same_arr, stratified_folds(same_arr, num_folds, seed),
                   f"CSV {path}: {num_folds} folds stratified by label, seed {seed}")


def folder_pairs(root: str | os.PathLike, num_pairs: int = 6000, num_folds: int = 10, seed: int = 0) -> PairSet:
    """Balanced pairs drawn with `seed` from identity folders (root/<identity>/<images>)."""
    from tfface.data.identity_folders import read_identity_folders

    identities = read_identity_folders(root)
    first, second, same = generate_pairs(identities, num_pairs, seed)
    return PairSet(first, second, same, stratified_folds(same, num_folds, seed),
                   f"identity folders {root}: {len(same)} balanced pairs and {num_folds} folds, seed {seed}")


def generate_pairs(identities: dict[str, list[Path]], num_pairs: int, seed: int = 0
                   ) -> tuple[list[Path], list[Path], np.ndarray]:
    """num_pairs // 2 distinct same-identity pairs and as many different-identity pairs."""
    rng = np.random.default_rng(seed)
    names = sorted(identities)
    multi = [n for n in names if len(identities[n]) >= 2]
    if not multi or len(names) < 2:
        raise DataFileError(f"need at least 2 identities and one with 2+ images; found {len(names)} identities, "
                            f"{len(multi)} with 2+ images")
    possible_same = sum(len(identities[n]) * (len(identities[n]) - 1) // 2 for n in multi)
    half = min(num_pairs // 2, possible_same)
    chosen: dict[tuple[Path, Path], bool] = {}
    while sum(chosen.values()) < half:
        imgs = identities[multi[rng.integers(len(multi))]]
        i, j = sorted(rng.choice(len(imgs), 2, replace=False))
        chosen[(imgs[i], imgs[j])] = True
    while len(chosen) < 2 * half:
        a, b = rng.choice(len(names), 2, replace=False)
        ia, ib = identities[names[a]], identities[names[b]]
        chosen.setdefault((ia[rng.integers(len(ia))], ib[rng.integers(len(ib))]), False)
    pairs = list(chosen.items())
    return [p[0] for p, _ in pairs], [p[1] for p, _ in pairs], np.array([s for _, s in pairs], bool)


def stratified_folds(same: np.ndarray, num_folds: int, seed: int) -> np.ndarray:
    """Fold ids with same and different pairs spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(same), int)
    for label in (True, False):
        idx = rng.permutation(np.flatnonzero(same == label))
        folds[idx] = np.arange(len(idx)) % num_folds
    return folds


# ---------------------------------------------------------------------------------------------------
# Metrics


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The threshold (score >= t means 'same') with the best accuracy on these pairs, and that accuracy."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order].astype(bool)
    tp = np.cumsum(y)
    tn = (~y).sum() - np.cumsum(~y)
    acc = (tp + tn) / len(y)
    cut = np.flatnonzero(np.append(s[1:] != s[:-1], True))  # only between distinct scores
    k = cut[np.argmax(acc[cut])]
    all_different = (~y).sum() / len(y)
    if all_different > acc[k]:
        return float(s[0] + 1e-6), float(all_different)
    nxt = s[k + 1] if k + 1 < len(s) else s[k] - 1e-6
    return float((s[k] + nxt) / 2), float(acc[k])


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict[str, Any]:
    """Each fold's accuracy at the threshold best on the other folds; mean and std (ddof 0) over folds."""
    scores, same, folds = np.asarray(scores, np.float64), np.asarray(same, bool), np.asarray(folds)
    accs, thresholds = [], []
    for k in np.unique(folds):
        test = folds == k
        t, _ = best_threshold(scores[~test], same[~test])
        accs.append(float(np.mean((scores[test] >= t) == same[test])))
        thresholds.append(t)
    accs_arr = np.array(accs)
    return {"accuracy_mean": float(accs_arr.mean()), "accuracy_std": float(accs_arr.std()),
            "accuracy_std_error": float(accs_arr.std(ddof=1) / np.sqrt(len(accs))) if len(accs) > 1 else float("nan"),
            "fold_accuracy": accs, "fold_threshold": thresholds}


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FAR, TAR, thresholds) for every distinct threshold, 'same' when score >= threshold."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    thresholds = np.unique(scores)[::-1]
    pos, neg = np.sort(scores[same]), np.sort(scores[~same])
    # counts first, then one division: 3 / 3000 == 1e-3 exactly, 1 - 2997 / 3000 is not
    tar = (len(pos) - np.searchsorted(pos, thresholds, side="left")) / max(len(pos), 1)
    far = (len(neg) - np.searchsorted(neg, thresholds, side="left")) / max(len(neg), 1)
    return np.r_[0.0, far], np.r_[0.0, tar], np.r_[np.inf, thresholds]


def tar_at_far(far: np.ndarray, tar: np.ndarray, target: float) -> float:
    """The best TAR with FAR <= target (NaN when there are too few different pairs to measure it)."""
    ok = far <= target
    return float(tar[ok].max()) if ok.any() else float("nan")


def verification_metrics(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict[str, Any]:
    far, tar, _ = roc_curve(scores, same)
    negatives = int((~np.asarray(same, bool)).sum())
    return {"pairs": len(same), "same_pairs": int(np.sum(same)), "different_pairs": negatives,
            **kfold_accuracy(scores, same, folds),
            # FAR 1e-3 needs >= 1000 different pairs to mean anything
            "tar_at_far": {f"{f:g}": tar_at_far(far, tar, f) if negatives * f >= 1 else float("nan") for f in FARS},
            "auc": float(np.trapezoid(tar, far))}


def threshold_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> float:
    """The lowest threshold whose false-accept rate on these pairs is <= far ('same' when score >= t)."""
    neg = np.sort(np.asarray(scores, np.float64)[~np.asarray(same, bool)])[::-1]
    if not len(neg):
        raise DataFileError("no different-identity pairs to choose a threshold at a false-accept rate")
    allowed = int(np.floor(far * len(neg)))  # at most this many different pairs may pass
    return float(neg[allowed] + 1e-6) if allowed < len(neg) else float(neg[-1])


def embedding_pairs(identities: np.ndarray, num_pairs: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray,
                                                                                             np.ndarray]:
    """Balanced same/different pairs of rows, drawn from one identity label per row: (rows a, rows b, same)."""
    people: dict[str, list[Path]] = {}
    for i, person in enumerate(np.asarray(identities).tolist()):
        people.setdefault(str(person), []).append(Path(str(i)))
    first, second, same = generate_pairs(people, num_pairs, seed)
    return np.array([int(str(p)) for p in first]), np.array([int(str(p)) for p in second]), same


def embedding_verification(embeddings: np.ndarray, identities: np.ndarray, num_pairs: int = 3000, seed: int = 0,
                           far: float = 1e-2) -> dict[str, Any]:
    """Held-out embeddings (N, D) + identities (N,) -> LFW-style metrics on balanced pairs, plus the
    threshold at `far` on all pairs (what a shipped model uses) and the accuracy of a threshold chosen on
    one half of the pairs and scored on the other."""
    a, b, same = embedding_pairs(identities, num_pairs, seed)
    e = np.asarray(embeddings, np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    scores = np.sum(e[a] * e[b], axis=1)
    halves = stratified_folds(same, 2, seed)
    t_half, _ = best_threshold(scores[halves == 0], same[halves == 0])
    result = verification_metrics(scores, same, stratified_folds(same, 10, seed))
    threshold = threshold_at_far(scores, same, far)
    return {**{k: v for k, v in result.items() if k not in ("fold_accuracy", "fold_threshold")},
            "half_split_accuracy": float(np.mean((scores[halves == 1] >= t_half) == same[halves == 1])),
            "far": far, "threshold_at_far": threshold,
            "tar_at_threshold": float(np.mean(scores[same] >= threshold)),
            "far_at_threshold": float(np.mean(scores[~same] >= threshold))}


# ---------------------------------------------------------------------------------------------------
# Running a model


def embed_images(runner: Runner, paths: list[Path], detector: str = "auto", refine: int = 1,
                 progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One L2-normalised embedding per image (the detected face nearest the image centre; the whole
    image, squared, when no face is found) and whether a face was detected."""
    from tfface.evaluation.crops import DetectorCrops
    from tfface.io.images import read_image

    detect = DetectorCrops(runner, detector, refine=refine)
    embeddings, found = [], []
    try:
        for path in tqdm(paths, desc="embeddings", disable=not progress):
            pred = detect.face_or_centre(read_image(path))
            embeddings.append(pred.outputs["embedding"])
            found.append(pred.box is not None)
    finally:
        detect.close()
    return np.asarray(embeddings, np.float64).reshape(len(paths), -1), np.array(found, bool)  # runners give unit length


def evaluate_verification(runner: Runner | str, pairs: PairSet, detector: str = "auto", refine: int = 1,
                          progress: bool = True) -> dict[str, Any]:
    runner = as_runner(runner)
    require_output(runner, "embedding")
    pairs.check_files()
    images = sorted(set(pairs.first) | set(pairs.second))
    index = {p: i for i, p in enumerate(images)}
    emb, found = embed_images(runner, images, detector, refine, progress)
    a = emb[[index[p] for p in pairs.first]]
    b = emb[[index[p] for p in pairs.second]]
    scores = np.sum(a * b, axis=1)
    metrics = {"source": pairs.source, "images": len(images), "faces_not_detected": int((~found).sum()),
               "score": "cosine similarity of L2-normalised embeddings; 'same' when >= threshold",
               **verification_metrics(scores, pairs.same, pairs.folds)}
    rows = [{"img1": str(p), "img2": str(q), "same": bool(s), "fold": int(f), "score": float(c)}
            for p, q, s, f, c in zip(pairs.first, pairs.second, pairs.same, pairs.folds, scores)]
    return {"metrics": metrics, "rows": rows, "scores": scores, "same": pairs.same}


def write_verification_report(result: dict[str, Any], out_dir: str | os.PathLike, model: str) -> Path:
    from tfface.evaluation.outputs import markdown_table, write_csv, write_json
    from tfface.evaluation.plots import plot_roc

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = {"model": model, **result["metrics"]}
    write_json(m, out / "metrics.json")
    write_csv(result["rows"], out / "pairs.csv")
    far, tar, _ = roc_curve(result["scores"], result["same"])
    plot_roc(far, tar, out / "roc.png", f"verification ROC, {model}")
    table = markdown_table(["model", "pairs", "accuracy (%)", "± std", *(f"TAR@FAR={f:g}" for f in FARS), "AUC"],
                           [[model, m["pairs"], 100 * m["accuracy_mean"], 100 * m["accuracy_std"],
                             *m["tar_at_far"].values(), m["auc"]]], digits=4)
    (out / "report.md").write_text(f"# Verification\n\nPairs: {m['source']}.\n\n{table}\n\n"
                                   f"Faces not detected (whole image used): {m['faces_not_detected']} of "
                                   f"{m['images']} images.\n\n![ROC](roc.png)\n")
    return out
