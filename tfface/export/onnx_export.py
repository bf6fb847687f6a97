"""ONNX export with tf2onnx from the same traced function as the SavedModel's network (fp32, the full
runner contract: uint8 crops in, de-normalised params out)."""

from __future__ import annotations

from pathlib import Path

from tfface.export.graph import ServingModule

ONNX_OPSET = 17


def write_onnx(module: ServingModule, path: Path, metadata_json: str, opset: int = ONNX_OPSET) -> Path:
    """Convert, name the outputs as the runners do, and embed the metadata JSON as a model property."""
    import tensorflow as tf
    import tf2onnx

    fn = tf.function(module.network, input_signature=[module.input_spec])
    traced = module.network_function().structured_outputs
    model, _ = tf2onnx.convert.from_function(fn, input_signature=[module.input_spec], opset=opset,
                                             output_path=None)
    by_tensor = {t.name: k for k, t in traced.items()}  # when tf2onnx keeps graph tensor names
    for out in list(model.graph.output):
        if out.name not in traced and out.name in by_tensor:
            _rename_output(model, out.name, by_tensor[out.name])
    missing = set(traced) - {o.name for o in model.graph.output}
    if missing:
        raise RuntimeError(f"ONNX outputs {[o.name for o in model.graph.output]} lack {sorted(missing)}")
    prop = model.metadata_props.add()
    prop.key, prop.value = "tfface_metadata", metadata_json
    path.write_bytes(model.SerializeToString())
    return path


def _rename_output(model, old: str, new: str) -> None:
    if old == new:
        return
    for node in model.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
    for out in model.graph.output:
        if out.name == old:
            out.name = new


def opset_of(path: Path) -> int:
    import onnx

    model = onnx.load(str(path))
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
