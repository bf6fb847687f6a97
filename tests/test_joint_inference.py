"""Joint FaceModel presets end to end: save/load, reconstruct with attributes and embedding, verify, edit.

The preset is built from the default regressor (`FaceModel.from_preset`: fc_param, latents and shape
decoders copied from it, attribute head untrained), so its 3DMM outputs must equal the regressor's.
"""

from __future__ import annotations

import json
import shutil

import cv2
import keras
import numpy as np
import pytest

from conftest import SAMPLE_IMAGE
from tfface.cli.main import main
from tfface.models.attributes import ATTRIBUTE_NAMES
from tfface.errors import TffaceError
from tfface.io.images import read_image
from tfface.models import presets
from tfface.models.face_model import FaceModel
from tfface.models.presets import load_preset, save_preset

NUM_IDS = 300
THRESHOLD = 0.5


@pytest.fixture(scope="module")
def joint(tmp_path_factory, default_preset):
    """(preset folder, the training model with its identity classifier, size of its full weights file)."""
    keras.utils.set_random_seed(0)
    model = FaceModel.from_preset(num_ids=NUM_IDS)
    root = tmp_path_factory.mktemp("joint")
    folder = save_preset(model, root / "preset", default_preset.param_stats, default_preset.preprocessor,
                         extra={"verification_threshold": THRESHOLD, "description": "test preset"})
    model.save_weights(root / "full.weights.h5")
    return folder, model, (root / "full.weights.h5").stat().st_size


@pytest.fixture(scope="module")
def joint_reconstructor(joint):
    from tfface.inference.reconstructor import FaceReconstructor

    rec = FaceReconstructor(joint[0])
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def editor(joint):
    from tfface.inference.editing import AttributeEditor

    ed = AttributeEditor(joint[0])
    yield ed
    ed.close()


@pytest.fixture(scope="module")
def halves(tmp_path_factory, joint_reconstructor):
    """The sample photo cut between its two faces: one person per file."""
    image = read_image(SAMPLE_IMAGE)
    boxes = sorted((f.box for f in joint_reconstructor(image)), key=lambda b: float(b[0]))
    cut = int((boxes[0][2] + boxes[1][0]) / 2)
    root = tmp_path_factory.mktemp("halves")
    paths = root / "left.png", root / "right.png"
    for path, part in zip(paths, (image[:, :cut], image[:, cut:])):
        cv2.imwrite(str(path), cv2.cvtColor(part, cv2.COLOR_RGB2BGR))
    return paths


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _normalised(stats, params: np.ndarray) -> np.ndarray:
    return (np.asarray(params, np.float64) - stats.mean) / stats.std


# --- presets ----------------------------------------------------------------------------------------

def test_round_trip_gives_identical_outputs_without_the_classifier(joint, default_preset, joint_reconstructor):
    folder, model, full_size = joint
    loaded = load_preset(folder)
    assert isinstance(loaded.model, FaceModel) and loaded.model.num_ids == 0 and model.num_ids == NUM_IDS
    assert "id_logits" not in loaded.model.output and "id_logits" in model.output
    config = json.loads((folder / "config.json").read_text())
    assert config["task"] == "FaceModel" and config["attribute_names"] == list(ATTRIBUTE_NAMES)
    assert config["verification_threshold"] == THRESHOLD and config["morphable_model"] == "bfm_3ddfa_68"
    assert loaded.preprocessor == default_preset.preprocessor
    np.testing.assert_array_equal(loaded.param_stats.std, default_preset.param_stats.std)
    # real face crops of the sample photo
    image = read_image(SAMPLE_IMAGE)
    faces = joint_reconstructor(image)
    x = loaded.preprocessor.normalize(joint_reconstructor.crops(image, np.stack([f.roi_box for f in faces])))
    ours, theirs = loaded.model(x, training=False), model(x, training=False)
    assert set(ours) == {"params", "attributes", "embedding", "shape_id", "shape_res"}
    for key, value in ours.items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(theirs[key]), err_msg=key)
    # the classifier (NUM_IDS x 40 cosine weights) is not in the shipped file
    preset_size = (folder / "model.weights.h5").stat().st_size
    assert full_size - preset_size >= NUM_IDS * model.id_latent_dim * 4


def test_joint_preset_not_installed_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "presets").mkdir()
    monkeypatch.setattr(presets, "assets_dir", lambda: tmp_path)
    with pytest.raises(TffaceError, match="preset 'tfface_mb05_joint' is not installed yet"):
        load_preset("tfface_mb05_joint")


