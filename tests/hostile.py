"""Hostile files made inside the tests: PNGs whose headers claim huge sizes (decompression bombs)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int, height: int, bit_depth: int = 1, with_pixels: bool = False) -> Path:
    """A greyscale PNG claiming width x height. Without pixels it is ~69 bytes (a header only); with them,
    all-zero rows compress ~1000:1 (30000x30000 at 1 bit: ~110 KB that decodes to gigabytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    if with_pixels:
        row = b"\0" * (1 + (width * bit_depth + 7) // 8)
        comp = zlib.compressobj(9)
        data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    else:
        data = zlib.compress(b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path
