"""The tfface TFLite model on LiteRT, and everything around it in NumPy: 3DDFA_V2 crop boxes, the crop,
de-normalised params, 68 landmarks in photo pixels and head pose.

The same rules as `tfface.inference` (cropping, decode) and `tfface.morphable` (geometry, pose), written
again in NumPy because the edge app must not import TensorFlow; tests/test_mobile_demo.py checks that
they agree with tfface's own.

Model folder contract (written by mobile_demo/make_models.py): a `.tflite` from `tfface export`, its
`metadata.json` (input size, param mean/std, output tensor names) and `landmark_basis.json` (the 68-point
shape model: mean (68, 3), id_basis (40, 68, 3), exp_basis (10, 68, 3)); for `mesh=True` also
`mesh_basis.json` (a coarse dense face mesh in the same coefficients, decoded exactly like the landmarks).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mobile_demo.edge.litert import ModelFileError, open_interpreter

MODELS = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = MODELS / "tfface_mb05_3ddfa_fp16.tflite"
BASIS_FILE = "landmark_basis.json"
MESH_FILE = "mesh_basis.json"
METADATA_FILE = "metadata.json"


# ---------------------------------------------------------------------------------------------------
# 3DDFA_V2 crop rules (tfface.inference.cropping)


def roi_from_box(box: np.ndarray) -> np.ndarray:
    """Detector box -> square crop box: centre moved down by 0.14 of the box size, side 1.58x."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    old = (x1 - x0 + y1 - y0) / 2.0
    return _square((x0 + x1) / 2.0, (y0 + y1) / 2.0 + 0.14 * old, int(old * 1.58))


