"""One contract for every runtime a tfface model runs in: Keras preset, SavedModel, TFLite, ONNX.

`load_runner(spec)` opens a preset name or folder, a SavedModel folder (or its TF Serving base folder),
a `.tflite` file or an `.onnx` file. A runner takes uint8 RGB face crops (N, S, S, 3) and returns
{"params": (N, 62) de-normalised 3DDFA params, optionally "attributes": (N, 40) probabilities and
"embedding": (N, D) L2-normalised}. Exported files do colour order, normalisation and
de-normalisation inside the graph; the Keras runner does them in NumPy with the preset's own objects.
Exported files find their decoding assets (param mean/std, morphable model) in the export's
`metadata.json` sidecar (see `tfface.export.metadata`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfface.errors import TffaceError
from tfface.inference.decode import ParamDecoder
from tfface.io.guard import model_file_errors
from tfface.morphable.decode import ParamStats

METADATA_FILE = "metadata.json"
PRESET_RUNTIME_FILE = "model.tflite"  # what `tfface.models.packaging` ships in a preset folder
RUNTIMES = ("auto", "litert", "keras")  # auto: a preset's shipped TFLite file when it has one, else Keras
OUTPUTS = ("params", "attributes", "embedding")  # what runners return; training-only outputs are dropped
SAVED_MODEL_METADATA = Path("assets.extra") / "tfface_metadata.json"  # inside a SavedModel


def identity_template(config: dict) -> dict | None:
    """A preset config's or export metadata's `identity_template` as arrays (None when it has none)."""
    t = config.get("identity_template")
    if t is None:
        return None
    landmarks, roi = np.asarray(t["landmarks"], np.float64), np.asarray(t["roi"], np.float64)
    if landmarks.shape != (68, 2) or roi.shape != (4,) or not (np.isfinite(landmarks).all() and np.isfinite(roi).all()):
        raise ValueError(f"identity_template must hold 68 finite [x, y] landmarks and a finite 4-number roi; "
                         f"found {landmarks.shape} and {roi.shape}")
    return {"landmarks": landmarks, "roi": roi}


class Runner:
    """uint8 RGB crops (N, S, S, 3) -> {"params", optional "attributes", "embedding"} as NumPy."""

    name: str
    image_size: int
    decoder: ParamDecoder
    outputs: tuple[str, ...] = ("params",)
    attribute_names: Sequence[str] = ()  # names of the "attributes" outputs, in order
    verification_threshold: float | None = None  # chosen on held-out identities when the model was made
    verification_far: float | None = None  # the false-accept rate that threshold had on them
    attribute_thresholds: Sequence[float] = ()  # per-attribute decision thresholds chosen on held-out faces
    identity_template: dict | None = None  # {"landmarks", "roi"}: the embedding also reads the aligned crop

    def __call__(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        crops = self._check(crops)
        if len(crops) == 0:
            return {k: np.zeros((0, *self._output_dims[k]), np.float32) for k in self.outputs}
        out = self._run(crops)
        if "embedding" in out:  # the contract is unit length; quantised files can land slightly off it
            e = out["embedding"]
            out["embedding"] = (e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
        return out

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def _output_dims(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _check(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        s = self.image_size
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[1:] != (s, s, 3):
            raise TffaceError(f"{self.name}: expected uint8 RGB crops (N, {s}, {s}, 3). Received: shape={crops.shape}")
        if crops.dtype != np.uint8:
            raise TffaceError(f"{self.name}: expected uint8 RGB crops. Received: dtype={crops.dtype}")
        return crops

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, image_size={self.image_size}, outputs={self.outputs})"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.asarray(x, np.float32)))).astype(np.float32)


class KerasRunner(Runner):
    """A preset (name or folder) or a loaded `Preset`, run by Keras."""

    def __init__(self, preset: Any) -> None:
        from tfface.models.presets import load_preset

        self.preset = load_preset(preset) if isinstance(preset, (str, os.PathLike)) else preset
        self.name = str(self.preset.name)
        self.image_size = int(self.preset.preprocessor.image_size)
        self.decoder = ParamDecoder(self.preset.param_stats, self.preset.shape_model, self.image_size)
        out = self.preset.model.output
        self.outputs = tuple(k for k in OUTPUTS if k in out) if isinstance(out, dict) else ("params",)
        shapes = out if isinstance(out, dict) else {"params": out}
        self._dims = {k: tuple(int(d) for d in shapes[k].shape[1:]) for k in self.outputs}
        self._predict = _compiled_call(self.preset.model)
        self.attribute_names = self.preset.attribute_names
        self.verification_threshold = self.preset.config.get("verification_threshold")
        self.verification_far = self.preset.config.get("verification_far")
        self.attribute_thresholds = list(self.preset.config.get("attribute_thresholds") or [])
        self.identity_template = identity_template(self.preset.config)

    @property
    def _output_dims(self) -> dict[str, tuple[int, ...]]:
        return self._dims

    def raw(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """The Keras model's own outputs (normalised params, attribute logits) as NumPy."""
        x = self.preset.preprocessor.normalize(self._check(crops))
        out = self._predict(x)
        out = out if isinstance(out, dict) else {"params": out}
        return {k: np.asarray(v) for k, v in out.items() if k in self.outputs}

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        raw = self.raw(crops)
        stats = self.preset.param_stats  # NumPy: an eager TF op here cost as much as the network
        result = {"params": stats.denormalize(raw["params"]).astype(np.float32)}
        if "attributes" in raw:
            result["attributes"] = _sigmoid(raw["attributes"])
        if "embedding" in raw:
            result["embedding"] = raw["embedding"].astype(np.float32)
        return result