def test_save_preset_checks_its_parts(joint, default_preset, tmp_path):
    _, model, _ = joint
    stats, pre = default_preset.param_stats, default_preset.preprocessor
    with pytest.raises(TffaceError, match="would overwrite"):
        save_preset(model, tmp_path / "a", stats, pre, extra={"task": "x"})
    with pytest.raises(TffaceError, match="image_size 64"):
        save_preset(model, tmp_path / "b", stats, {**pre.get_config(), "image_size": 64})
    with pytest.raises(TffaceError, match="3 attribute_names"):
        save_preset(model, tmp_path / "c", stats, pre, extra={"attribute_names": ["a", "b", "c"]})
    assert not any(tmp_path.iterdir())


# --- reconstruct ------------------------------------------------------------------------------------

def test_reconstruct_json_has_attributes_and_embedding(joint, capsys, reconstructor, joint_reconstructor):
    rc, out, err = _cli(capsys, "reconstruct", SAMPLE_IMAGE, "--json", "--preset", joint[0])
    assert rc == 0, err
    printed = json.loads(out.strip().splitlines()[0])["faces"]
    regressor = reconstructor(read_image(SAMPLE_IMAGE))
    assert len(printed) == len(regressor) == 2
    for face, ref in zip(printed, regressor):
        assert list(face["attributes"]) == list(ATTRIBUTE_NAMES)
        probs = np.array(list(face["attributes"].values()))
        assert np.all((probs > 0) & (probs < 1)) and probs.std() > 0.01
        assert np.linalg.norm(face["embedding"]) == pytest.approx(1.0, abs=1e-4)
        # same 3DMM head as the regressor: same landmarks (JSON rounds to 0.01 px)
        np.testing.assert_allclose(face["landmarks_3d"], ref.landmarks, atol=0.011)
    # library: params to 1e-5 (normalised), and the attributes are the final crop's own outputs
    stats = reconstructor.decoder.param_stats
    image = read_image(SAMPLE_IMAGE)
    for face, ref in zip(joint_reconstructor(image), regressor):
        np.testing.assert_allclose(_normalised(stats, face.params), _normalised(stats, ref.params), atol=1e-5)
        x = joint_reconstructor.preset.preprocessor.normalize(joint_reconstructor.crops(image, face.roi_box[None]))
        logits = np.asarray(joint_reconstructor.preset.model(x, training=False)["attributes"])[0]
        np.testing.assert_allclose(list(face.attributes.values()), 1 / (1 + np.exp(-logits)), atol=1e-6)
    assert "attributes" not in regressor[0].to_json() and "embedding" not in regressor[0].to_json()


# --- verify -----------------------------------------------------------------------------------------

def test_verify_same_photo_is_the_same_person(joint, capsys):
    rc, out, err = _cli(capsys, "verify", SAMPLE_IMAGE, SAMPLE_IMAGE, "--preset", joint[0])
    assert rc == 0, err
    result = json.loads(out)
    assert result["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert result["same"] is True and result["threshold"] == THRESHOLD
    assert result["a"] == result["b"] == str(SAMPLE_IMAGE)


def test_verify_two_people_differ(joint, capsys, halves, joint_reconstructor):
    left, right = halves
    rc, out, err = _cli(capsys, "verify", left, right, "--preset", joint[0], "--threshold", "0.9999")
    assert rc == 0, err
    result = json.loads(out)
    embeddings = [joint_reconstructor(read_image(p))[0].embedding for p in halves]
    assert result["similarity"] == pytest.approx(float(embeddings[0] @ embeddings[1]), abs=1e-5)
    assert result["similarity"] < 0.999 and result["same"] is False and result["threshold"] == 0.9999


def test_verify_pairs_file_scores_every_pair_and_skips_bad_ones_in_one_line_each(capsys, halves, tmp_path):
    """`verify --pairs`: relative paths, tab or space separated; each good pair as the single-pair command
    scores it (the shipped preset), each bad photo or line one stderr line, and the batch goes on."""
    left, right = (tmp_path / "left.png", tmp_path / "right.png")
    shutil.copy(halves[0], left)
    shutil.copy(halves[1], right)
    (tmp_path / "corrupt.jpg").write_bytes(b"not a jpeg")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# left/right halves of the sample photo\nleft.png\tright.png\nleft.png left.png\n"
                     "corrupt.jpg left.png\nmissing.png right.png\nleft.png\n\n")
    rc, out, err = _cli(capsys, "verify", left, right)
    single = json.loads(out)
    rc, out, err = _cli(capsys, "verify", "--pairs", pairs)
    assert rc == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in results] == [2, 3]
    assert results[0]["similarity"] == pytest.approx(single["similarity"], abs=1e-6) and not results[0]["same"]
    assert results[1]["similarity"] == pytest.approx(1.0, abs=1e-5) and results[1]["same"]
    assert results[0]["far"] == 0.01 and results[0]["a"] == str(left)
    skipped = [line for line in err.splitlines() if line.startswith("tfface: skipped:")]
    assert len(skipped) == 3 and "Traceback" not in err
    assert f"{pairs}:4: {tmp_path / 'corrupt.jpg'}: cannot decode image" in skipped[1]
    assert f"{pairs}:5: {tmp_path / 'missing.png'}: file not found" in skipped[2]
    assert f"{pairs}:6: expected two photo paths, found 1" in skipped[0]
    assert err.strip().splitlines()[-1] == "tfface: verified 2 pairs (3 failed)"
    pairs.write_text("corrupt.jpg left.png\n")
    rc, out, err = _cli(capsys, "verify", "--pairs", pairs)
    assert rc == 1 and out == ""  # every pair failed
    rc, _, err = _cli(capsys, "verify", left, "--pairs", pairs)
    assert rc == 2 and "not both" in err