def roi_from_landmarks(points: np.ndarray) -> np.ndarray:
    """Landmarks (N, 2+) -> square crop box: the landmarks' bounding square, side = its diagonal."""
    pts = np.asarray(points, np.float64)[:, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2.0
    return _square(centre[0], centre[1], int(round(np.sqrt(2.0) * (hi - lo).max())))


def _square(cx: float, cy: float, side: int) -> np.ndarray:
    x0, y0 = np.floor(cx - side / 2.0 + 0.5), np.floor(cy - side / 2.0 + 0.5)
    return np.array([x0, y0, x0 + side, y0 + side], np.float32)


def crop(image: np.ndarray, roi_box: np.ndarray, size: int) -> np.ndarray:
    """RGB image + square box -> (size, size, 3) uint8, bilinear, zeros outside the photo."""
    x0, y0, x1, y1 = (float(v) for v in roi_box)
    sx, sy = (x1 - x0) / size, (y1 - y0) / size
    m = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# ---------------------------------------------------------------------------------------------------
# Decoding (tfface.morphable.geometry / params / pose)


@dataclass(frozen=True)
class ShapeBasis:
    mean: np.ndarray  # (68, 3)
    id_basis: np.ndarray  # (K_id, 68, 3)
    exp_basis: np.ndarray  # (K_exp, 68, 3)

    @classmethod
    def from_json(cls, path: str | Path) -> "ShapeBasis":
        data = _read_json(path)
        try:
            return cls(*(np.asarray(data[k], np.float32) for k in ("mean", "id_basis", "exp_basis")))
        except KeyError as e:
            raise ModelFileError(f"{path}: missing {e} (expected mean, id_basis, exp_basis)") from None


@dataclass(frozen=True)
class MeshBasis(ShapeBasis):
    triangles: np.ndarray = None  # (T, 3) int32; camera-facing ones run clockwise in image coordinates

    @classmethod
    def from_json(cls, path: str | Path) -> "MeshBasis":
        data = _read_json(path)
        try:
            arrays = [np.frombuffer(base64.b64decode(data[k]), "<f2").astype(np.float32).reshape(data["shapes"][k])
                      * np.float32(data["scales"][k]) for k in ("mean", "id_basis", "exp_basis")]
            return cls(*arrays, triangles=np.asarray(data["triangles"], np.int32).reshape(-1, 3))
        except KeyError as e:
            raise ModelFileError(f"{path}: missing {e} (a mesh basis from mobile_demo/make_models.py)") from None
        except ValueError as e:
            raise ModelFileError(f"{path}: malformed mesh basis ({e})") from None


def rotation_from_camera(camera: np.ndarray) -> np.ndarray:
    """(F, 3, 4) [s*R | t] -> (F, 3, 3) R: first two rows normalised, the third their cross product."""
    r1 = camera[:, 0, :3] / np.linalg.norm(camera[:, 0, :3], axis=-1, keepdims=True)
    r2 = camera[:, 1, :3] / np.linalg.norm(camera[:, 1, :3], axis=-1, keepdims=True)
    return np.stack([r1, r2, np.cross(r1, r2)], axis=1)


def euler_degrees(rotation: np.ndarray) -> np.ndarray:
    """(F, 3, 3) -> (F, 3) yaw, pitch, roll in degrees (AFLW2000-3D Pose_Para convention)."""
    yaw = np.arcsin(np.clip(-rotation[:, 0, 2], -1.0, 1.0))
    pitch = np.arctan2(rotation[:, 1, 2], rotation[:, 2, 2])
    roll = np.arctan2(rotation[:, 0, 1], rotation[:, 0, 0])
    return np.degrees(np.stack([yaw, pitch, roll], axis=-1)).astype(np.float32)


def decode(params: np.ndarray, roi_boxes: np.ndarray, basis: ShapeBasis, size: int) -> tuple[np.ndarray, np.ndarray]:
    """De-normalised params (F, 62) + crop boxes (F, 4) -> landmarks (F, 68, 3) in photo pixels and
    pose (F, 3); crop frame -> photo with 3DDFA_V2's rule (x - 1, y = size - y, z - 1, scale, shift)."""
    params = np.asarray(params, np.float32)
    camera = params[:, :12].reshape(-1, 3, 4)
    k = basis.id_basis.shape[0]
    shape = (basis.mean + np.einsum("fk,knc->fnc", params[:, 12:12 + k], basis.id_basis)
             + np.einsum("fk,knc->fnc", params[:, 12 + k:], basis.exp_basis))
    pts = np.einsum("fij,fnj->fni", camera[:, :, :3], shape) + camera[:, None, :, 3]
    boxes = np.asarray(roi_boxes, np.float32).reshape(-1, 4)
    sx = ((boxes[:, 2] - boxes[:, 0]) / size)[:, None]
    sy = ((boxes[:, 3] - boxes[:, 1]) / size)[:, None]
    x = (pts[..., 0] - 1.0) * sx + boxes[:, 0:1]
    y = (size - pts[..., 1]) * sy + boxes[:, 1:2]
    z = (pts[..., 2] - 1.0) * (sx + sy) / 2.0
    return np.stack([x, y, z], axis=-1).astype(np.float32), euler_degrees(rotation_from_camera(camera))


# ---------------------------------------------------------------------------------------------------
# The network


def _read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file (run `python mobile_demo/make_models.py`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: not valid JSON ({e})") from None


@dataclass(frozen=True)
class FaceResult:
    roi_box: np.ndarray  # (4,) the square crop the network saw last
    params: np.ndarray  # (62,) de-normalised
    landmarks: np.ndarray  # (68, 3) photo pixels
    pose: np.ndarray  # (3,) yaw, pitch, roll degrees
    attributes: dict[str, float] | None = None
    vertices: np.ndarray | None = None  # (V, 3) coarse mesh in photo pixels (mesh=True)


class FaceModel:
    """The exported tfface TFLite model: uint8 RGB crops (N, S, S, 3) -> params (and attributes)."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, num_threads: int | None = None,
                 mesh: bool = False) -> None:
        model_path = Path(model_path)
        self.metadata = _read_json(model_path.parent / METADATA_FILE)
        md = self.metadata
        self.image_size = int(md["input"]["image_size"])
        self.mean = np.asarray(md["params"]["mean"], np.float32)
        self.std = np.asarray(md["params"]["std"], np.float32)
        self.attribute_names = list(md.get("attribute_names") or [])
        self.basis = ShapeBasis.from_json(model_path.parent / BASIS_FILE)
        self.mesh = MeshBasis.from_json(model_path.parent / MESH_FILE) if mesh else None
        self.interpreter = open_interpreter(model_path, num_threads)
        self._input = self.interpreter.get_input_details()[0]
        by_name = {d["name"]: d for d in self.interpreter.get_output_details()}
        names = md.get("tflite", {}).get("output_names", {})
        missing = [n for n in names.values() if n not in by_name]
        if not names or missing:
            raise ModelFileError(f"{model_path}: outputs {missing or 'params_normalized'} not in the file "
                                 f"(has {sorted(by_name)}); is {METADATA_FILE} from the same export?")
        self._outputs = {k: by_name[n]["index"] for k, n in names.items()}
        # tfface exports take the uint8 crop and return float32 (int8 files quantise/dequantise inside).
        dtypes = [self._input["dtype"], *(by_name[n]["dtype"] for n in names.values())]
        if dtypes != [np.uint8] + [np.float32] * len(names):
            raise ModelFileError(f"{model_path}: expected uint8 input and float32 outputs (a `tfface export` "
                                 f"TFLite file). Received: {[np.dtype(d).name for d in dtypes]}")
        self._batch = 1

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 RGB crops -> {"params": (N, 62) de-normalised, ["attributes": (N, A) probabilities]}."""
        it, inp = self.interpreter, self._input
        if len(crops) != self._batch:
            it.resize_tensor_input(inp["index"], [len(crops), self.image_size, self.image_size, 3])
            it.allocate_tensors()
            self._batch = len(crops)
        it.set_tensor(inp["index"], np.ascontiguousarray(crops, np.uint8))
        it.invoke()
        out = {k: it.get_tensor(i) for k, i in self._outputs.items()}
        result = {"params": out.pop("params_normalized") * self.std + self.mean}
        if "attributes" in out:  # the exported graph already applies the sigmoid
            result["attributes"] = out["attributes"]
        return result

    def predict(self, image: np.ndarray, roi_boxes: np.ndarray, refine: int = 1) -> list[FaceResult]:
        """Faces cut at `roi_boxes` (F, 4); with `refine`, cut again from the landmarks (tfface's rule)."""
        rois = np.asarray(roi_boxes, np.float32).reshape(-1, 4)
        if not len(rois):
            return []
        out, landmarks, pose = self._run(image, rois)
        for _ in range(refine):
            rois = np.stack([roi_from_landmarks(lm) for lm in landmarks])
            out, landmarks, pose = self._run(image, rois)
        attrs = out.get("attributes")
        verts = None if self.mesh is None else decode(out["params"], rois, self.mesh, self.image_size)[0]
        return [FaceResult(rois[i], out["params"][i], landmarks[i], pose[i],
                           None if attrs is None else dict(zip(self.attribute_names, attrs[i].tolist())),
                           None if verts is None else verts[i])
                for i in range(len(rois))]

    def _run(self, image: np.ndarray, rois: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        out = self(np.stack([crop(image, r, self.image_size) for r in rois]))
        return (out, *decode(out["params"], rois, self.basis, self.image_size))
