"""The tfface TFLite model on LiteRT. The face rules around it (crop boxes and warp, de-normalisation,
decode to 68 landmarks in photo pixels and head pose, the crop -> run -> decode -> re-crop loop) are
tfface's own NumPy modules (`tfface.morphable.crop`, `tfface.morphable.decode`,
`tfface.inference.face_path`), which import no TensorFlow.

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

import numpy as np

from tfface.inference.face_path import RoiPass, holds_face, reconstruct_rois
from tfface.litert import ModelFileError, open_interpreter
from tfface.morphable.decode import ParamStats, ShapeBasis, decode_faces

MODELS = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = MODELS / "tfface_mb05_3ddfa_fp16.tflite"
BASIS_FILE = "landmark_basis.json"
MESH_FILE = "mesh_basis.json"
METADATA_FILE = "metadata.json"


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


def read_basis(path: str | Path) -> ShapeBasis:
    """`landmark_basis.json` -> the 68-point ShapeBasis."""
    data = _read_json(path)
    try:
        return ShapeBasis(*(np.asarray(data[k], np.float32) for k in ("mean", "id_basis", "exp_basis")))
    except KeyError as e:
        raise ModelFileError(f"{path}: missing {e} (expected mean, id_basis, exp_basis)") from None


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
    holds_face: bool = True  # False: the refined crop holds no face (tfface.inference.face_path.holds_face)


class FaceNetwork:
    """The exported tfface TFLite model: uint8 RGB crops (N, S, S, 3) -> params (and attributes)."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, num_threads: int | None = None,
                 mesh: bool = False) -> None:
        model_path = Path(model_path)
        self.metadata = _read_json(model_path.parent / METADATA_FILE)
        md = self.metadata
        self.image_size = int(md["input"]["image_size"])
        self.stats = ParamStats(np.asarray(md["params"]["mean"], np.float32), np.asarray(md["params"]["std"], np.float32))
        self.attribute_names = list(md.get("attribute_names") or [])
        self.basis = read_basis(model_path.parent / BASIS_FILE)
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
        result = {"params": self.stats.denormalize(out.pop("params_normalized"))}
        if "attributes" in out:  # the exported graph already applies the sigmoid
            result["attributes"] = out["attributes"]
        return result

    def predict(self, image: np.ndarray, roi_boxes: np.ndarray, refine: int = 1,
                check: bool = False) -> list[FaceResult]:
        """Faces cut at `roi_boxes` (F, 4); with `refine`, cut again from the landmarks (tfface's rule);
        with `check`, each result says whether its refined crop still holds a face."""
        if not len(np.asarray(roi_boxes).reshape(-1, 4)):
            return []
        p = reconstruct_rois(image, roi_boxes, self, self.decode, self.image_size, refine)
        keep = holds_face(image, p, self, self.decode, self.image_size) if check else np.ones(len(p.rois), bool)
        return self.results(p, keep)

    def results(self, p: RoiPass, keep: np.ndarray | None = None) -> list[FaceResult]:
        """A pass of the face loop as FaceResults (with the mesh when mesh=True)."""
        keep = np.ones(len(p.rois), bool) if keep is None else keep
        attrs = p.outputs.get("attributes")
        verts = None if self.mesh is None else decode_faces(p.outputs["params"], p.rois, self.mesh, self.image_size)[0]
        return [FaceResult(p.rois[i], p.outputs["params"][i], p.landmarks[i], p.pose[i],
                           None if attrs is None else dict(zip(self.attribute_names, attrs[i].tolist())),
                           None if verts is None else verts[i], bool(keep[i]))
                for i in range(len(p.rois))]

    def decode(self, params: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """De-normalised params (F, 62) + crop boxes -> landmarks (F, 68, 3) photo pixels, pose (F, 3)."""
        return decode_faces(params, rois, self.basis, self.image_size)