def test_verify_errors_are_one_line_naming_the_file(joint, capsys, tmp_path):
    blank, corrupt = tmp_path / "blank.png", tmp_path / "corrupt.jpg"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    corrupt.write_bytes(b"\xff\xd8\xff not a jpeg")
    no_threshold = tmp_path / "no_threshold"
    shutil.copytree(joint[0], no_threshold)
    config = json.loads((no_threshold / "config.json").read_text())
    del config["verification_threshold"]
    (no_threshold / "config.json").write_text(json.dumps(config))
    cases = [(("verify", SAMPLE_IMAGE, blank, "--preset", joint[0]), f"{blank}: no face found"),
             (("verify", corrupt, SAMPLE_IMAGE, "--preset", joint[0]), f"{corrupt}: cannot decode image"),
             (("verify", SAMPLE_IMAGE, SAMPLE_IMAGE, "--preset", "tfface_mb05_3ddfa", "--threshold", "0.3"),
              "has no 'embedding' output"),
             (("verify", SAMPLE_IMAGE, SAMPLE_IMAGE, "--preset", no_threshold), "no verification_threshold")]
    for args, message in cases:
        rc, out, err = _cli(capsys, *args)
        assert rc == 2 and out == "" and message in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# --- edit -------------------------------------------------------------------------------------------

def test_edit_moves_the_logit_by_exactly_the_amount(editor, joint_reconstructor):
    image = read_image(SAMPLE_IMAGE)
    edit = editor(image, "smiling", 2.5)
    k = ATTRIBUTE_NAMES.index("Smiling")
    assert edit.attribute == "Smiling" and edit.index == k
    assert edit.logits[1, k] - edit.logits[0, k] == pytest.approx(2.5, abs=1e-4)
    others = np.delete(edit.logits[1] - edit.logits[0], k)
    assert np.abs(others).max() > 1e-3  # the untrained head's directions are not orthogonal
    # "before" is the reconstructor's own result for that face
    stats = editor.preset.param_stats
    np.testing.assert_allclose(_normalised(stats, edit.params[0]), _normalised(stats, edit.face.params), atol=1e-5)
    np.testing.assert_allclose(edit.landmarks[0], edit.face.landmarks, atol=1e-3)
    moved = np.linalg.norm(edit.landmarks[1] - edit.landmarks[0], axis=-1)
    assert moved.max() > 0.05
    # decoders initialised as the 3DMM bases: the same shapes through the same camera
    np.testing.assert_allclose(edit.decoder_landmarks, edit.landmarks, atol=1e-2)
    same = editor.edit_face(image, edit.face, "Smiling", 0.0)
    np.testing.assert_array_equal(same.logits[0], same.logits[1])
    np.testing.assert_array_equal(same.landmarks[0], same.landmarks[1])
    assert same.summary()["landmark_displacement_px"] == {"mean": 0.0, "max": 0.0}


