"""The exported computation: uint8 RGB crops -> de-normalised params (+ attributes, embedding), and
the `reconstruct` decoding (68 landmarks in crop pixels, pose) as TensorFlow ops.

Colour order, normalisation and de-normalisation live inside the graph so every runtime has the
same contract: a client sends the uint8 RGB crop and gets 3DMM parameters back.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfface.morphable.geometry import ShapeDecoder, apply_camera, crop_to_image
from tfface.morphable.params import camera_to_srt, split_params
from tfface.morphable.pose import euler_angles
from tfface.runtimes import OUTPUTS

HEADS = ("attributes", "embedding")  # optional outputs, each with its own serving signature


def model_outputs(model: Any) -> tuple[str, ...]:
    """The runner outputs a Keras model has: ("params",) for a ParamRegressor, more for a FaceModel."""
    out = model.output
    if not isinstance(out, dict):
        return ("params",)
    if "params" not in out:
        raise ValueError(f"a model to export needs a 'params' output. Received outputs: {sorted(out)}")
    return tuple(k for k in OUTPUTS if k in out)


def rgb_input_model(model: Any) -> Any:
    """A copy of a BGR-input task model (ParamRegressor or FaceModel) that takes RGB: the first
    convolution's kernel gets its input channels reversed, so no channel swap op is needed."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    conv = copy.backbone.get_layer("conv1")
    conv.set_weights([w[:, :, ::-1, :] if w.ndim == 4 else w for w in conv.get_weights()])
    return copy


class ServingModule(tf.Module):
    """Holds the Keras model (its variables) and the decoding constants for tf.saved_model.save."""

    def __init__(self, preset: Any) -> None:
        super().__init__(name="tfface_serving")
        pre = preset.preprocessor
        # A BGR network gets its colour swap folded into the first convolution (exact): the in-graph
        # swap, a STRIDED_SLICE, cost LiteRT ~25 % of the network's time (2.45 vs 1.86 ms, one thread).
        self.model = rgb_input_model(preset.model) if pre.channel_order == "bgr" else preset.model
        self.outputs = model_outputs(preset.model)
        self.image_size = int(pre.image_size)
        self._offset, self._scale = float(pre.offset), float(pre.scale)
        # NumPy, made constants inside each trace: captured eager tensors would become ONNX inputs.
        self._mean, self._std = preset.param_stats.mean, preset.param_stats.std
        self._shapes = ShapeDecoder(preset.shape_model.landmark_model())
        self.input_spec = self.spec(tf.uint8)

    def spec(self, dtype: tf.DType = tf.uint8) -> tf.TensorSpec:
        """The crop input [N, S, S, 3]: uint8 RGB, or float32 holding the same 0..255 RGB values (for
        16x8 TFLite, whose quantiser has no int16 CAST)."""
        return tf.TensorSpec([None, self.image_size, self.image_size, 3], dtype, name="images")

    def network(self, images: tf.Tensor, denormalize: bool = True) -> dict[str, tf.Tensor]:
        """uint8 (or float32 0..255) RGB crops -> {"params" de-normalised, "attributes" probabilities,
        "embedding"}; with `denormalize=False` the network's own "params_normalized" instead of "params"."""
        x = tf.cast(images, tf.float32) if images.dtype != tf.float32 else images
        x = (x - self._offset) * self._scale  # RGB: self.model takes RGB (see rgb_input_model)
        out = self.model(x, training=False)
        out = out if isinstance(out, dict) else {"params": out}
        if denormalize:
            result = {"params": tf.identity(out["params"] * tf.constant(self._std) + tf.constant(self._mean),
                                            name="params")}
        else:
            result = {"params_normalized": tf.identity(out["params"], name="params_normalized")}
        if "attributes" in self.outputs:
            result["attributes"] = tf.sigmoid(out["attributes"], name="attributes")
        if "embedding" in self.outputs:
            result["embedding"] = tf.identity(out["embedding"], name="embedding")
        return result

    def decode(self, params: tf.Tensor) -> dict[str, tf.Tensor]:
        """De-normalised params -> 68 landmarks (N, 68, 3) in crop pixels (x right, y down) and pose
        (N, 3) yaw, pitch, roll in degrees: the same rule as `tfface.inference.decode` with the crop
        box [0, 0, S, S]."""
        camera, alpha_id, alpha_exp = split_params(params, self._shapes.model.num_id)
        points = apply_camera(camera, self._shapes.vertices(alpha_id, alpha_exp))
        s = float(self.image_size)
        box = tf.tile(tf.constant([[0.0, 0.0, s, s]]), [tf.shape(params)[0], 1])
        _, rotation, _ = camera_to_srt(camera)
        return {"landmarks": crop_to_image(points, box, self.image_size), "pose": euler_angles(rotation)}

    def signatures(self) -> dict[str, Any]:
        """serving_default (everything), reconstruct, and one signature per optional head."""
        spec = self.input_spec

        @tf.function(input_signature=[spec])
        def serving_default(images):
            out = self.network(images)
            return {**out, **self.decode(out["params"])}

        @tf.function(input_signature=[spec])
        def reconstruct(images):
            params = self.network(images)["params"]
            return {"params": params, **self.decode(params)}

        sigs = {"serving_default": serving_default, "reconstruct": reconstruct}
        for head in HEADS:
            if head in self.outputs:
                sigs[head] = _head_signature(self, head)
        return sigs

    def network_function(self, denormalize: bool = True,
                         input_dtype: tf.DType = tf.uint8) -> tf.types.experimental.ConcreteFunction:
        """crops -> params [+ heads] for TFLite (normalised params, see tfface.export.tflite) and ONNX
        (the runner contract) conversion; `input_dtype=tf.float32` for the float-input variant."""
        return tf.function(lambda images: self.network(images, denormalize),
                           input_signature=[self.spec(input_dtype)]).get_concrete_function()


def _head_signature(module: ServingModule, head: str):
    @tf.function(input_signature=[module.input_spec])
    def head_fn(images):
        return {head: module.network(images)[head]}

    return head_fn
