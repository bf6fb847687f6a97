"""`tfface evaluate {aflw2000,attributes,verification,meshes}`: the published protocols, for a Keras
preset, a SavedModel, a .tflite or an .onnx file, with metrics.json, report.md, plots and CSVs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfface.cli.args import bounded
from tfface.models.presets import DEFAULT_PRESET, JOINT_PRESET
from tfface.detection import DETECTORS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model (any runtime) by the published protocols")
    tasks = p.add_subparsers(dest="task", required=True)

    a = tasks.add_parser("aflw2000", help="AFLW2000-3D 68-point NME by yaw bin, CED, head-pose error")
    a.add_argument("--data", type=Path, required=True, help="folder of AFLW2000-3D imageNNNNN.jpg + .mat")
    a.add_argument("--crop", choices=("gt", "detector"), default="gt",
                   help="crops from the ground-truth landmarks (the protocol) or from the detector (default: gt)")
    a.add_argument("--limit", type=bounded(int, 1), default=None,
                   help="only the first N (>= 1) images (sorted by name)")
    _common(a, "aflw2000")
    a.set_defaults(run=run_aflw2000, tensorflow=False)

    t = tasks.add_parser("attributes", help="CelebA per-attribute accuracy beside the majority-class baseline")
    t.add_argument("--data", type=Path, required=True, help="CelebA root (list_attr_celeba.txt, images, partition)")
    t.add_argument("--split", choices=("train", "val", "test", "all"), default="test")
    t.add_argument("--limit", type=bounded(int, 1), default=None, help="only the first N (>= 1) images")
    _common(t, "attributes", JOINT_PRESET)
    t.set_defaults(run=run_attributes, tensorflow=False)

    v = tasks.add_parser("verification", help="LFW-protocol verification accuracy, ROC, TAR@FAR")
    v.add_argument("--data", type=Path, required=True, help="image root the pairs refer to, or identity folders")
    v.add_argument("--pairs", type=Path, default=None,
                   help="LFW pairs.txt or a CSV of img1,img2,same; omitted: pairs drawn from identity folders")
    v.add_argument("--num-pairs", type=bounded(int, 2), default=6000, help="pairs to draw from identity folders")
    v.add_argument("--seed", type=int, default=0)
    _common(v, "verification", JOINT_PRESET)
    v.set_defaults(run=run_verification, tensorflow=False)

    m = tasks.add_parser("meshes", help="3D RMSE of predicted meshes against scans after ICP (MICC/BU-3DFE)")
    m.add_argument("--pred", type=Path, required=True, help="folder of predicted meshes (.obj/.ply/.wrl)")
    m.add_argument("--gt", type=Path, required=True, help="folder of ground-truth scans, same file names")
    m.add_argument("--radius", type=bounded(float, above=0), default=95.0, help="face crop radius around the nose tip (scan units)")
    m.add_argument("--no-scale", action="store_true", help="rigid ICP only (default: rigid + one scale)")
    m.add_argument("--spacing", type=bounded(float, above=0), default=1.0, help="subdivide predictions to this edge length")
    m.add_argument("-o", "--output", type=Path, default=Path("eval_meshes"))
    m.set_defaults(run=run_meshes)


def _common(p: argparse.ArgumentParser, name: str, model: str = DEFAULT_PRESET) -> None:
    # attributes and embeddings come from the joint preset: default to it where they are evaluated
    p.add_argument("--model", default=model,
                   help=f"preset name or folder, SavedModel folder, .tflite or .onnx file (default {model})")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="BlazeFace: auto (short-range, then full-range + tiles where it finds no face), short, full")
    p.add_argument("--refine", type=bounded(int, 0, 10), default=1, help="re-crops from the predicted landmarks (0-10)")
    p.add_argument("-o", "--output", type=Path, default=Path(f"eval_{name}"))


def run_aflw2000(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tfface.evaluation.aflw2000 import NothingEvaluated, evaluate_aflw2000
    from tfface.evaluation.aflw2000_report import nme_table, write_aflw2000_report

    try:
        result = evaluate_aflw2000(args.model, args.data, args.crop, args.limit, args.detector, args.refine,
                                   on_skip=lambda line: tqdm.write(f"tfface: skipped: {line}", file=sys.stderr))
    except NothingEvaluated as e:  # every image skipped, each with its line above: nothing to report
        print(f"tfface: error: none of the {len(e.skipped)} images in {args.data} could be evaluated "
              "(each skipped above); no report written", file=sys.stderr)
        return 1
    m = result["metrics"]
    out = write_aflw2000_report(result, args.output, str(args.model))
    print(nme_table(m, str(args.model)))
    pose = m["pose_mae"]
    skipped = f"; skipped {m['skipped']['total']} bad images (see metrics.json)" if m["skipped"]["total"] else ""
    print(f"3D NME {m['nme_3d']['mean']:.2f}%; pose MAE yaw {pose['yaw']:.2f}, pitch {pose['pitch']:.2f}, "
          f"roll {pose['roll']:.2f} deg; missed faces {m['missed']['total']}{skipped}; wrote {out}/")
    return 0


def run_attributes(args: argparse.Namespace) -> int:
    from tfface.evaluation.attributes import evaluate_attributes, write_attributes_report

    result = evaluate_attributes(args.model, args.data, args.split, args.limit, args.detector, args.refine)
    out = write_attributes_report(result, args.output, str(args.model))
    m = result["metrics"]
    print(f"mean accuracy {100 * m['mean_accuracy']:.2f}% (majority class {100 * m['majority_mean_accuracy']:.2f}%), "
          f"balanced {100 * m['mean_balanced_accuracy']:.2f}% (majority 50%); wrote {out}/")
    return 0


def run_verification(args: argparse.Namespace) -> int:
    from tfface.evaluation import verification as ver
    from tfface.evaluation.runner import require_output
    from tfface.runtimes import load_runner

    runner = load_runner(args.model)
    require_output(runner, "embedding")  # before reading thousands of pairs
    if args.pairs is None:
        pairs = ver.folder_pairs(args.data, args.num_pairs, seed=args.seed)
    elif args.pairs.suffix.lower() == ".csv":
        pairs = ver.csv_pairs(args.pairs, args.data, seed=args.seed)
    else:
        pairs = ver.lfw_pairs(args.pairs, args.data)
    result = ver.evaluate_verification(runner, pairs, args.detector, args.refine)
    out = ver.write_verification_report(result, args.output, str(args.model))
    m = result["metrics"]
    tars = ", ".join(f"TAR@FAR={k} {v:.4f}" for k, v in m["tar_at_far"].items())
    print(f"accuracy {100 * m['accuracy_mean']:.2f} ± {100 * m['accuracy_std']:.2f}% over "
          f"{len(m['fold_accuracy'])} folds; {tars}; wrote {out}/")
    return 0


def run_meshes(args: argparse.Namespace) -> int:
    from tfface.evaluation.meshes import evaluate_meshes, write_meshes_report

    result = evaluate_meshes(args.pred, args.gt, args.radius, not args.no_scale, args.spacing)
    out = write_meshes_report(result, args.output)
    m = result["metrics"]
    print(f"RMSE {m['rmse_mean']:.3f} ± {m['rmse_std']:.3f} over {m['scans']} scans; wrote {out}/")
    return 0
