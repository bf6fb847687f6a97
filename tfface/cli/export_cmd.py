"""`tfface export -o DIR`: SavedModel (TF Serving layout), TFLite fp32/fp16/int8/int16x8, ONNX, metadata
and a parity report against Keras."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfface.cli.args import bounded


def add_parser(sub: argparse._SubParsersAction) -> None:
    from tfface.export.formats import FORMATS, QUANTISED_FORMATS

    p = sub.add_parser("export", help="export a model to SavedModel/TF Serving, TFLite and ONNX, with a parity report")
    p.add_argument("--preset", default=None, help="preset name or folder (default: the bundled one)")
    p.add_argument("--model", default=None,
                   help="a saved .keras model (e.g. a trained FaceModel) to export with the preset's "
                        "preprocessing and param statistics")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--formats", nargs="+", choices=FORMATS, default=None, metavar="FORMAT",
                   help=f"what to write (default: all of {' '.join(FORMATS)}; without --representative all "
                        f"but {' and '.join(QUANTISED_FORMATS)})")
    p.add_argument("--representative", nargs="+", type=Path, default=None, metavar="DIR",
                   help="photos (folders/files) whose detected faces calibrate the quantised files and feed "
                        f"the parity check; required for {' and '.join(QUANTISED_FORMATS)}")
    p.add_argument("--int8-full-integer", action="store_true",
                   help="tflite_int8 with the fully-connected heads in int8 too (integer-only accelerators; "
                        "costs ~1.3 NME points on AFLW2000-3D; default: heads in float32)")
    p.add_argument("--max-faces", type=bounded(int, 1), default=300, help="at most this many representative faces (300)")
    p.add_argument("--version", type=bounded(int, 1), default=1, help="TF Serving version folder number (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace exported files in an existing folder")
    p.add_argument("--aflw", type=Path, default=None,
                   help="AFLW2000-3D folder: add each file's NME (ground-truth crops) to the parity report")
    p.add_argument("--aflw-limit", type=bounded(int, 1), default=None, help="evaluate only the first N AFLW2000-3D images")
    p.add_argument("--no-parity", action="store_true", help="skip the parity report")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tfface.errors import TffaceError
    from tfface.export.exporter import check_output_folder, export_preset, load_export_preset, unsupported_formats
    from tfface.export.formats import FORMATS, QUANTISED_FORMATS
    from tfface.models.presets import DEFAULT_PRESET

    check_output_folder(args.output, args.overwrite)  # fail before minutes of work
    default_formats = args.formats is None
    if default_formats:
        args.formats = [f for f in FORMATS if args.representative or f not in QUANTISED_FORMATS]
        if not args.representative:
            print(f"tfface: {' and '.join(QUANTISED_FORMATS)} skipped: they calibrate on real faces "
                  "(--representative DIR)", file=sys.stderr)
    quantised = [f for f in args.formats if f in QUANTISED_FORMATS]
    if quantised and not args.representative:
        raise TffaceError(f"{' and '.join(quantised)} need(s) real face photos to calibrate: pass "
                          "--representative DIR (or leave them out of --formats)")
    preset = load_export_preset(args.preset or DEFAULT_PRESET, args.model)
    if default_formats:  # leave out what this model cannot be exported to, saying why
        for fmt, why in unsupported_formats(preset).items():
            if fmt in args.formats:
                args.formats.remove(fmt)
                print(f"tfface: {fmt} skipped: it {why}", file=sys.stderr)
    crops = None
    if args.representative:
        from tfface.export.representative import face_crops

        crops = face_crops(list(args.representative), preset, args.max_faces)
        print(f"{len(crops)} representative face crops", file=sys.stderr)
    result = export_preset(preset, args.output, tuple(args.formats), crops, args.version, args.overwrite,
                           args.int8_full_integer)
    for fmt, path in result.files.items():
        print(f"{fmt}: {path}")
    from tfface.export.representative import calibration_warning

    if args.no_parity:
        warn(calibration_warning(0 if crops is None else len(crops), args.formats, None))
        return 0
    if crops is None:
        print("tfface: parity report skipped: it needs real faces (--representative DIR)", file=sys.stderr)
        return 0
    from tfface.export.parity import parity_report, to_markdown, write_parity
    from tfface.runtimes import KerasRunner

    report = parity_report(KerasRunner(preset), result.files, crops[:64], args.aflw, args.aflw_limit)
    json_path, _ = write_parity(report, args.output)
    print(to_markdown(report))
    print(f"parity: {json_path}")
    warn(calibration_warning(len(crops), args.formats, report))
    failed = [f for f, e in report["runtimes"].items() if e.get("pass") is False]
    if failed:
        print(f"tfface: error: parity bound not met for {', '.join(failed)} (see {json_path})", file=sys.stderr)
        return 1
    return 0


def warn(message: str | None) -> None:
    if message:
        print(f"tfface: warning: {message}", file=sys.stderr)
