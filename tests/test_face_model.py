"""FaceModel: starts exactly from the converted regressor, round-trips config and .keras, freezes parts."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import SAMPLE_IMAGE

from tfface.io.images import read_image
from tfface.losses.geometry import FaceGeometry
from tfface.models.backbones import BACKBONES, build_backbone
from tfface.models.face_model import FaceModel
from tfface.models.heads import CosineClassifier

# Two face boxes of the sample photo (roughly the detector's squares) give real face crops.
ROIS = np.array([[165.0, 75.0, 355.0, 265.0], [520.0, 85.0, 700.0, 265.0]], np.float32)


@pytest.fixture(scope="module")
def crops(default_preset):
    return default_preset.preprocessor(read_image(SAMPLE_IMAGE), ROIS)


def tiny(**kwargs) -> FaceModel:
    return FaceModel(build_backbone("mobilenet_v1", 32, 0.25), id_latent_dim=8, res_latent_dim=4,
                     **{"num_ids": 5, **kwargs})


@pytest.mark.parametrize("branches", [False, True])
def test_from_preset_reproduces_the_regressor_and_the_3dmm(default_preset, crops, branches):
    model = FaceModel.from_preset(param_branches=branches, num_ids=7)
    out = model(crops, training=False)
    ref = default_preset.model(crops, training=False).numpy()
    np.testing.assert_allclose(out["params"].numpy(), ref, atol=1e-5)
    assert out["id_logits"].shape == (2, 7) and out["attributes"].shape == (2, 40)
    np.testing.assert_allclose(np.linalg.norm(out["embedding"].numpy(), axis=-1), 1.0, atol=1e-5)
    # The decoders start as the 3DMM bases: s_mean + ds_id + ds_res = the 3DMM shape of the params.
    geom = FaceGeometry(default_preset.param_stats, default_preset.shape_model, 120)
    expected = geom.vertices(geom.denormalize(ref)).numpy()
    shape = geom.mean.numpy() + out["shape_id"].numpy() + out["shape_res"].numpy()
    assert np.abs(shape - expected).max() * geom.shape_scale < 1e-4  # crop pixels
    # ... and the identity part alone is the identity offset A_id alpha_id.
    _, alpha_id, _ = geom.split(geom.denormalize(ref))
    np.testing.assert_allclose(out["shape_id"].numpy() * geom.shape_scale,
                               geom.offsets(geom.id_basis, alpha_id).numpy() * geom.shape_scale, atol=1e-4)


def test_config_and_keras_file_round_trip(tmp_path):
    model = tiny(param_branches=True, id_head="cosface", dropout=0.1)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    expected = model(x, training=False)
    clone = FaceModel.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, FaceModel) and isinstance(loaded.get_layer("id_classifier"), CosineClassifier)
    got = loaded(x, training=False)
    for key in expected:
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), atol=1e-6)


def test_a_saved_model_loads_with_only_the_face_model_imported(tmp_path):
    # What a user does with `tfface train`'s model.keras: the backbone classes register on load.
    import subprocess
    import sys

    model = tiny()
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(2).normal(size=(1, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, keras, numpy as np, tfface.models.face_model; "
            "m = keras.saving.load_model(sys.argv[1]); print(float(m(np.load(sys.argv[2]))['params'].numpy().sum()))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras"), str(tmp_path / "x.npy")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) == pytest.approx(float(model(x)["params"].numpy().sum()), abs=1e-4)


def test_keras_applications_backbone_round_trips(tmp_path):
    model = FaceModel(build_backbone("mobilenet_v3_small", 32, 0.5), id_head="softmax", num_ids=3)
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 3)).astype(np.float32)
    model.save(tmp_path / "v3.keras")
    loaded = keras.saving.load_model(tmp_path / "v3.keras")
    np.testing.assert_allclose(loaded(x)["params"].numpy(), model(x)["params"].numpy(), atol=1e-5)
    assert set(BACKBONES) == {"mobilenet_v1", "mobilenet_v3_small", "mobilenet_v3_large", "resnet50"}


def test_trainable_parts_and_argument_checks():
    model = tiny(freeze_batch_norm=True)
    model.set_trainable_parts(["decoders"])
    names = {v.path.split("/")[0] for v in model.trainable_variables}
    assert names == {"id_decoder", "res_decoder"}
    model.set_trainable_parts(["id_classifier"])  # alone, though "identity" holds it too
    assert {v.path.split("/")[0] for v in model.trainable_variables} == {"id_classifier"}
    model.set_trainable_parts(["identity"])
    assert {v.path.split("/")[0] for v in model.trainable_variables} == {"id_latent", "id_classifier"}
    model.set_trainable_parts(["all"])
    assert not any("_bn" in v.path for v in model.trainable_variables)  # BN stays frozen
    assert any(v.path.startswith("id_classifier") for v in model.trainable_variables)
    with pytest.raises(ValueError, match="unknown trainable part"):
        model.set_trainable_parts(["heads"])
    with pytest.raises(ValueError, match="num_attributes is out of range. Received: num_attributes=0"):
        tiny(num_attributes=0)
    with pytest.raises(ValueError, match="id_head must be one of"):
        tiny(id_head="sphereface")
    with pytest.raises(ValueError, match="backbone must be one of"):
        build_backbone("vgg16")


def test_identity_branch_trains_apart_from_the_3dmm_path():
    from tfface.models.backbones import MobileNetV1Backbone

    model = FaceModel(MobileNetV1Backbone(0.25, 64), branch_blocks=3, id_latent_dim=16, id_hidden_dim=8)
    model.set_trainable_parts(["branch", "attributes", "identity"])
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert {"branch_dw5_6_dw", "branch_dw6_sep", "id_hidden", "id_latent", "fc_attributes"} <= trainable
    assert not trainable & {"fc_param", "dw6_sep", "res_latent"}  # the 3DMM path stays as it is
    assert model(np.zeros((1, 64, 64, 3), np.float32))["embedding"].shape == (1, 16)
    for bad in (-1, 14):
        with pytest.raises(ValueError, match="branch_blocks"):
            FaceModel(MobileNetV1Backbone(0.25, 64), branch_blocks=bad)


def test_gdc_pooling_starts_as_the_average_then_learns_where_features_lie(crops, tmp_path):
    from tfface.models.backbones import MobileNetV1Backbone

    avg, gdc = (FaceModel.from_preset(branch_blocks=13, id_latent_dim=16, branch_pooling=p) for p in ("avg", "gdc"))
    for layer in avg.layers:  # the same random heads; gdc's kernel keeps its initial value
        if layer.weights:
            gdc.get_layer(layer.name).set_weights(layer.get_weights())
    ref, out = avg(crops, training=False), gdc(crops, training=False)
    for key in ("params", "attributes", "embedding"):  # a widened "avg" run continues where it ended
        np.testing.assert_allclose(out[key].numpy(), ref[key].numpy(), atol=1e-5)
    kernel = gdc.get_layer("branch_gdc").get_weights()[0]
    assert kernel.shape == (4, 4, 512, 1) and np.allclose(kernel, 1 / 16)  # 120 px / 32 -> 4x4 x 512 channels
    # one weight per position: weighting one corner 3x adds 2/16 of that corner's features to what
    # identity and attributes read, and leaves the 3DMM params alone
    pooled = keras.Model(gdc.input, [gdc.get_layer("branch_gdc_flat").output, gdc.get_layer("branch_gdc").input])
    before, fmap = (t.numpy() for t in pooled(crops, training=False))
    kernel[0, 0] *= 3.0
    gdc.get_layer("branch_gdc").set_weights([kernel])
    after = pooled(crops, training=False)[0].numpy()
    assert np.abs(fmap[:, 0, 0]).max() > 0.1  # real face crops: the corner's features are not zero
    np.testing.assert_allclose(after - before, fmap[:, 0, 0] / 8, atol=1e-4)
    moved = gdc(crops, training=False)
    assert np.abs(moved["embedding"].numpy() - ref["embedding"].numpy()).max() > 1e-3
    np.testing.assert_allclose(moved["params"].numpy(), ref["params"].numpy(), atol=1e-6)
    gdc.set_trainable_parts(["branch"])
    assert "branch_gdc" in {w.path.split("/")[0] for w in gdc.trainable_weights}
    gdc.save(tmp_path / "gdc.keras")
    loaded = keras.saving.load_model(tmp_path / "gdc.keras")
    assert loaded.branch_pooling == "gdc"
    np.testing.assert_allclose(loaded(crops)["embedding"].numpy(), moved["embedding"].numpy(), atol=1e-5)
    # the last stride-2 block keeping its resolution: an 8x8 map to pool, the same 3DMM path
    fine = FaceModel.from_preset(branch_blocks=13, id_latent_dim=16, branch_pooling="gdc", branch_last_stride=1)
    assert fine.get_layer("branch_gdc").get_weights()[0].shape == (8, 8, 512, 1)
    assert fine.get_layer("branch_dw5_6_dw").strides == (1, 1) and fine.backbone.get_layer("dw5_6_dw").strides == (2, 2)
    np.testing.assert_allclose(fine(crops)["params"].numpy(), ref["params"].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="branch_last_stride must be 1 or 2"):
        FaceModel(MobileNetV1Backbone(0.25, 64), branch_blocks=3, branch_last_stride=4)
    with pytest.raises(ValueError, match="branch_pooling must be one of"):
        FaceModel(MobileNetV1Backbone(0.25, 64), branch_blocks=3, branch_pooling="max")
    with pytest.raises(ValueError, match="need an identity/attribute branch"):
        FaceModel(MobileNetV1Backbone(0.25, 64), branch_pooling="gdc")


def test_mirror_average_reads_the_mirror_image_in_the_branch_only(crops, tmp_path):
    """The shipped joint preset's weights with `mirror_average`: attributes are exactly the mean of the
    plain model's logits on the crop and its mirror image (the head is linear on the averaged features),
    branch outputs no longer change when the crop is mirrored, and the 3DMM path is untouched."""
    from tfface.models.backbones import MobileNetV1Backbone
    from tfface.models.presets import inference_copy, load_preset

    plain = load_preset("tfface_mb05_joint").model
    plain = inference_copy(plain, mirror_average=False) if plain.mirror_average else plain
    mirror = inference_copy(plain, mirror_average=True)
    assert mirror.mirror_average and len(mirror.weights) == len(plain.weights)  # no new weights
    x = np.asarray(crops, np.float32)
    flipped = x[:, :, ::-1]
    ref, ref_flipped = plain(x, training=False), plain(flipped, training=False)
    out, out_flipped = mirror(x, training=False), mirror(flipped, training=False)
    # alone, the network is not mirror-symmetric: measured up to 1.2 in a logit, 1 - cos 0.006-0.012
    assert np.abs(ref["attributes"].numpy() - ref_flipped["attributes"].numpy()).max() > 0.3
    np.testing.assert_allclose(out["attributes"].numpy(),
                               0.5 * (ref["attributes"].numpy() + ref_flipped["attributes"].numpy()), atol=1e-4)
    for key in ("attributes", "embedding"):
        np.testing.assert_allclose(out_flipped[key].numpy(), out[key].numpy(), atol=1e-4)
    np.testing.assert_allclose(out["params"].numpy(), ref["params"].numpy(), atol=1e-6)
    assert np.abs(out_flipped["params"].numpy() - out["params"].numpy()).max() > 0.05  # pose turns with the mirror
    one = mirror(x[:1], training=False)  # batch size 1: the two views are split back correctly
    np.testing.assert_allclose(one["embedding"].numpy(), out["embedding"].numpy()[:1], atol=1e-5)
    mirror.save(tmp_path / "mirror.keras")
    loaded = keras.saving.load_model(tmp_path / "mirror.keras")
    assert loaded.mirror_average
    np.testing.assert_allclose(loaded(x)["embedding"].numpy(), out["embedding"].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="need an identity/attribute branch"):
        FaceModel(MobileNetV1Backbone(0.25, 64), mirror_average=True)
