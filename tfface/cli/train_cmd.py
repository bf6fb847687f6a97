"""`tfface train --config configs/<name>.yaml`: train the joint FaceModel with model.fit."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfface.cli.args import bounded


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the joint face model (3DMM, attributes, identity) from a YAML config")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML config overriding the defaults (see configs/); none = all defaults")
    p.add_argument("-o", "--output", type=Path, default=None, help="output folder (overrides trainer.output_dir)")
    p.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"), default=None,
                   help="overrides trainer.precision")
    p.add_argument("--jit-compile", action="store_true", default=None, help="XLA (overrides trainer.jit_compile)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete an earlier run's weights in the output folder and start over (a rerun otherwise "
                        "resumes only the same config)")
    p.add_argument("--workers", default=None, metavar="HOST:PORT,...",
                   help="multi-worker training: every worker's address, the same list on each (sets TF_CONFIG)")
    p.add_argument("--worker-index", type=bounded(int, 0), default=0, help="this worker's position in --workers (0: chief)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import os

    from tfface.data.manifest import check_training_resume
    from tfface.training.cluster import worker_tf_config
    from tfface.training.config import config_to_dict, load_config
    from tfface.training.trainer import train

    trainer = {k: v for k, v in (("output_dir", str(args.output) if args.output else None),
                                 ("precision", args.precision), ("jit_compile", args.jit_compile)) if v is not None}
    config = load_config(args.config, {"trainer": trainer} if trainer else None)
    check_training_resume(config.trainer.output_dir, config_to_dict(config), args.overwrite)
    if args.workers:
        os.environ["TF_CONFIG"] = worker_tf_config(args.workers.split(","), args.worker_index)
    train(config)
    if args.worker_index == 0:  # the chief writes the model
        print(f"wrote {Path(config.trainer.output_dir) / 'model.keras'}")
    return 0
