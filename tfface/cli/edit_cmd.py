"""`tfface edit IMAGE --attribute NAME --amount A -o OUT`: move a face's 3D shape along an attribute."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfface.cli.args import bounded
from tfface.quiet import native_stderr_silenced
from tfface.detection import DETECTORS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help="semantic 3D editing: change one attribute's logit and see the shape move")
    p.add_argument("image", type=Path, help="a photo (its largest face is edited)")
    p.add_argument("--attribute", required=True, help="a CelebA attribute name, e.g. Smiling, Chubby, Male")
    p.add_argument("--amount", type=bounded(float, -20, 20), required=True,
                   help="change of the attribute's logit, -20 to 20 (e.g. +4 turns probability 0.12 into 0.88)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="folder for <stem>_before.obj, <stem>_after.obj, <stem>_edit.png, <stem>_edit.json")
    p.add_argument("--preset", default=None, help="a joint preset name or folder (default: tfface_mb05_joint)")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="BlazeFace: 'auto' (default) short-range, then full-range + tiles where it finds no face; "
                        "'short' for portraits/close faces only; 'full' for group photos with small faces")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tfface.inference.editing import AttributeEditor, write_edit_outputs
    from tfface.io.images import read_image
    from tfface.models.presets import JOINT_PRESET

    with native_stderr_silenced():  # device start-up notices
        editor = AttributeEditor(args.preset or JOINT_PRESET, args.detector)
        attribute = editor.attribute(args.attribute)  # a typo fails before any work
        editor.reconstructor.detector  # noqa: B018 - start the detector here
    try:
        image = read_image(args.image)
        edit = editor(image, attribute, args.amount, source=str(args.image))
    finally:
        editor.close()
    summary = write_edit_outputs(args.output, args.image.stem, image, edit, source=str(args.image))
    print(json.dumps({k: summary[k] for k in (
        "image", "attribute", "amount", "probability", "landmark_displacement_px", "files")}), flush=True)
    return 0
