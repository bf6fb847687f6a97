"""TFLite conversion: fp32, fp16 (float16 weights), int8 and int16x8, TFLite built-in ops only.

All four output the network's *normalised* params ("params_normalized"; params = it * std + mean with
metadata.json's mean/std, which `tfface.runtimes.TFLiteRunner` applies): the converter folds a
de-normalisation into the last layer's weights, where stds up to ~1e5 overflow float16 and leave int8
one per-tensor scale for values six orders of magnitude apart.

int8: every op between the uint8 input and the fully-connected heads runs in int8 (weights per-channel,
activations per-tensor, calibrated on real face crops); the input stays uint8 (the crop itself: the model
casts and quantises it). The heads (fc_param: 512 x 62) run in float32 after a DEQUANTIZE: an int8 output
has one scale for all 62 normalised params, fixed by the calibration crops' range, so larger poses than
calibration saw are clipped, and a full-integer file costs ~1.3 NME points on AFLW2000-3D against ~0 with
float heads. `int8_full_integer=True` gives the full-integer file (for integer-only accelerators).

int16x8: int8 weights (per-channel) and int16 activations (65,536 levels instead of 256, the params output
included), calibrated on the same crops; every op is integer and the NME stays at Keras'. Its quantiser
has no int16 CAST, so this file takes float32 crops (the same RGB 0..255 values, not normalised):
QUANTIZE to int16 is its first op, DEQUANTIZE to float32 its last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf

from tfface.errors import TffaceError
from tfface.export.formats import QUANTISED_FORMATS, TFLITE_KINDS, input_dtype
from tfface.export.graph import ServingModule
from tfface.quiet import native_stderr_silenced


def convert_tflite(module: ServingModule, kind: str, representative: np.ndarray | None = None,
                   int8_full_integer: bool = False) -> bytes:
    """The runner contract (RGB crops -> params [+ heads]) as a .tflite flatbuffer; the input dtype is
    `tfface.export.formats.input_dtype` of the format."""
    if kind not in TFLITE_KINDS:
        raise ValueError(f"kind must be one of {TFLITE_KINDS}. Received: kind={kind!r}")
    dtype = tf.as_dtype(input_dtype(f"tflite_{kind}"))
    fn = module.network_function(denormalize=False, input_dtype=dtype)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn])  # no trackable: variables are frozen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if kind == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif f"tflite_{kind}" in QUANTISED_FORMATS:
        if representative is None or len(representative) == 0:
            raise TffaceError(f"{kind} export needs representative face crops (--representative DIR)")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(representative, dtype.as_numpy_dtype)
        if kind == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            converter.inference_input_type = tf.uint8
        else:  # only the 16x8 set: an op without an int16 kernel fails the conversion instead of staying float
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_output_type = tf.float32
    float_heads = kind == "int8" and not int8_full_integer
    try:
        with native_stderr_silenced():  # the converter's C++ warnings ("Ignored output_format", ...)
            data = _with_float_heads(converter) if float_heads else converter.convert()
    except (RuntimeError, ValueError) as e:  # the converter's own message, without its deep traceback
        raise TffaceError(f"tflite_{kind}: the TFLite converter failed: {str(e).strip().splitlines()[-1]}") from None
    check_builtin_ops(data)
    return data


def _with_float_heads(converter: tf.lite.TFLiteConverter) -> bytes:
    """Quantise with every FULLY_CONNECTED op (the heads) left in float32, through the quantisation
    debugger's denylist (calibration uses the converter's representative dataset)."""
    import warnings

    with warnings.catch_warnings():  # the debugger's own tf.lite.Interpreter use warns about its deprecation
        warnings.simplefilter("ignore", UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                             debug_dataset=converter.representative_dataset)
        heads = op_outputs(debugger.calibrated_model, "FULLY_CONNECTED")
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=heads)
        return debugger.get_nondebug_quantized_model()


def output_names(module: ServingModule) -> dict[str, str]:
    """Output key -> tensor name in the .tflite file (the converter keeps the graph's names)."""
    fn = module.network_function(denormalize=False)
    return {k: t.name.split(":")[0] for k, t in fn.structured_outputs.items()}


def _representative(crops: np.ndarray, dtype: type = np.uint8) -> Callable[[], Iterable[list[np.ndarray]]]:
    def gen():
        for crop in crops:
            yield [crop[None].astype(dtype)]

    return gen


def _schema_model(model: bytes | str | Path):
    from tensorflow.lite.python import schema_py_generated as schema

    data = Path(model).read_bytes() if isinstance(model, (str, Path)) else model
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))


def op_outputs(model: bytes | str | Path, op: str) -> list[str]:
    """Names of the first output tensor of every `op` (a builtin name, e.g. FULLY_CONNECTED) in a model."""
    from tensorflow.lite.python import schema_py_generated as schema

    m = _schema_model(model)
    code = getattr(schema.BuiltinOperator, op)
    wanted = {i for i, c in enumerate(m.operatorCodes) if max(c.builtinCode, c.deprecatedBuiltinCode) == code}
    names = []
    for graph in m.subgraphs:
        for o in graph.operators:
            if o.opcodeIndex in wanted:
                name = graph.tensors[o.outputs[0]].name
                names.append(name.decode() if isinstance(name, bytes) else str(name))
    return names


def op_names(model: bytes | str | Path) -> list[str]:
    """The operator codes a .tflite flatbuffer uses (e.g. CONV_2D; FlexXxx / custom names for non-builtins)."""
    from tensorflow.lite.python import schema_py_generated as schema

    m = _schema_model(model)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    result = []
    for code in m.operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
            result.append(custom)
        else:
            result.append(names.get(builtin, f"builtin_{builtin}"))
    return sorted(set(result))


def check_builtin_ops(model: bytes | str | Path) -> list[str]:
    """Raise when a model needs the Flex delegate or custom ops (absent from the plain TFLite runtime)."""
    ops = op_names(model)
    from tensorflow.lite.python import schema_py_generated as schema

    builtins = set(vars(schema.BuiltinOperator))
    bad = [op for op in ops if op not in builtins]
    if bad:
        raise TffaceError(f"TFLite model needs non-builtin ops {bad} (Flex/custom); export refused")
    return ops


def tensor_types(model: bytes | str | Path) -> dict[str, str]:
    """Input and output tensor dtypes of a .tflite model, for the report."""
    from ai_edge_litert.interpreter import Interpreter

    kw = {"model_path": str(model)} if isinstance(model, (str, Path)) else {"model_content": model}
    it = Interpreter(**kw)
    return {**{f"input:{d['name']}": np.dtype(d["dtype"]).name for d in it.get_input_details()},
            **{f"output:{d['name']}": np.dtype(d["dtype"]).name for d in it.get_output_details()}}
