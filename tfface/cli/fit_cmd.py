"""`tfface fit PATH... -o OUTDIR`: surrogate 3DMM labels (62 params + 68 landmarks) for unlabelled photos.

Layouts: `folder` (any images, one label per photo), `identity` (root/<person>/<image>: per-person
shared-identity fits with --per-identity), `celeba` (an image folder + --identities file). Output:
TFRecord shards of the data layer (tfface.data.records), `labels.jsonl` (one line per kept face) and
`fit_summary.json` (residual statistics; flagged and failed photos with reasons). The work is
`tfface.fitting.labelling`; this module parses and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfface.cli.args import bounded


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="label photos with surrogate 3DMM params fitted to landmarks (TFRecords)")
    p.add_argument("paths", nargs="+", type=Path, help="image files/folders, an identity root, or a CelebA image folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for shards, labels.jsonl, fit_summary.json")
    p.add_argument("--layout", choices=("folder", "identity", "celeba"), default="folder",
                   help="folder: any images; identity: root/<person>/<image>; celeba: images + --identities")
    p.add_argument("--identities", type=Path, help="CelebA identity file (e.g. identity_CelebA.txt) for --layout celeba")
    p.add_argument("--per-identity", action="store_true", help="fit one shared identity per person")
    p.add_argument("--landmarks", choices=("network", "mediapipe"), default="network",
                   help="landmark source: the default model's 68 points or MediaPipe's 468 mapped to 68")
    p.add_argument("--max-nme", type=bounded(float, above=0), default=5.0,
                   help="flag fits whose residual NME %% exceeds this (> 0; default 5)")
    p.add_argument("--limit", type=bounded(int, 0), default=0, help="label at most this many photos (0: all)")
    p.add_argument("--shard-size", type=bounded(int, 1), default=1000, help="input records per TFRecord shard (>= 1)")
    p.add_argument("--source-name", default="fitted", help="dataset name stored in the records")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the shards in OUT and start over (a rerun otherwise resumes only the same run)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tfface.fitting.labelling import label_items, label_photos

    items = label_items(args.paths, args.layout, args.identities, args.limit)
    run_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                if k not in ("run", "output", "overwrite", "command")}
    run_args["paths"] = [str(Path(p).resolve()) for p in args.paths]
    summary = label_photos(items, args.output, args.landmarks, args.per_identity, args.max_nme, args.shard_size,
                           args.source_name, run_args, args.overwrite,
                           on_failed=lambda line: tqdm.write(f"tfface: skipped: {line}", file=sys.stderr))
    nme = summary["fit_nme_percent"]
    fits = f"fit NME median {nme['median']:.2f}%, p95 {nme['p95']:.2f}%" if nme else "no fits"
    print(f"tfface fit: {summary['kept']} kept, {summary['flagged']} flagged (NME > {args.max_nme:g}%), "
          f"{summary['failed']} failed; {fits} -> {args.output}", file=sys.stderr)
    return 0 if summary["kept"] else 1
