"""Everything `tfface reconstruct --mesh` writes for one photo: meshes, depth, PNCC, mesh overlay.

Files (vertices in image pixels: x right, y down, z a depth towards the viewer on the same scale):
  <stem>.obj, <stem>.ply            all faces of the photo in one mesh (face k = vertices k*N..(k+1)*N-1)
  <stem>_face<k>.obj / .ply         one mesh per face, k as in the JSON's "faces" list (only when >1 face)
  <stem>_depth.png, <stem>_pncc.png depth (nearer = brighter) and PNCC renders, photo-sized
  <stem>_mesh.png                   the shaded mesh blended onto the photo
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfface.fitting.dense import DenseFace, DenseFitter, sample_colours
from tfface.io.images import write_image
from tfface.render.maps import depth_image, ncc_code, pncc_image, shaded_overlay
from tfface.render.mesh_export import write_mesh


def dense_faces(fitter: DenseFitter, faces: Sequence) -> list[DenseFace]:
    """Reconstructor `Face`s (with 68 3D landmarks in image pixels) -> dense meshes."""
    return fitter(np.stack([f.landmarks for f in faces])) if faces else []


def write_mesh_outputs(out_dir: Path, stem: str, image: np.ndarray, dense: Sequence[DenseFace],
                       reference: np.ndarray, colour: bool = True) -> list[Path]:
    """Write the files listed above; `reference` is the model's mean shape (for the PNCC code)."""
    h, w = image.shape[:2]
    written: list[Path] = []
    colours = [sample_colours(image, d.vertices) if colour else None for d in dense]
    verts = np.concatenate([d.vertices for d in dense])
    tris = np.concatenate([d.triangles + i * len(d.vertices) for i, d in enumerate(dense)])
    cols = np.concatenate(colours) if colour else None
    for suffix in (".obj", ".ply"):
        written.append(write_mesh(out_dir / f"{stem}{suffix}", verts, tris, cols))
        if len(dense) > 1:
            written += [write_mesh(out_dir / f"{stem}_face{k}{suffix}", d.vertices, d.triangles, colours[k])
                        for k, d in enumerate(dense)]
    meshes = [(d.vertices, d.triangles) for d in dense]
    code = ncc_code(reference)
    for name, img in (("depth", depth_image(meshes, h, w)), ("pncc", pncc_image(meshes, [code] * len(dense), h, w)),
                      ("mesh", shaded_overlay(image, meshes))):
        path = out_dir / f"{stem}_{name}.png"
        write_image(path, img)
        written.append(path)
    return written


def write_dense_outputs(out_dir: Path, stem: str, image: np.ndarray, faces: Sequence,
                        fitter: DenseFitter) -> list[Path]:
    """Fit the ICT model (`fitter`, built once per run: loading it takes ~0.2 s) to the faces' 68 3D
    landmarks and write all mesh outputs."""
    return write_mesh_outputs(Path(out_dir), stem, image, dense_faces(fitter, faces), fitter.model.mean)