def test_edit_cli_writes_meshes_figure_and_numbers(joint, capsys, tmp_path):
    rc, out, err = _cli(capsys, "edit", SAMPLE_IMAGE, "--attribute", "Chubby", "--amount", "-3",
                        "-o", tmp_path, "--preset", joint[0])
    assert rc == 0, err
    summary = json.loads((tmp_path / "trump_hillary_edit.json").read_text())
    assert json.loads(out)["files"] == summary["files"]
    assert summary["logit"]["after"] - summary["logit"]["before"] == pytest.approx(-3.0, abs=1e-4)
    assert summary["probability"]["after"] < summary["probability"]["before"]
    assert 0 < summary["landmark_displacement_px"]["mean"] <= summary["landmark_displacement_px"]["max"]
    assert summary["mesh_displacement_px"]["max"] > 0
    others = summary["other_attributes"]
    assert len(others) == 39 and "Chubby" not in others
    changes = [abs(v["change"]) for v in others.values()]
    assert changes == sorted(changes, reverse=True)
    meshes = [np.array([line.split()[1:4] for line in (tmp_path / f"trump_hillary_{s}.obj").read_text().splitlines()
                        if line.startswith("v ")], float) for s in ("before", "after")]
    assert meshes[0].shape == meshes[1].shape and meshes[0].shape[0] > 1000
    assert np.abs(meshes[1] - meshes[0]).max() > 0
    figure = cv2.imread(str(tmp_path / "trump_hillary_edit.png"))
    assert figure.shape == (320, 960, 3)
    assert (figure[:, 640:] != figure[:, 320:640]).any()  # the heat map is not the plain render


