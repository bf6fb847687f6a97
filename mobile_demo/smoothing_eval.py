"""Jitter and lag of the edge pipeline, with and without smoothing, on a synthetic video whose truth is
known: a photo moved by a smooth camera path (shift, scale, small rotation via cv2.warpAffine) plus
Gaussian sensor noise on every frame. The ground-truth landmarks of frame t are the camera warp A_t
applied to the landmarks found on the clean photo.

Measures, in % of the face size (mean of the landmarks' width and height):
  jitter: mean |(p_t - p_{t-1}) - (g_t - g_{t-1})| per landmark (frame-to-frame motion the camera did
          not make); on the still part (first frames, no camera motion) and on the moving part;
  error:  mean |p_t - g_t| (noise + lag: a smoother that lags raises it while the face moves).

    python -m mobile_demo.smoothing_eval [PHOTO ...] [--out DIR] [--video clip.mp4] [--plot plot.png]
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from tfface.inference.smoothing import FaceTracker, OneEuroConfig, face_size

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "trump_hillary.jpg"


@dataclass(frozen=True)
class CameraMotion:
    frames: int = 60
    still_frames: int = 15  # no camera motion: pure jitter
    fps: float = 30.0
    period_s: float = 2.0
    shift: float = 0.3  # peak shift, face sizes
    zoom: float = 0.08  # peak relative scale change
    rotation_deg: float = 5.0  # peak in-plane rotation
    noise: float = 6.0  # Gaussian pixel noise sigma (0-255 scale), fresh every frame
    seed: int = 0

    def matrices(self, centre: tuple[float, float], unit: float) -> np.ndarray:
        """(frames, 2, 3) warps from the photo to each frame; velocity is zero where motion starts."""
        out = []
        for i in range(self.frames):
            tau = max(0, i - self.still_frames + 1) / self.fps
            w = 2 * math.pi * tau / self.period_s
            ease = (1 - math.cos(w)) / 2
            m = cv2.getRotationMatrix2D(centre, self.rotation_deg * math.sin(w / 2) ** 2, 1 + self.zoom * ease)
            m[:, 2] += (self.shift * unit * ease, 0.5 * self.shift * unit * math.sin(w) ** 2)
            out.append(m)
        return np.stack(out)


def warp_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts[:, :2] @ m[:, :2].T + m[:, 2]


def synthetic_video(image: np.ndarray, matrices: np.ndarray, noise: float, seed: int = 0):
    """Yields RGB frames: the photo warped by each matrix (edges reflected) plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    for m in matrices:
        frame = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        yield np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)


def _match(landmarks: list[np.ndarray], truth: np.ndarray) -> np.ndarray | None:
    """The detected face whose centre is nearest the true face's centre (within half a face)."""
    if not landmarks:
        return None
    d = [np.linalg.norm(lm[:, :2].mean(0) - truth.mean(0)) for lm in landmarks]
    j = int(np.argmin(d))
    return landmarks[j] if d[j] < 0.5 * face_size(truth) else None


def metrics(tracks: list[list[np.ndarray | None]], truth: list[np.ndarray], still: int) -> dict[str, float]:
    """tracks[f][t]: face f's landmarks at frame t (None = missed); truth[f]: (T, 68, 2)."""
    jit = {"still": [], "moving": []}
    err = {"still": [], "moving": []}
    for track, gt in zip(tracks, truth):
        unit = face_size(gt[0])
        for t, p in enumerate(track):
            part = "still" if t < still else "moving"
            if p is None:
                continue
            err[part].append(np.linalg.norm(p[:, :2] - gt[t], axis=-1).mean() / unit)
            if t and track[t - 1] is not None:
                d = (p[:, :2] - track[t - 1][:, :2]) - (gt[t] - gt[t - 1])
                jit[part].append(np.linalg.norm(d, axis=-1).mean() / unit)
    missed = sum(p is None for track in tracks for p in track)
    out = {f"jitter_{k}_pct": 100 * float(np.mean(v)) for k, v in jit.items()}
    out.update({f"error_{k}_pct": 100 * float(np.mean(v)) for k, v in err.items()})
    out["missed_faces"] = missed
    return out


def run_clip(pipeline, image: np.ndarray, motion: CameraMotion, seed: int = 0):
    """Ground truth (one (T, 68, 2) array per face found on the clean photo) and the unsmoothed
    pipeline's landmarks on every frame of the synthetic clip (None when no face is found)."""
    clean = pipeline(image)
    if not clean:
        return None
    unit = float(np.mean([face_size(f.landmarks) for f in clean]))
    h, w = image.shape[:2]
    mats = motion.matrices((w / 2, h / 2), unit)
    gts = [np.stack([warp_points(m, f.landmarks) for m in mats]) for f in clean]
    raw = [[f.landmarks for f in pipeline(frame)] for frame in synthetic_video(image, mats, motion.noise, seed)]
    return gts, raw


