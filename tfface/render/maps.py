"""Depth maps, PNCC (projected normalised coordinate code) and a shaded mesh overlay, from a Raster.

All take meshes in image pixels (x right, y down, z towards the viewer) and return uint8 RGB images
the size of the photo, like 3DDFA_V2's depth / PNCC outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfface.render.rasterize import rasterize, vertex_normals


def _combined(meshes: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several (vertices, triangles) -> one vertex array, one triangle array, vertex -> mesh index."""
    verts, tris, owner, base = [], [], [], 0
    for i, (v, t) in enumerate(meshes):
        verts.append(np.asarray(v, np.float64))
        tris.append(np.asarray(t, np.int64) + base)
        owner.append(np.full(len(v), i))
        base += len(v)
    return np.concatenate(verts), np.concatenate(tris), np.concatenate(owner)


def depth_image(meshes: Sequence[tuple[np.ndarray, np.ndarray]], height: int, width: int) -> np.ndarray:
    """Nearer is brighter; each face's depth is scaled to its own z range so every face is visible."""
    v, tri, owner = _combined(meshes)
    z = v[:, 2].copy()
    for i in np.unique(owner):  # per-face normalisation to [0.2, 1] (0 = background)
        zi = z[owner == i]
        z[owner == i] = 0.2 + 0.8 * (zi - zi.min()) / max(zi.max() - zi.min(), 1e-9)
    raster = rasterize(v, tri, height, width)
    d = raster.interpolate(z[:, None], tri)[..., 0]
    return np.repeat((np.clip(d, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)


def ncc_code(reference: np.ndarray) -> np.ndarray:
    """The normalised coordinate code: the model's mean shape scaled to [0, 1] per axis (N, 3)."""
    lo, hi = reference.min(axis=0), reference.max(axis=0)
    return (reference - lo) / np.maximum(hi - lo, 1e-9)


def pncc_image(meshes: Sequence[tuple[np.ndarray, np.ndarray]], codes: Sequence[np.ndarray],
               height: int, width: int) -> np.ndarray:
    """Each visible pixel coloured by the NCC (x, y, z in [0, 1] -> R, G, B) of the surface point."""
    v, tri, _ = _combined(meshes)
    raster = rasterize(v, tri, height, width)
    img = raster.interpolate(np.concatenate(codes).astype(np.float32), tri)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def shaded_overlay(image: np.ndarray, meshes: Sequence[tuple[np.ndarray, np.ndarray]],
                   alpha: float = 0.65, colour: tuple[int, int, int] = (200, 200, 230)) -> np.ndarray:
    """The meshes Lambert-shaded (light from the viewer) and blended onto the photo."""
    h, w = image.shape[:2]
    v, tri, _ = _combined(meshes)
    normals = vertex_normals(v, tri)
    raster = rasterize(v, tri, h, w)
    n = raster.interpolate(normals.astype(np.float32), tri)
    shade = np.clip(np.abs(n[..., 2]), 0, 1)[..., None] * 0.8 + 0.2
    out = image.astype(np.float32)
    m = raster.mask
    out[m] = (1 - alpha) * out[m] + alpha * shade[m] * np.asarray(colour, np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)
