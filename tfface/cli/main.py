"""`tfface <command>`: a dispatch over small command modules."""

from __future__ import annotations

import argparse
import os
import sys

# Quiet TensorFlow's and MediaPipe's C++ start-up chatter before either is imported. Commands import
# TensorFlow only when they need it: each parser sets `tensorflow=False` when it runs without it
# (reconstruct, verify, evaluate and serve-request run presets' TFLite files unless `--runtime keras`).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_minloglevel", "2")

from tfface.errors import TffaceError  # noqa: E402
from tfface.quiet import quiet_tensorflow  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from tfface.cli import convert_cmd, evaluate_cmd, export_cmd, reconstruct_cmd, serve_cmd, train_cmd

    from tfface import __version__

    parser = argparse.ArgumentParser(prog="tfface", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tfface {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    reconstruct_cmd.add_parser(sub)
    convert_cmd.add_parser(sub)
    train_cmd.add_parser(sub)
    evaluate_cmd.add_parser(sub)
    export_cmd.add_parser(sub)
    serve_cmd.add_parser(sub)
    from tfface.cli import data_cmd

    data_cmd.add_parser(sub)
    from tfface.cli import fit_cmd

    fit_cmd.add_parser(sub)
    from tfface.cli import edit_cmd, verify_cmd

    verify_cmd.add_parser(sub)
    edit_cmd.add_parser(sub)
    from tfface.cli import service_cmd

    service_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # before anything heavy: `--help` and typos answer at once
    if getattr(args, "tensorflow", True) or getattr(args, "runtime", None) == "keras":
        quiet_tensorflow()  # first, so command modules importing it stay quiet
    try:
        if "TFFACE_MAX_PIXELS" in os.environ:  # a bad value is the command's one error, not every image's
            from tfface.io.images import max_pixels

            max_pixels()
        return int(args.run(args) or 0)
    except (TffaceError, FileNotFoundError) as e:
        print(f"tfface: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an output folder read-only, a file, full: one line naming the path
        where = f"{e.filename}: " if e.filename else ""
        print(f"tfface: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
