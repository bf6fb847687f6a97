"""AFLW2000-3D results -> OUT/metrics.json, report.md, ced.png, per_image.csv."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tfface.evaluation.landmarks import YAW_BINS
from tfface.evaluation.outputs import markdown_table, write_csv, write_json
from tfface.evaluation.plots import plot_ced

# Published 2D NME (%) on all 2,000 images, ground-truth crops; empty where a paper gives no bins.
# Strings, so they print with the precision the papers give.
PUBLISHED = [
    ("3DDFA (Zhu et al. 2016)", ["3.78", "4.54", "7.93"], "5.42", "2.21"),
    ("MARN", ["", "", ""], "3.757", ""),
    ("3DDFA_V2 MobileNetV1 x1.0", ["", "", ""], "3.59", ""),
]


def nme_table(metrics: dict[str, Any], model: str) -> str:
    """The per-bin 2D NME table: published rows, then this run's."""
    rows = [[f"{name}, published", "all 2,000, GT crops", *bins, mean, std] for name, bins, mean, std in PUBLISHED]
    nme = metrics["nme_2d"]
    rows.append([f"**{model}**", f"{metrics['images']} images, {metrics['crop']} crops",
                 *(nme[b] for b in YAW_BINS), nme["mean"], nme["std"]])
    return markdown_table(["model", "subset, crops", *YAW_BINS, "mean", "std"], rows)


def report_markdown(metrics: dict[str, Any], model: str) -> str:
    per_bin = ", ".join(f"{b}: {n}" for b, n in metrics["images_per_bin"].items())
    missed = metrics["missed"]
    n3, pose = metrics["nme_3d"], metrics["pose_mae"]
    lines = [
        "# AFLW2000-3D evaluation", "",
        f"Model `{model}`; {metrics['images']} images from `{metrics['data_dir']}` ({per_bin}).",
        f"Crops: {metrics['crop_rule']}.", "",
        "## 68-point 2D NME (%) by absolute yaw", "",
        nme_table(metrics, model), "",
        f"NME: {metrics['nme_definition']}. Mean = mean of the three bins, std = their sample std "
        f"(as in the MARN table); the NME over all evaluated images is {metrics['nme_2d']['all_images']:.2f}.",
        "**Caveat**: the published rows use all 2,000 AFLW2000-3D images; a subset is comparable only up "
        "to sampling noise.", "",
        "## 3D NME (%) and head pose", "",
        markdown_table(["3D NME", *YAW_BINS, "mean"], [["", *(n3[b] for b in YAW_BINS), n3["mean"]]]), "",
        markdown_table(["pose MAE (deg) vs Pose_Para", "yaw", "pitch", "roll", "mean"],
                       [["mean abs error", pose["yaw"], pose["pitch"], pose["roll"], pose["mean"]],
                        ["median abs error", *metrics["pose_median_abs_err"].values(), None]]), "",
    ]
    skipped = metrics.get("skipped", {}).get("total", 0)
    if skipped:
        why = "; ".join(f"{reason} ({n})" for reason, n in metrics["skipped"]["by_reason"].items())
        lines += [f"Skipped images: {skipped} (bad label or unreadable photo; in no figure, listed in "
                  f"metrics.json): {why}.", ""]
    if metrics["crop"] == "detector":
        lines += [f"Missed faces: {missed['total']} ({', '.join(f'{b}: {missed[b]}' for b in YAW_BINS)}), "
                  f"{missed['counted_as']}.", ""]
    lines += ["![CED](ced.png)", ""]
    return "\n".join(lines)


def write_aflw2000_report(result: dict[str, Any], out_dir: str | os.PathLike, model: str) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics, rows = {"model": model, **result["metrics"]}, result["rows"]
    write_json(metrics, out / "metrics.json")
    write_csv(rows, out / "per_image.csv")
    (out / "report.md").write_text(report_markdown(metrics, model))
    curves = {f"|yaw| {b}": (np.array([r["nme_2d"] for r in rows if r["found"] and r["yaw_bin"] == b]),
                             sum(r["yaw_bin"] == b for r in rows)) for b in YAW_BINS}
    curves["all"] = (np.array([r["nme_2d"] for r in rows if r["found"]]), len(rows))
    plot_ced(curves, out / "ced.png", f"AFLW2000-3D CED, {model}, {metrics['crop']} crops")
    return out
