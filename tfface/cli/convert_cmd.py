"""`tfface convert-3ddfa CHECKPOINT -o OUT`: a 3DDFA_V2 .pth -> a tfface preset folder (no torch needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfface.cli.args import bounded


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert-3ddfa", help="convert a 3DDFA_V2 MobileNetV1 checkpoint into a preset folder")
    p.add_argument("checkpoint", type=Path, help="the .pth file (legacy or zip torch.save format)")
    p.add_argument("-o", "--output", type=Path, required=True, help="preset folder to write")
    p.add_argument("--param-stats", type=Path, default=None,
                   help="3DDFA_V2 param_mean_std_62d_120x120.pkl (default: the copy shipped in tfface)")
    p.add_argument("--image-size", type=bounded(int, 32, 1024), default=120)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tfface.convert.convert_3ddfa import convert_3ddfa
    from tfface.models.presets import DEFAULT_PRESET, preset_dir
    from tfface.morphable.params import ParamStats

    stats = (ParamStats.from_pickle(args.param_stats) if args.param_stats
             else ParamStats.from_npz(preset_dir(DEFAULT_PRESET) / "param_stats.npz"))
    config = convert_3ddfa(args.checkpoint, args.output, stats, args.image_size)
    err = config["source"]["max_abs_error_vs_numpy"]
    print(f"wrote {args.output} (Keras vs NumPy reference of the checkpoint: max |diff| {err:.2e})")
    return 0
