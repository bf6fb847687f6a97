"""The documented reproduction of the joint preset (examples/make_joint_preset.py data -> tfface train ->
report -> ship) runs end to end on a tiny CelebA-like subset, and ships what `tfface verify` needs."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from conftest import REPO, shared_path

pytest.importorskip("dlib", reason="the distillation teacher is an optional extra: pip install -e .[teacher]")
pytest.importorskip("face_recognition_models")
pytestmark = pytest.mark.slow


def _script():
    spec = importlib.util.spec_from_file_location("make_joint_preset", REPO / "examples" / "make_joint_preset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_celeba(root, people: int = 10, per_person: int = 2, aligned: int = 8):
    from tfface.data.celeba import read_identities

    celeba = shared_path("celeba")
    wild_ids = read_identities(celeba / "identity_CelebA_subset.txt")
    chosen = sorted(set(wild_ids.values()))[:people]  # people 0 and 5 are held out (every 5th)
    names = {p: sorted(n for n, q in wild_ids.items() if q == p)[:per_person] for p in chosen}
    all_ids = read_identities(celeba / "identity_CelebA.txt")
    half = [f.name for f in sorted((celeba / "img_align_celeba_half").glob("*.jpg"))[:aligned]]
    rows = {}
    for folder, files in (("img_celeba", [n for ns in names.values() for n in ns]), ("img_align_celeba_half", half)):
        (root / folder).mkdir(parents=True)
        for name in files:
            shutil.copy(celeba / folder / name, root / folder / name)
            rows[name] = all_ids[name]
    (root / "identity_CelebA.txt").write_text("".join(f"{n} {p}\n" for n, p in sorted(rows.items())))
    attr_lines = (celeba / "list_attr_celeba_first20000.txt").read_text().splitlines()
    keep = [line for line in attr_lines[2:] if line.split()[0] in rows]
    (root / "list_attr_celeba_first20000.txt").write_text("\n".join([str(len(keep)), attr_lines[1], *keep]) + "\n")
    return root


def test_data_train_report_ship_on_a_tiny_subset(tmp_path):
    from tfface.cli.main import main
    from tfface.inference.verification import FaceVerifier
    from tfface.models.presets import load_preset

    script = _script()
    celeba = _tiny_celeba(tmp_path / "celeba")
    out = tmp_path / "run"
    script.build_data(celeba, out, epochs=(1, 1), steps=2)
    labels = script.cached_labels(out)
    assert len(labels["names"]) == 28 and np.allclose(np.linalg.norm(labels["teacher"], axis=1), 1.0, atol=1e-5)
    assert np.isnan(labels["params"][labels["folder"] == script.FOLDERS[1]]).all()  # aligned: no 3DMM label
    assert main(["train", "--config", str(out / "train_joint.yaml")]) == 0
    _widened_run_starts_where_the_joint_run_ended(script, out)
    assert main(["train", "--config", str(out / "train_joint13.yaml")]) == 0
    _branch_trained_and_3dmm_untouched(out)
    _morphs_lie_between_their_faces(script, celeba, out)
    _refined_run_starts_where_the_13_block_run_ended(script, out)
    results = script.report(celeba, out, shared_path("aflw2000_3d"), aflw_limit=3, baselines=False,
                            experiments=["joint13"], mirror=["joint13"], aligned=["joint13"])
    # every trained run has its row (the refined config is checked above, not trained: 30 s of CI)
    assert set(script.RUNS.values()) - {script.RUNS["joint13gdc8"], script.RUNS["joint13gdc"]} <= set(results)
    again, row = results["joint13 (experiment)"]["verification"], results[script.RUNS["joint13"]]["verification"]
    assert [again[k] for k in ("pairs", "auc", "accuracy_mean")] == [row[k] for k in ("pairs", "auc", "accuracy_mean")]
    joint = results[script.RUNS["joint13"]]
    mirrored = results[script.row_name("joint13", mirror=True)]  # the branch reads the mirror image too:
    assert mirrored["aflw2000"]["nme_2d"]["mean"] == joint["aflw2000"]["nme_2d"]["mean"]  # the 3DMM path does not
    assert mirrored["verification"]["auc"] != joint["verification"]["auc"]
    both = results[script.row_name("joint13", mirror=True, aligned=True)]  # + the embedding's aligned view:
    assert both["aflw2000"]["nme_2d"]["mean"] == joint["aflw2000"]["nme_2d"]["mean"]  # 3DMM and attributes as before
    assert both["attribute_thresholds"] == mirrored["attribute_thresholds"]
    assert both["distill"]["test"] != mirrored["distill"]["test"]  # its embedding is another
    assert 0 < joint["aflw2000"]["nme_2d"]["mean"] < 20 and len(joint["attribute_thresholds"]) == 40
    assert 0 < joint["distill"]["test"] < 2  # 1 - cos to the teacher's target on the held-out people
    assert 0 < joint["distill"]["train_wild"] < 2  # ... and on (a sample of) the training photos
    teacher = results["dlib ResNet (the distillation teacher, same pairs)"]["verification"]
    assert teacher["pairs"] == joint["verification"]["pairs"] > 0  # same pairs for student and teacher
    json.loads((out / "report.json").read_text())  # strict JSON
    script.ship(out, tmp_path / "preset", mirror=True, celeba=celeba, aligned=True)
    config = load_preset(tmp_path / "preset").config
    assert config["model"]["branch_blocks"] == script.WIDE_BLOCKS and config["model"]["mirror_average"]
    assert config["verification_threshold"] == round(both["verification"]["threshold_at_far"], 4)
    template = config["identity_template"]  # the aligned faces' median landmarks and crop box
    assert np.array(template["landmarks"]).shape == (68, 2) and len(template["roi"]) == 4
    assert config["verification_far"] == 0.01 and len(config["attribute_thresholds"]) == 40
    verifier = FaceVerifier(tmp_path / "preset")
    try:
        photos = sorted((celeba / "img_celeba").glob("*.jpg"))
        result = verifier(photos[0], photos[1]).to_json()
        assert result["threshold"] == config["verification_threshold"] and result["far"] == 0.01
    finally:
        verifier.close()


def _widened_run_starts_where_the_joint_run_ended(script, out) -> None:
    """`widen`: the 13-block branch copies the joint run's 8 blocks and heads, and its new blocks 1-5 start
    as the frozen regressor's, so before training it gives the joint run's embedding and attributes."""
    import keras

    from tfface.training.config import load_config
    from tfface.training.trainer import build_model

    config = load_config(script.widen(out, epochs=1))
    assert config.model.branch_blocks == script.WIDE_BLOCKS and config.trainer.output_dir == str(out / "joint13")
    wide = build_model(config.model)
    joint = keras.saving.load_model(out / "joint" / "model.keras", compile=False)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 120, 120, 3)).astype(np.float32)
    a, b = joint(x, training=False), wide(x, training=False)
    assert joint.get_config()["branch_blocks"] == 8
    for key in ("embedding", "attributes", "params"):
        np.testing.assert_allclose(np.asarray(b[key]), np.asarray(a[key]), atol=1e-4, rtol=1e-4)


def _refined_run_starts_where_the_13_block_run_ended(script, out) -> None:
    """`refine`: the branch pooled by a global depthwise conv that starts as the average, every other
    layer as the 13-block run's, so before training it gives that run's outputs."""
    import keras

    from tfface.training.config import load_config
    from tfface.training.trainer import build_model

    config = load_config(script.refine(out, "joint13", epochs=1, morph_quota=8))
    assert config.model.branch_pooling == "gdc" and config.trainer.output_dir == str(out / "joint13gdc")
    import yaml

    data = yaml.safe_load((out / "data_joint13gdc.yaml").read_text())  # morphs take the aligned faces' share
    assert [(s["name"], s["quota"]) for s in data["sources"]] == [("wild", 32), ("aligned", 24), ("morph", 8)]
    assert [p.name for p in config.phases] == ["joint13gdc"]  # a run folder keeps its identity classifier
    refined = build_model(config.model)
    wide = keras.saving.load_model(out / "joint13" / "model.keras", compile=False)
    x = np.random.default_rng(2).uniform(-1, 1, (4, 120, 120, 3)).astype(np.float32)
    a, b = wide(x, training=False), refined(x, training=False)
    for key in ("embedding", "attributes", "params", "id_logits"):
        np.testing.assert_allclose(np.asarray(b[key]), np.asarray(a[key]), atol=1e-4, rtol=1e-4)


def _morphs_lie_between_their_faces(script, celeba, out) -> None:
    """`morphs`: blends of two training faces, labelled by dlib on the blended chips, become records with
    the centred teacher label only; to the teacher a blend is nearer each of its two faces than they are
    to each other."""
    script.morph_labels(celeba, out, count=12)
    script.morph_records(out)
    labels, morphs = script.cached_labels(out), np.load(out / "morphs" / "chunk0000.npz")
    group, _ = script.data_groups(labels, out)
    a, b = morphs["pairs"].T
    assert (a != b).all() and all(group[i].startswith("train") for i in morphs["pairs"].ravel())
    raw = labels["teacher"]
    between = np.minimum((morphs["teacher"] * raw[a]).sum(1), (morphs["teacher"] * raw[b]).sum(1))
    assert between.mean() > (raw[a] * raw[b]).sum(1).mean() + 0.02
    summary = json.loads((out / "records" / "train_morph" / "summary.json").read_text())
    assert summary["written"] == 12 and summary["per_task"]["teacher"] == 12 and summary["per_task"]["params"] == 0


def _branch_trained_and_3dmm_untouched(out) -> None:
    """Training the widened run moves the branch's batch-norm statistics (they train, with the branch) but
    not the 3DMM output: the frozen backbone's batch norms stay in inference mode."""
    import keras

    import tfface.models.face_model  # noqa: F401  (registers FaceModel for loading)

    joint = keras.saving.load_model(out / "joint" / "model.keras", compile=False)
    wide = keras.saving.load_model(out / "joint13" / "model.keras", compile=False)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 120, 120, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(wide(x, training=False)["params"]),
                               np.asarray(joint(x, training=False)["params"]), atol=1e-5)
    bn = "branch_dw2_1_dw_bn"  # a block the joint run did not have: it starts as the regressor's
    start = joint.backbone.get_layer(bn.removeprefix("branch_")).moving_mean.numpy()
    assert np.abs(wide.get_layer(bn).moving_mean.numpy() - start).max() > 1e-4
