"""Run the browser demo (mobile_demo/web) in headless Chromium with a fake camera and compare its
landmarks with the Python edge app on the very frame the page processed.

    python -m mobile_demo.web_check [--photo P] [--screenshot mobile_demo/web/screenshot.png]

Needs Chromium (`apt-get install -y chromium`), Node.js and `npm ci` in mobile_demo/web.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "mobile_demo" / "web"
SAMPLE = REPO / "examples" / "trump_hillary.jpg"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def missing_requirements() -> str | None:
    """Why the check cannot run here (None when it can)."""
    if not Path(CHROMIUM).is_file():
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium; or set CHROMIUM)"
    if shutil.which("node") is None:
        return "Node.js not found (needed for playwright-core)"
    starts = _chromium_starts()
    if starts:
        return starts
    for package in ("@litertjs/core", "playwright-core"):
        if not (WEB / "node_modules" / package / "package.json").is_file():
            return f"{package} not installed (cd mobile_demo/web && npm ci)"
    return None


@functools.cache
def _chromium_starts() -> str | None:
    """None when headless Chromium can start here, else why (a container without its libraries)."""
    try:
        proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "about:blank"],
                              capture_output=True, text=True, timeout=90)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"Chromium at {CHROMIUM} does not start: {e}"
    if proc.returncode != 0:
        return f"Chromium at {CHROMIUM} does not start (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"
    return None


def write_y4m(image_rgb: np.ndarray, path: Path, frames: int = 10, fps: int = 30) -> None:
    """A still clip in YUV4MPEG2 (4:2:0), the format Chromium's fake camera reads."""
    h, w = image_rgb.shape[:2]
    image_rgb = image_rgb[: h - h % 2, : w - w % 2]
    h, w = image_rgb.shape[:2]
    i420 = cv2.cvtColor(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + i420)


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript"}

    def log_message(self, *args) -> None:  # quiet
        pass


@contextlib.contextmanager
def serve(root: Path):
    """A local static server for `root` on a free port; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def run_page(photo: Path, screenshot: Path, frames: int = 20, query: str = "", timeout: int = 300) -> dict:
    """The page's result dict (window.tfface) after `frames` frames of a fake camera showing `photo`;
    adds "frame_rgb" (the processed pixels, decoded from the page's PNG)."""
    from mobile_demo.edge.io import read_rgb

    with tempfile.TemporaryDirectory() as tmp:
        y4m, out = Path(tmp) / "camera.y4m", Path(tmp) / "result.json"
        write_y4m(read_rgb(photo), y4m)
        with serve(REPO) as base:
            url = f"{base}mobile_demo/web/index.html{query}"
            proc = subprocess.run(["node", str(WEB / "headless_check.mjs"), url, str(y4m), str(out), str(screenshot),
                                   str(frames)], cwd=WEB, capture_output=True, text=True, timeout=timeout)
        if not out.is_file():
            raise RuntimeError(f"headless Chromium run failed: {proc.stderr[-2000:]}")
        result = json.loads(out.read_text())
    if result.get("error"):
        raise RuntimeError(f"page error: {result['error']}\n" + "\n".join(result.get("log", [])[-20:]))
    png = base64.b64decode(result.pop("png").split(",", 1)[1])
    result["frame_rgb"] = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return result


def compare(result: dict) -> dict:
    """Python edge pipeline (no smoothing) on the page's frame vs the page's landmarks, in pixels."""
    from mobile_demo.edge.pipeline import EdgePipeline

    page = result["last"]["faces"]
    mesh = bool(page) and all("mesh_2d" in f for f in page)
    faces = EdgePipeline(mesh=mesh)(result["frame_rgb"])
    diffs, mesh_diffs = [], []
    for f in faces:
        ours = f.landmarks[:, :2]
        best = min(page, key=lambda p: np.linalg.norm(np.mean(p["landmarks_2d"], 0) - ours.mean(0)))
        diffs.append(np.abs(np.array(best["landmarks_2d"]) - ours).max())
        if mesh:
            mesh_diffs.append(np.abs(np.array(best["mesh_2d"]) - f.vertices[:, :2]).max())
    return {"python_faces": len(faces), "page_faces": len(page),
            "max_landmark_diff_px": float(max(diffs, default=np.inf)),
            **({"max_mesh_diff_px": float(max(mesh_diffs, default=np.inf))} if mesh else {}),
            "page_ms_per_frame": result["ms"], "page_stages_ms": result["stages"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo", type=Path, default=SAMPLE)
    p.add_argument("--screenshot", type=Path, default=WEB / "screenshot.png")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--query", default="", help="page URL query, e.g. '?threads=2&model=...tflite'")
    args = p.parse_args(argv)
    why = missing_requirements()
    if why:
        print(f"web_check: cannot run: {why}")
        return 2
    print(json.dumps(compare(run_page(args.photo, args.screenshot, args.frames, args.query)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
