"""The default inference path: no TensorFlow, the shipped TFLite file equal to Keras, no import circle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import REPO, SAMPLE_IMAGE


def test_reconstruct_imports_no_tensorflow(tmp_path):
    code = ("import json, sys\nfrom tfface.cli.main import main\n"
            f"rc = main(['reconstruct', {str(SAMPLE_IMAGE)!r}, '-o', {str(tmp_path)!r}])\n"
            "print(json.dumps({'rc': rc, 'loaded': [m for m in ('tensorflow', 'keras', 'mediapipe') if m in sys.modules]}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"rc": 0, "loaded": []}, proc.stderr[-2000:]
    assert "wrote 1 results to" in proc.stderr
    assert len(json.loads((tmp_path / "trump_hillary.json").read_text())["faces"]) == 2


def test_shipped_tflite_matches_keras_on_real_faces(default_preset):
    """The preset's model.tflite (tfface.models.packaging) is its Keras weights: params within 1e-4
    (normalised), landmarks within 0.05 px on the sample photo's faces through the same crops."""
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image
    from tfface.runtimes import KerasRunner, TFLiteRunner

    image = read_image(SAMPLE_IMAGE)
    with FaceReconstructor() as lite, FaceReconstructor(default_preset) as keras_rec:
        assert isinstance(lite.runner, TFLiteRunner) and isinstance(keras_rec.runner, KerasRunner)
        ours, ref = lite(image), keras_rec(image)
        crops = lite.crops(image, np.stack([f.roi_box for f in ref]))
        raw = [r(crops)["params"] for r in (lite.runner, keras_rec.runner)]
    std = default_preset.param_stats.std
    assert np.abs((raw[0] - raw[1]) / std).max() <= 1e-4
    assert len(ours) == len(ref) == 2
    for a, b in zip(ours, ref):
        assert np.abs(a.landmarks[:, :2] - b.landmarks[:, :2]).max() <= 0.05


def test_no_phantom_face_on_obama1(reconstructor):
    from conftest import shared_path
    from tfface.io.images import read_image

    path = shared_path("identity_photos/obama/obama1.jpg")
    faces = reconstructor(read_image(path))
    assert len(faces) == 1 and faces[0].score > 0.9


def _module_imports(path: Path, modules: set[str], package: str = "tfface") -> set[str]:
    """Modules of `package` a file imports anywhere (lazy imports in functions too; not under
    TYPE_CHECKING); `from pkg import submodule` counts as the submodule."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            found |= subs or {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(package)}
    return found


def test_no_import_circle_in_tfface():
    root = REPO / "tfface"
    files = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
             for p in root.rglob("*.py")}
    graph = {name: _module_imports(p, set(files)) for name, p in files.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                raise AssertionError(f"import circle: {' -> '.join(stack[stack.index(dep):] + [dep])}")
            if dep in graph and not state.get(dep):
                visit(dep, stack + [dep])
        state[node] = 2

    for module in graph:
        if not state.get(module):
            visit(module, [module])


def test_video_tracking_follows_faces_without_the_detector():
    """FaceReconstructor.track and the edge app: between detections, crops come from the previous
    frame's landmarks; on a moving synthetic clip the landmarks stay within 2 % of the face size of
    per-frame detection, and the detector runs on 1 frame in 5."""
    from mobile_demo.edge.pipeline import EdgePipeline
    from mobile_demo.smoothing_eval import CameraMotion, face_size, synthetic_video
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.io.images import read_image

    image = read_image(SAMPLE_IMAGE)
    frames = list(synthetic_video(image, CameraMotion(frames=10, still_frames=2).matrices((768, 344), 230.0), 4.0))
    with FaceReconstructor() as rec:
        calls = []
        detect = rec.detector.detect
        rec.detector.detect = lambda im: calls.append(1) or detect(im)
        tracked = [rec.track(f, detect_every=5) for f in frames]
        per_frame = [rec(f) for f in frames]
    assert len(calls) == 2 + len(frames)  # 2 detections while tracking, then one per frame
    edge = EdgePipeline(detect_every=5)
    edge_tracked = [edge(f) for f in frames]
    for a, b, c in zip(tracked, per_frame, edge_tracked):
        assert len(a) == len(b) == len(c) == 2
        for fa, fb in zip(sorted(a, key=lambda f: f.box[0]), sorted(b, key=lambda f: f.box[0])):
            err = np.linalg.norm(fa.landmarks[:, :2] - fb.landmarks[:, :2], axis=-1).mean()
            assert err < 0.02 * face_size(fb.landmarks)


def test_every_shipped_preset_file_is_its_keras_weights():
    """Each preset's model.tflite was regenerated from its current weights
    (`python -m tfface.models.packaging NAME` after replacing a preset's weights)."""
    from tfface.inference.face_path import crops_at
    from tfface.io.images import read_image
    from tfface.models.presets import PRESETS
    from tfface.runtimes import KerasRunner, load_runner

    crops = crops_at(read_image(SAMPLE_IMAGE), np.array([[963, 156, 1292, 485], [161, 108, 502, 449]]), 120)
    for name in PRESETS:
        lite, keras_runner = load_runner(name), KerasRunner(name)
        a, b = lite(crops), keras_runner(crops)
        assert set(a) == set(b) and lite.attribute_names == list(keras_runner.attribute_names), name
        assert np.abs((a["params"] - b["params"]) / keras_runner.decoder.param_stats.std).max() <= 1e-4, name
        for key in set(a) - {"params"}:
            assert np.abs(a[key] - b[key]).max() <= 1e-4, (name, key)
        assert lite.verification_threshold == keras_runner.verification_threshold, name