def _compiled_call(model: Any):
    import tensorflow as tf

    # A traced call (relaxed shapes) avoids Keras' eager per-layer dispatch at batch size 1.
    @tf.function(reduce_retracing=True)
    def call(x):
        return model(x, training=False)

    return lambda x: tf.nest.map_structure(lambda t: t.numpy(), call(tf.convert_to_tensor(x)))


# ----------------------------------------------------------------------------------------------------
# Exported files


@model_file_errors
def find_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The export metadata for an exported file or SavedModel folder: the SavedModel's own copy, or the
    export folder's `metadata.json` next to the file (or up to three folders above it)."""
    path = Path(path)
    candidates = [path / SAVED_MODEL_METADATA] if path.is_dir() else []
    candidates += [p / METADATA_FILE for p in [path if path.is_dir() else None, *list(path.parents)[:3]] if p]
    for c in candidates:
        if c.is_file():
            try:
                return json.loads(c.read_text())
            except json.JSONDecodeError as e:
                raise TffaceError(f"{c}: not valid JSON ({e})") from None
    raise TffaceError(f"{path}: no tfface export metadata found (looked for "
                      f"{', '.join(str(c) for c in candidates)}); export with `tfface export`")


class _ExportedRunner(Runner):
    """Shared set-up of runners for exported files: decoder and image size from the metadata."""

    def __init__(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
        from tfface.models.presets import morphable_asset

        self.path = Path(path)
        self.metadata = metadata if metadata is not None else find_metadata(self.path)
        md = self.metadata
        self.name = f"{md['name']}:{self.path.name}"
        self.image_size = int(md["input"]["image_size"])
        stats = ParamStats(np.asarray(md["params"]["mean"], np.float32), np.asarray(md["params"]["std"], np.float32))
        self.decoder = ParamDecoder(stats, morphable_asset(md["morphable_model"]), self.image_size)
        self.outputs = tuple(md["model_outputs"])
        self.attribute_names = list(md.get("attribute_names") or [])
        self.verification_threshold = md.get("verification_threshold")
        self.verification_far = md.get("verification_far")
        self.attribute_thresholds = list(md.get("attribute_thresholds") or [])
        self.identity_template = identity_template(md)

    @property
    def _output_dims(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v[1:]) for k, v in self.metadata["output_shapes"].items()}


class SavedModelRunner(_ExportedRunner):
    """A SavedModel written by `tfface export`, through its `serving_default` signature."""

    def __init__(self, path: str | os.PathLike, signature: str = "serving_default") -> None:
        import tensorflow as tf

        path = _saved_model_dir(Path(path))
        super().__init__(path)
        self.loaded = tf.saved_model.load(str(path))
        if signature not in self.loaded.signatures:
            raise TffaceError(f"{path}: no signature {signature!r} (has {sorted(self.loaded.signatures)})")
        self.signature = self.loaded.signatures[signature]

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        out = self.signature(images=crops)
        return {k: out[k].numpy() for k in self.outputs}


