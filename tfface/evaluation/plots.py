"""Figures people look at: CED curves, ROC curves, per-attribute bars (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from tfface.evaluation.landmarks import cumulative_error


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_ced(errors: Mapping[str, tuple[np.ndarray, int]], path: str | os.PathLike, title: str,
             max_error: float = 10.0) -> None:
    """Cumulative error distribution: {label: (errors in %, number of faces incl. missed)} -> PNG."""
    plt = _pyplot()
    x = np.linspace(0.0, max_error, 401)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for label, (err, total) in errors.items():
        ax.plot(x, 100 * cumulative_error(err, x, total), label=label)
    ax.set(xlabel="NME (%)", ylabel="images (%)", title=title, xlim=(0, max_error), ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_roc(far: np.ndarray, tar: np.ndarray, path: str | os.PathLike, title: str,
             marks: Sequence[float] = (1e-3, 1e-2)) -> None:
    """ROC (TAR against FAR, log FAR axis) with the TAR@FAR operating points marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ok = far > 0
    ax.semilogx(far[ok], tar[ok], label="ROC")
    for m in marks:
        ax.axvline(m, color="grey", ls=":", lw=1)
    ax.set(xlabel="false accept rate", ylabel="true accept rate", title=title, ylim=(0, 1.01),
           xlim=(max(1e-4, far[ok].min() if ok.any() else 1e-4), 1))
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_attribute_bars(names: Sequence[str], accuracy: np.ndarray, baseline: np.ndarray,
                        path: str | os.PathLike, title: str) -> None:
    """Per-attribute accuracy beside the majority-class baseline, horizontal bars."""
    plt = _pyplot()
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(names) + 1.5), dpi=120)
    ax.barh(y - 0.2, 100 * np.asarray(accuracy), height=0.4, label="model")
    ax.barh(y + 0.2, 100 * np.asarray(baseline), height=0.4, label="majority class", color="lightgrey")
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="accuracy (%)", title=title, xlim=(0, 100))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
