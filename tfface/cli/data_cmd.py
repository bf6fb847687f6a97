"""`tfface data convert FORMAT INPUT -o OUT`: a face dataset -> sharded TFRecords and a JSON summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tfface.cli.args import bounded
from tfface.detection import DETECTORS


def add_parser(sub: argparse._SubParsersAction) -> None:
    from tfface.data.convert import CROP_SIZE_RANGE, FORMATS, MARGIN_RANGE, TEACHERS

    data = sub.add_parser("data", help="dataset tools (convert to TFRecord shards)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("convert", help="write face crops + labels as resumable TFRecord shards")
    p.add_argument("format", choices=FORMATS)
    p.add_argument("input", type=Path, help="the dataset folder (for 3ddfa_list: the crops' image root)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for the shards and summary.json")
    p.add_argument("--split", choices=("train", "val", "test"), default=None,
                   help="CelebA: keep this partition only; other formats: the split written into records")
    p.add_argument("--shard-size", type=bounded(int, 1), default=1000, help="input records per shard (>= 1)")
    p.add_argument("--crop-size", type=bounded(int, *CROP_SIZE_RANGE), default=None,
                   help=f"stored crop side in pixels, {CROP_SIZE_RANGE[0]}-{CROP_SIZE_RANGE[1]} (default 160)")
    p.add_argument("--margin", type=bounded(float, *MARGIN_RANGE), default=None,
                   help=f"stored crop side / 3DDFA crop side, {MARGIN_RANGE[0]:g}-{MARGIN_RANGE[1]:g}: at least 1 "
                        "so the stored crop holds the whole 3DDFA crop (default 4/3)")
    p.add_argument("--limit", type=bounded(int, 1), default=None, help="convert the first N (>= 1) records only")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="BlazeFace model for photos without a face box (celeba, identity_folders)")
    p.add_argument("--image-dir", default="img_celeba", help="celeba: img_celeba or img_align_celeba")
    p.add_argument("--list-file", default=None, help="3ddfa_list: file of crop names")
    p.add_argument("--param-file", default=None, help="3ddfa_list: (N, 62) params (.pkl / .npy / text)")
    p.add_argument("--whitening", default=None, help="3ddfa_list: param_whitening.pkl when params are normalised")
    p.add_argument("--convention", choices=("v1", "v2"), default="v2", help="3ddfa_list: 3DDFA (v1) or 3DDFA_V2 frame")
    p.add_argument("--teacher", choices=TEACHERS, default=None,
                   help="also label every face with this recognizer's 128-d embedding, for distillation "
                        "(dlib: pip install -e .[teacher]; labelling time only)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--overwrite", action="store_true",
                   help="delete this format's shards in OUT and start over (a rerun otherwise resumes only "
                        "when inputs and arguments match)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tfface.data.convert import convert_dataset

    reader_args = {"split": args.split}
    if args.format == "celeba":
        reader_args["image_dir"] = args.image_dir
    if args.format == "3ddfa_list":
        reader_args.update(list_file=args.list_file, param_file=args.param_file, whitening=args.whitening,
                           convention=args.convention)
    summary = convert_dataset(args.format, args.input, args.output, args.shard_size, args.crop_size, args.margin,
                              args.limit, args.detector, not args.no_progress, args.overwrite, args.teacher,
                              on_problem=lambda line: tqdm.write(f"tfface: skipped: {line}", file=sys.stderr),
                              **reader_args)
    short = {k: summary[k] for k in ("written", "rejected", "rejected_by_reason", "per_task", "per_split",
                                     "resumed_shards", "reader_problems")}
    print(json.dumps(short, indent=1))
    print(f"wrote {len(summary['shards'])} shards and {Path(args.output) / 'summary.json'}")
    return 0
