"""Reading photos as RGB uint8 with errors that name the file and the problem."""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

# OpenCV's own ceiling (read once, at its first decode): a backstop for headers PIL cannot read, and the
# highest budget --max-megapixels can raise to without also setting it (250 Mpx: 750 MB as RGB).
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(250_000_000))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tfface.errors import DataFileError  # noqa: E402
from tfface.io.atomic import atomic_path  # noqa: E402
from tfface.quiet import native_stderr_silenced  # noqa: E402

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# A 48 KB PNG can claim 20000x20000 (4.4 GB and 34 s to decode and search); 100 Mpx (a 300 MB RGB array)
# is above any camera's photo. `TFFACE_MAX_PIXELS` or `tfface reconstruct --max-megapixels` change it.
DEFAULT_MAX_PIXELS = 100_000_000


def max_pixels() -> int:
    """The pixel budget: `TFFACE_MAX_PIXELS` if set, else DEFAULT_MAX_PIXELS."""
    value = os.environ.get("TFFACE_MAX_PIXELS", "")
    try:
        pixels = float(value) if value else DEFAULT_MAX_PIXELS
    except ValueError:
        pixels = float("nan")
    if not 0 < pixels < float("inf"):
        raise DataFileError(f"TFFACE_MAX_PIXELS must be a positive number of pixels. Received: {value!r}")
    return int(pixels)


def header_pixels(data: bytes) -> tuple[int, str] | None:
    """(pixels, "WxH") from the file header without decoding; None when PIL cannot read the header
    (OpenCV then decides, under its own OPENCV_IO_MAX_IMAGE_PIXELS ceiling)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's DecompressionBombWarning: we apply our own budget
        try:
            with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header only
                return im.size[0] * im.size[1], f"{im.size[0]}x{im.size[1]}"
        except Image.DecompressionBombError as e:  # over twice PIL's own limit; its message has the count
            found = re.search(r"\((\d+) pixels\)", str(e))
            pixels = int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
            return pixels, f"{pixels / 1e6:.0f} Mpx"
        except Exception:  # noqa: BLE001 - any unreadable header: not ours to judge, OpenCV decides
            return None


def image_kind(data: bytes) -> str | None:
    """'TIFF, mode F' for a header PIL can read (to say why a decode failed), else None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return f"{im.format}, mode {im.mode}"
    except Exception:  # noqa: BLE001 - unreadable header: the caller says "corrupt"
        return None


def decode_image(data: bytes, name: str | os.PathLike, budget: int | None = None) -> np.ndarray:
    """Encoded image bytes -> RGB uint8 (H, W, 3), refusing headers over `budget` pixels before decoding."""
    budget = max_pixels() if budget is None else budget
    size = header_pixels(data) if data else None
    if size is not None and size[0] > budget:
        raise DataFileError(f"{name}: {size[1]} image is over the pixel budget of {budget / 1e6:g} Mpx "
                            "(--max-megapixels / TFFACE_MAX_PIXELS)")
    try:  # whatever the decoder does (OpenCV raises on headers over its limit), one line per file
        with native_stderr_silenced():  # libpng's "iCCP: known incorrect sRGB profile" and the like
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error as e:
        raise DataFileError(f"{name}: cannot decode image ({str(e).strip().splitlines()[-1][:200]})") from None
    if image is None:
        kind = image_kind(data) if data else None
        raise DataFileError(f"{name}: cannot decode image (" + (f"a {kind} image, which OpenCV cannot read" if kind
                            else f"corrupt or not a {Path(name).suffix} file") + ")")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: no second copy of a big photo


def broken_link(path: Path) -> bool:
    """A link to a file that does not exist."""
    return path.is_symlink() and not path.exists()


def check_input_file(path: str | os.PathLike, what: str = "an image file") -> Path:
    """`path` as a Path if it is a file to read, else a one-line DataFileError saying what it is instead
    (a folder, a link to nothing, nothing)."""
    path = Path(path)
    if path.is_dir():
        raise DataFileError(f"{path}: a folder, not {what}")
    if not path.is_file():
        raise DataFileError(f"{path}: " + ("a link to a file that does not exist" if broken_link(path) else "file not found"))
    return path


def read_image(path: str | os.PathLike, budget: int | None = None) -> np.ndarray:
    """An image file -> RGB uint8 (H, W, 3); grey and alpha images are converted; images whose header
    claims more than `budget` pixels (default: max_pixels()) are refused before decoding."""
    path = check_input_file(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataFileError(f"{path}: unsupported format '{path.suffix}' (supported: {', '.join(IMAGE_EXTENSIONS)})")
    try:  # bytes + imdecode, unlike imread, copes with any path encoding
        data = path.read_bytes()
    except OSError as e:
        raise DataFileError(f"{path}: cannot read ({e.strerror or e})") from None
    return decode_image(data, path, budget)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """RGB uint8 -> file (format from the suffix), atomically (`atomic_path`)."""
    with atomic_path(path) as tmp:
        try:
            ok = cv2.imwrite(os.fspath(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        except cv2.error:
            ok = False
        if not ok:  # OpenCV says only False: an unknown suffix, or a full disk
            raise DataFileError(f"{path}: could not write image (unknown image suffix, or the disk is full?)")


def list_images(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given (whatever their suffix, so bad ones get reported) and image files in folders."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS))
        else:
            found.append(p)
    return found