def _saved_model_dir(path: Path) -> Path:
    """A SavedModel folder, or the newest numbered version inside a TF Serving base folder."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((p for p in path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").is_file()),
                      key=lambda p: int(p.name))
    if not versions:
        raise TffaceError(f"{path}: not a SavedModel folder (no saved_model.pb, no numbered version folder)")
    return versions[-1]


class TFLiteRunner(_ExportedRunner):
    """A .tflite file from `tfface export`, run with ai_edge_litert. The file outputs normalised params
    (see tfface.export.tflite); quantised inputs/outputs are (de)quantised with their own scale/zero, and
    a float32 input (the int16x8 file) gets the uint8 crop's 0..255 values as float32."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None, xnnpack: bool = True) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        super().__init__(path)
        # xnnpack=False: TFLite's own kernels only (for benchmarks; XNNPACK has no int16 kernels anyway)
        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads,
                                           experimental_op_resolver_type=resolver)
        except ValueError as e:
            raise TffaceError(f"{self.path}: not a valid TFLite model ({e})") from None
        self._input = self.interpreter.get_input_details()[0]
        by_name = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        names = self.metadata["tflite"]["output_names"]
        missing = [n for n in names.values() if n not in by_name]
        if missing:
            raise TffaceError(f"{self.path}: outputs {missing} not in the file (has {sorted(by_name)}); "
                              "is metadata.json from the same export?")
        self._output_index = {k: by_name[n] for k, n in names.items()}
        self._batch = 0

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        it, inp = self.interpreter, self._input
        if len(crops) != self._batch:
            it.resize_tensor_input(inp["index"], list(crops.shape))
            it.allocate_tensors()
            self._batch = len(crops)
        it.set_tensor(inp["index"], _quantize(crops, inp))
        it.invoke()
        details = {d["index"]: d for d in it.get_output_details()}
        out = {k: _dequantize(it.get_tensor(i), details[i]) for k, i in self._output_index.items()}
        stats = self.decoder.param_stats
        out["params"] = stats.denormalize(out.pop("params_normalized")).astype(np.float32)
        return {k: out[k] for k in self.outputs}


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.uint8 and x.dtype == np.uint8:
        scale, zero = detail["quantization"]
        if scale in (0.0, 1.0) and zero == 0:
            return x
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x.astype(np.float32) / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(x: np.ndarray, detail: dict) -> np.ndarray:
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    return ((x.astype(np.float32) - zero) * scale).astype(np.float32)


class OnnxRunner(_ExportedRunner):
    """An .onnx file from `tfface export`, run with ONNX Runtime on the CPU."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__(path)
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own untyped errors for bad files
            raise TffaceError(f"{self.path}: not a valid ONNX model ({e})") from None
        self._input = self.session.get_inputs()[0].name
        self._names = [o.name for o in self.session.get_outputs()]

    def _run(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        out = dict(zip(self._names, self.session.run(None, {self._input: crops})))
        return {k: np.asarray(out[k], np.float32) for k in self.outputs}


@model_file_errors
def load_runner(spec: str | os.PathLike = "tfface_mb05_3ddfa", num_threads: int | None = None,
                runtime: str = "auto") -> Runner:
    """Open a preset name/folder, SavedModel folder, TF Serving base folder, .tflite or .onnx file.

    A preset runs its shipped `model.tflite` on LiteRT (no TensorFlow import) unless `runtime="keras"`
    or the folder has no such file (a preset saved by `save_preset` before packaging)."""
    if runtime not in RUNTIMES:
        raise TffaceError(f"runtime must be one of {RUNTIMES}. Received: {runtime!r}")
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in (".tflite", ".onnx"):
        if not path.is_file():
            raise TffaceError(f"{path}: no such file")
        return TFLiteRunner(path, num_threads) if suffix == ".tflite" else OnnxRunner(path, num_threads)
    if path.is_dir() and not (path / "config.json").is_file():
        if (path / METADATA_FILE).is_file() and not (path / "saved_model.pb").is_file():
            md = json.loads((path / METADATA_FILE).read_text())
            sm = md.get("files", {}).get("saved_model")
            if sm:  # an export folder: its SavedModel
                return SavedModelRunner(path / sm)
        return SavedModelRunner(path)
    if runtime != "keras":
        from tfface.models.presets import preset_dir

        shipped = preset_dir(spec) / PRESET_RUNTIME_FILE
        if shipped.is_file():
            return TFLiteRunner(shipped, num_threads)
        if runtime == "litert":
            raise TffaceError(f"preset {spec}: no {PRESET_RUNTIME_FILE} (make it with "
                              "`python -m tfface.models.packaging PRESET`)")
    return KerasRunner(str(spec))