def smooth_tracks(raw, gts, config: OneEuroConfig | None, fps: float) -> list[list[np.ndarray | None]]:
    """tracks[f][t]: the (smoothed) landmarks matched to true face f at frame t."""
    tracker = FaceTracker(config) if config is not None else None
    per_frame = []
    for t, faces in enumerate(raw):
        if tracker is not None:
            faces = [s["landmarks"] for s in tracker(t / fps, [{"landmarks": lm} for lm in faces])]
        per_frame.append(faces)
    return [[_match(faces, gt[t]) for t, faces in enumerate(per_frame)] for gt in gts]


def evaluate(pipeline, images: list[np.ndarray], motion: CameraMotion,
             configs: dict[str, OneEuroConfig | None]) -> dict[str, dict[str, float]]:
    """Runs `pipeline` (an unsmoothed EdgePipeline) once per frame, then each smoothing config over the
    same raw results; metrics pooled over all photos and faces."""
    tracks = {name: [] for name in configs}
    truth = []
    for k, image in enumerate(images):
        clip = run_clip(pipeline, image, motion, motion.seed + k)
        if clip is None:
            continue
        gts, raw = clip
        for name, config in configs.items():
            tracks[name] += smooth_tracks(raw, gts, config, motion.fps)
        truth += gts
    return {name: metrics(tracks[name], truth, motion.still_frames) for name in configs}


def plot(path: Path, pipeline, image: np.ndarray, motion: CameraMotion, config: OneEuroConfig) -> None:
    """Nose-tip x and y over the clip minus the truth, raw and smoothed, for the first face (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gts, raw = run_clip(pipeline, image, motion, motion.seed)
    unit = face_size(gts[0][0]) / 100  # percent of the face size
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    for name, cfg, style in (("raw", None, "-"), ("One-Euro", config, "-")):
        track = smooth_tracks(raw, gts, cfg, motion.fps)[0]
        for c, ax in enumerate(axes):
            ax.plot([np.nan if p is None else (p[30, c] - gts[0][t, 30, c]) / unit for t, p in enumerate(track)],
                    style, label=name)
    for c, ax in enumerate(axes):
        ax.axvspan(0, motion.still_frames - 1, color="0.9", label="camera still")
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xlabel="frame", title=f"nose tip {'xy'[c]} error (% face size)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def to_markdown(results: dict[str, dict[str, float]]) -> str:
    rows = ["| smoothing | jitter still % | jitter moving % | error still % | error moving % |",
            "|---|---|---|---|---|"]
    for name, m in results.items():
        rows.append(f"| {name} | {m['jitter_still_pct']:.3f} | {m['jitter_moving_pct']:.3f} | "
                    f"{m['error_still_pct']:.3f} | {m['error_moving_pct']:.3f} |")
    return "\n".join(rows)


def write_video(path: Path, image: np.ndarray, motion: CameraMotion, unit: float) -> None:
    """The synthetic clip itself (e.g. to feed the edge app)."""
    h, w = image.shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), motion.fps, (w, h))
    for frame in synthetic_video(image, motion.matrices((w / 2, h / 2), unit), motion.noise, motion.seed):
        out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out.release()


DEFAULT_CONFIGS = {"none": None, "one-euro (default)": OneEuroConfig()}


def main(argv: list[str] | None = None) -> int:
    from mobile_demo.edge.io import read_rgb
    from mobile_demo.edge.pipeline import EdgePipeline

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="*", type=Path, default=[SAMPLE])
    p.add_argument("--out", type=Path, default=None, help="write smoothing.json and smoothing.md here")
    p.add_argument("--video", type=Path, default=None, help="also write the first photo's synthetic clip (.mp4)")
    p.add_argument("--plot", type=Path, default=None, help="also plot the first face's nose-tip error (.png)")
    p.add_argument("--frames", type=int, default=CameraMotion.frames)
    p.add_argument("--noise", type=float, default=CameraMotion.noise)
    p.add_argument("--min-cutoff", type=float, nargs="+", default=[OneEuroConfig.min_cutoff])
    p.add_argument("--beta", type=float, nargs="+", default=[OneEuroConfig.beta])
    args = p.parse_args(argv)
    motion = CameraMotion(frames=args.frames, noise=args.noise)
    configs: dict[str, OneEuroConfig | None] = {"none": None}
    for fc in args.min_cutoff:
        for beta in args.beta:
            configs[f"one-euro min_cutoff={fc:g} beta={beta:g}"] = OneEuroConfig(min_cutoff=fc, beta=beta)
    images = [read_rgb(path) for path in args.photos]
    pipeline = EdgePipeline()
    results = evaluate(pipeline, images, motion, configs)
    table = to_markdown(results)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "smoothing.json").write_text(json.dumps(
            {"motion": asdict(motion), "photos": [str(p) for p in args.photos], "results": results}, indent=1))
        (args.out / "smoothing.md").write_text(table + "\n")
    if args.plot:
        plot(args.plot, pipeline, images[0], motion, OneEuroConfig(args.min_cutoff[0], args.beta[0]))
    if args.video:
        faces = pipeline(images[0])
        write_video(args.video, images[0], motion, float(np.mean([face_size(f.landmarks) for f in faces])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