def test_edit_errors(joint, capsys, tmp_path):
    rc, _, err = _cli(capsys, "edit", SAMPLE_IMAGE, "--attribute", "Smile", "--amount", "1", "-o", tmp_path,
                      "--preset", joint[0])
    assert rc == 2 and "unknown attribute 'Smile'; valid names: 5_o_Clock_Shadow" in err and "Smiling" in err
    rc, _, err = _cli(capsys, "edit", SAMPLE_IMAGE, "--attribute", "Smiling", "--amount", "1", "-o", tmp_path,
                      "--preset", "tfface_mb05_3ddfa")
    assert rc == 2 and "has no 'attributes' output" in err
    assert len(err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


# --- the shipped, trained joint preset ---------------------------------------------------------------

def test_shipped_joint_preset_on_the_sample_photo(reconstructor, halves, capsys):
    """tfface_mb05_joint: one pass gives 3DMM close to the teacher's, sensible attributes, and an
    embedding that keeps a person (mirrored photo, half resolution) and separates the two people."""
    from tfface.inference.reconstructor import FaceReconstructor

    image = read_image(SAMPLE_IMAGE)
    with FaceReconstructor("tfface_mb05_joint") as rec:
        threshold = rec.runner.verification_threshold
        faces = sorted(rec(image), key=lambda f: float(f.box[0]))
        mirrored = sorted(rec(image[:, ::-1].copy()), key=lambda f: -float(f.box[0]))
        small = sorted(rec(cv2.resize(image, None, fx=0.5, fy=0.5)), key=lambda f: float(f.box[0]))
    teacher = sorted(reconstructor(image), key=lambda f: float(f.box[0]))
    assert len(faces) == len(mirrored) == len(small) == 2
    for joint_face, teacher_face in zip(faces, teacher):
        size = float(np.sqrt(np.prod(np.ptp(teacher_face.landmarks[:, :2], axis=0))))
        err = np.linalg.norm(joint_face.landmarks[:, :2] - teacher_face.landmarks[:, :2], axis=1).mean()
        assert err / size < 0.04  # measured 2.0 % and 1.6 %
    assert faces[0].attributes["Male"] > 0.8  # the man on the left; measured 0.96
    assert faces[0].attributes["Male"] > faces[1].attributes["Male"]
    for a, b, c in zip(faces, mirrored, small):
        assert float(a.embedding @ b.embedding) > threshold and float(a.embedding @ c.embedding) > threshold
    assert float(faces[0].embedding @ faces[1].embedding) < threshold
    rc, out, _ = _cli(capsys, "verify", *halves)
    assert rc == 0 and json.loads(out)["same"] is False


def test_shipped_joint_embedding_averages_the_crop_and_the_aligned_crop():
    """tfface_mb05_joint's identity_template: each face's embedding is the mean direction of its crop's and
    its aligned crop's (the aligned faces' geometry), while params and attributes are the crop's alone."""
    from tfface.inference.face_path import embedding_mean
    from tfface.inference.reconstructor import FaceReconstructor
    from tfface.morphable.crop import warp_aligned

    image = read_image(SAMPLE_IMAGE)
    with FaceReconstructor("tfface_mb05_joint") as rec:
        runner, faces = rec.runner, rec(image)
        template = runner.identity_template
        assert template["landmarks"].shape == (68, 2) and template["roi"].shape == (4,)
        for face in faces:
            crop = runner(rec.crops(image, face.roi_box[None]))
            aligned = runner(warp_aligned(image, face.landmarks, template, runner.image_size)[None])
            np.testing.assert_allclose(face.embedding, embedding_mean(crop["embedding"], aligned["embedding"])[0], atol=1e-5)
            np.testing.assert_allclose(list(face.attributes.values()), crop["attributes"][0], atol=1e-5)
            assert 0.5 < float(crop["embedding"][0] @ aligned["embedding"][0]) < 0.99  # two views of one face


def test_fit_shape_directions_recovers_a_known_linear_effect():
    from tfface.inference.editing import fit_shape_directions

    rng = np.random.default_rng(0)
    true = rng.normal(size=(5, 50)).astype(np.float32)
    logits = rng.normal(size=(400, 5)) * [1, 2, 3, 1, 2] + rng.normal(size=(1, 5))
    logits[:, 1] += 0.8 * logits[:, 0]  # correlated attributes: each direction is its own, all else equal
    params = np.concatenate([rng.normal(size=(400, 12)), logits @ true + 0.01 * rng.normal(size=(400, 50))], axis=1)
    directions = fit_shape_directions(logits, params, ridge=1e-4)
    assert directions.shape == (5, 50)
    np.testing.assert_allclose(directions, true, atol=0.01)
    params[3, 20] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_shape_directions(logits, params)


def test_edit_of_the_shipped_branch_preset_moves_its_3d_face_by_the_stored_directions(capsys, tmp_path):
    """tfface_mb05_joint's attributes read their own branch: the edit moves the logit by exactly the amount
    and the 3DMM identity + expression params by the stored directions of the logits' change, in the same
    pose; "Smiling" moves the mouth first. Without stored directions: one line saying so."""
    from tfface.inference.editing import SHAPE_DIRECTIONS, AttributeEditor

    rc, out, err = _cli(capsys, "edit", SAMPLE_IMAGE, "--attribute", "Smiling", "--amount", "4", "-o", tmp_path)
    assert rc == 0, err
    summary = json.loads((tmp_path / "trump_hillary_edit.json").read_text())
    assert summary["logit"]["after"] - summary["logit"]["before"] == pytest.approx(4.0, abs=1e-4)
    assert "decoder_landmark_displacement_px" not in summary  # the branch's decoders read the embedding
    assert summary["landmark_displacement_px"]["max"] > 2.0 and summary["mesh_displacement_px"]["max"] > 2.0
    preset = load_preset("tfface_mb05_joint")
    editor = AttributeEditor(preset)
    try:
        edit = editor(read_image(SAMPLE_IMAGE), "Smiling", 4.0)
        np.testing.assert_allclose(edit.params[1, :12], edit.params[0, :12], rtol=1e-6)  # the camera stays
        change = edit.logits[1] - edit.logits[0]
        expected = change @ np.asarray(preset.config[SHAPE_DIRECTIONS], np.float32)
        moved = (edit.params[1] - edit.params[0])[12:] / preset.param_stats.std[12:]
        np.testing.assert_allclose(moved, expected, rtol=1e-3, atol=1e-4)
        mouth = np.argsort(-np.linalg.norm(edit.landmarks[1] - edit.landmarks[0], axis=-1))[:5]
        assert (mouth >= 48).all(), mouth  # iBUG 48-67: the mouth
    finally:
        editor.close()
    bare = presets.Preset(preset.name, preset.model, preset.preprocessor, preset.param_stats, preset.shape_model,
                          {k: v for k, v in preset.config.items() if k != SHAPE_DIRECTIONS})
    with pytest.raises(TffaceError, match=f"read their own branch .13 blocks.* no {SHAPE_DIRECTIONS}"):
        AttributeEditor(bare)
