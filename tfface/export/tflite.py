"""TFLite conversion: fp32, fp16 (float16 weights) and full-integer int8, TFLite built-in ops only.

All three output the network's *normalised* params ("params_normalized"; params = it * std + mean with
metadata.json's mean/std, which `tfface.runtimes.TFLiteRunner` applies): the converter folds a
de-normalisation into the last layer's weights, where stds up to ~1e5 overflow float16 and leave int8
one per-tensor scale for values six orders of magnitude apart.

int8: every op between the uint8 input and the outputs runs in int8 (weights per-channel, activations
per-tensor, calibrated on real face crops); the input stays uint8 (the crop itself: the model casts and
quantises it), and the outputs are dequantised to float32 inside the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf

from tfface.errors import TffaceError
from tfface.export.graph import ServingModule

TFLITE_KINDS = ("fp32", "fp16", "int8")


def convert_tflite(module: ServingModule, kind: str, representative: np.ndarray | None = None) -> bytes:
    """The runner contract (uint8 crops -> params [+ heads]) as a .tflite flatbuffer."""
    if kind not in TFLITE_KINDS:
        raise ValueError(f"kind must be one of {TFLITE_KINDS}. Received: kind={kind!r}")
    fn = module.network_function(denormalize=False)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn])  # no trackable: variables are frozen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if kind == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif kind == "int8":
        if representative is None or len(representative) == 0:
            raise TffaceError("int8 export needs representative face crops (--representative DIR)")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    data = converter.convert()
    check_builtin_ops(data)
    return data


def output_names(module: ServingModule) -> dict[str, str]:
    """Output key -> tensor name in the .tflite file (the converter keeps the graph's names)."""
    fn = module.network_function(denormalize=False)
    return {k: t.name.split(":")[0] for k, t in fn.structured_outputs.items()}


def _representative(crops: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    def gen():
        for crop in crops:
            yield [crop[None].astype(np.uint8)]

    return gen


def op_names(model: bytes | str | Path) -> list[str]:
    """The operator codes a .tflite flatbuffer uses (e.g. CONV_2D; FlexXxx / custom names for non-builtins)."""
    from tensorflow.lite.python import schema_py_generated as schema

    data = Path(model).read_bytes() if isinstance(model, (str, Path)) else model
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
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
