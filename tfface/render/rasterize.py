"""A small vectorised z-buffer rasteriser (numpy only) for depth maps, PNCC and shaded overlays.

Every triangle's bounding box is expanded into candidate pixel centres at once, barycentric
coordinates decide coverage, and the nearest candidate per pixel wins (larger z = nearer: image
frame, z towards the viewer). A face mesh of 18k triangles covering 300x300 px rasterises in a few
tens of ms without any GPU or OpenGL context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Raster:
    depth: np.ndarray  # (H, W) float32 z of the nearest surface; -inf where empty
    triangle: np.ndarray  # (H, W) int32 triangle id; -1 where empty
    bary: np.ndarray  # (H, W, 3) float32 barycentric weights of the triangle's vertices

    @property
    def mask(self) -> np.ndarray:
        return self.triangle >= 0

    def interpolate(self, attributes: np.ndarray, triangles: np.ndarray) -> np.ndarray:
        """Per-vertex attributes (N, C) -> (H, W, C) image, zero where empty."""
        out = np.zeros(self.triangle.shape + (attributes.shape[1],), np.float32)
        m = self.mask
        corners = attributes[triangles[self.triangle[m]]]  # (P, 3, C)
        out[m] = np.einsum("pk,pkc->pc", self.bary[m], corners)
        return out


def rasterize(vertices: np.ndarray, triangles: np.ndarray, height: int, width: int) -> Raster:
    """Vertices (N, 3) in image pixels (x right, y down, z towards the viewer) -> Raster (H, W)."""
    v = np.asarray(vertices, np.float64)
    tri = np.asarray(triangles, np.int64)
    p = v[tri]  # (T, 3, 3)
    lo = np.ceil(p[..., :2].min(axis=1)).astype(np.int64)
    hi = np.floor(p[..., :2].max(axis=1)).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [width - 1, height - 1])
    span = hi - lo + 1
    keep = np.all(span > 0, axis=1)
    ids, lo, span = np.nonzero(keep)[0], lo[keep], span[keep]
    counts = span[:, 0] * span[:, 1]
    owner = np.repeat(np.arange(len(ids)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px = lo[owner, 0] + offset % span[owner, 0]
    py = lo[owner, 1] + offset // span[owner, 0]
    t = ids[owner]
    a, b, c = p[t, 0], p[t, 1], p[t, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    ok = np.abs(area) > 1e-12
    safe = np.where(ok, area, 1.0)
    w1 = ((px - a[:, 0]) * (c[:, 1] - a[:, 1]) - (py - a[:, 1]) * (c[:, 0] - a[:, 0])) / safe
    w2 = ((b[:, 0] - a[:, 0]) * (py - a[:, 1]) - (b[:, 1] - a[:, 1]) * (px - a[:, 0])) / safe
    w0 = 1.0 - w1 - w2
    inside = ok & (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
    w = np.stack([w0, w1, w2], axis=-1)[inside]
    t, px, py = t[inside], px[inside], py[inside]
    z = np.einsum("pk,pk->p", w, p[t, :, 2])
    pixel = py * width + px
    order = np.lexsort((-z, pixel))  # per pixel, nearest first
    first = order[np.r_[True, pixel[order][1:] != pixel[order][:-1]]] if len(order) else order
    depth = np.full(height * width, -np.inf, np.float32)
    tri_id = np.full(height * width, -1, np.int32)
    bary = np.zeros((height * width, 3), np.float32)
    depth[pixel[first]], tri_id[pixel[first]], bary[pixel[first]] = z[first], t[first], w[first]
    return Raster(depth.reshape(height, width), tri_id.reshape(height, width), bary.reshape(height, width, 3))


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (N, 3) for the triangles' winding."""
    p = vertices[triangles]
    face_n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
