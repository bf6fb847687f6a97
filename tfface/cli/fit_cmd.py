"""`tfface fit PATH... -o OUTDIR`: surrogate 3DMM labels (62 params + 68 landmarks) for unlabelled photos.

Layouts: `folder` (any images, one label per photo), `identity` (root/<person>/<image>: per-person
shared-identity fits with --per-identity), `celeba` (an image folder + --identities file). Output:
TFRecord shards of the data layer (tfface.data.records), `labels.jsonl` (one line per kept face) and
`fit_summary.json` (residual statistics; flagged and failed photos with reasons).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tfface.errors import DataFileError


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
    p.add_argument("--max-nme", type=float, default=5.0, help="flag fits whose residual NME %% exceeds this (default 5)")
    p.add_argument("--limit", type=int, default=0, help="label at most this many photos (0: all)")
    p.add_argument("--shard-size", type=int, default=1000, help="input records per TFRecord shard")
    p.add_argument("--source-name", default="fitted", help="dataset name stored in the records")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the shards in OUT and start over (a rerun otherwise resumes only the same run)")
    p.set_defaults(run=run)


def _items(args: argparse.Namespace) -> list[tuple[Path, str | None]]:
    from tfface.io.images import list_images

    if args.layout == "identity":
        from tfface.data.identity_folders import identity_samples, read_identity_folders

        items = [(p, person) for root in args.paths for p, person in identity_samples(read_identity_folders(root))]
    elif args.layout == "celeba":
        from tfface.data.celeba import read_identities

        if args.identities is None:
            raise DataFileError("--layout celeba needs --identities (identity_CelebA.txt or a subset of it)")
        ids = read_identities(args.identities)
        items = [(p, str(ids[p.name])) for p in list_images(args.paths) if p.name in ids]
    else:
        items = [(p, None) for p in list_images(args.paths)]
    if not items:
        raise DataFileError(f"no images found in {', '.join(map(str, args.paths))} for layout '{args.layout}'")
    return items[:args.limit] if args.limit > 0 else items


def run(args: argparse.Namespace) -> int:
    from tfface.data.manifest import build_manifest, check_resume
    from tfface.data.records import FaceRecord, write_shards
    from tfface.fitting.dataset import LabelRun, find_landmarks, fit_faces
    from tfface.io.outputs import write_json_atomic
    from tfface.landmarks.sources import landmark_source
    from tfface.quiet import native_stderr_silenced

    if args.max_nme <= 0:
        raise DataFileError(f"--max-nme must be > 0. Received: {args.max_nme}")
    items = _items(args)
    run_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                if k not in ("run", "output", "overwrite", "command")}
    run_args["paths"] = [str(Path(p).resolve()) for p in args.paths]
    check_resume(args.output, "fitted", build_manifest("fitted", {}, run_args, []), args.overwrite,
                 keys=("tfface_version", "run"))  # before minutes of fitting
    with native_stderr_silenced():
        source = landmark_source(args.landmarks)
    labelled = LabelRun()
    try:
        found = find_landmarks(items, source, labelled)
    finally:
        source.close()
    fit_faces(found, labelled, args.per_identity, args.max_nme / 100)
    people = sorted({f.person for f in labelled.kept if f.person is not None})
    classes = {p: i for i, p in enumerate(people)}
    records = [FaceRecord(image=f.path, source=args.source_name, key=str(f.path), roi=f.roi, landmarks=f.landmarks,
                          params=f.params, pose=f.pose, identity=classes.get(f.person, -1))
               for f in labelled.kept]
    mode = "per-identity" if args.per_identity else "single-image"
    summary = labelled.summary(args.max_nme / 100, mode, args.landmarks)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "labels.jsonl", "w") as fh:
        for f in labelled.kept:
            fh.write(json.dumps({"image": str(f.path), "person": f.person, "identity": classes.get(f.person, -1),
                                 "roi": [round(float(v), 2) for v in f.roi],
                                 "landmarks": [[round(float(v), 2) for v in p] for p in f.landmarks],
                                 "params": [float(f"{v:.6g}") for v in f.params],
                                 "pose": [round(float(v), 3) for v in f.pose], "nme": round(f.nme, 5)}) + "\n")
    shards = write_shards(records, args.output, prefix="fitted", shard_size=args.shard_size, total=len(records),
                          run=run_args,
                          extra_summary={"fit": {k: v for k, v in summary.items() if k not in ("flagged_faces", "failed_images")}})
    summary["written_records"] = shards["written"]
    summary["classes"] = classes
    write_json_atomic(args.output / "fit_summary.json", summary)  # strict JSON: NaN statistics as null
    nme = summary["fit_nme_percent"]
    print(f"tfface fit: {summary['kept']} kept, {summary['flagged']} flagged (NME > {args.max_nme}%), "
          f"{summary['failed']} failed; fit NME median {nme.get('median', float('nan')):.2f}%, "
          f"p95 {nme.get('p95', float('nan')):.2f}% -> {args.output}", file=sys.stderr)
    return 0 if summary["kept"] else 1
