"""The uniform face record every reader yields, and its TFRecord form (a face crop with margin + labels).

A `FaceRecord` describes one face in one photo, in the photo's pixels. `write_shards` turns records
into TFRecord shards: each example stores the face crop cut around the record's square crop box
(`roi`, 3DDFA_V2's rule) enlarged by `margin`, at `crop_size` pixels, so scale/rotation augmentation
has real pixels to use, and every label re-expressed in that stored crop's pixels (see
tfface.data.transforms). The stored crop's centre is the roi centre: cutting the central
crop_size / margin pixels back out gives exactly the 3DDFA crop of the face.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tensorflow as tf

from tfface.errors import DataFileError, TffaceError
from tfface.morphable.crop import roi_from_box, roi_from_landmarks, warp_crop
from tfface.io.guard import describe
from tfface.io.images import decode_image, read_image

NUM_LANDMARKS = 68
NUM_ATTRIBUTES = 40
PARAM_DIM = 62
TEACHER_DIM = 128  # a teacher recognizer's embedding (tfface.data.teacher), for distillation
TASKS = ("params", "landmarks", "attributes", "identity", "teacher")
MASK_KEYS = {task: f"has_{task}" for task in (*TASKS, "pose")}
DEFAULT_CROP_SIZE = 160
DEFAULT_MARGIN = 4.0 / 3.0  # stored crop side / roi side: 120 px model crops keep full resolution


@dataclass
class FaceRecord:
    """One face: where its pixels are and whichever labels exist (None / -1 when absent).

    Coordinates are pixels of the photo (x right, y down). `params` are de-normalised 3DDFA params
    (12 camera + 40 identity + 10 expression) in the `param_size` x `param_size` 3DDFA crop frame of
    `roi` (the square crop box, image pixels): exactly what the 3DDFA_V2 regressor predicts for that
    crop. `roi` is required with params; otherwise it is derived from landmarks or box.
    """

    image: Path | bytes  # a photo file, or encoded image bytes
    source: str  # dataset name, e.g. "celeba", "aflw2000", "300w_lp"
    split: str = "train"  # train | val | test
    key: str = ""  # a stable id for reports (defaults to the file name)
    box: np.ndarray | None = None  # (4,) face box x0, y0, x1, y1
    roi: np.ndarray | None = None  # (4,) square crop box the params refer to
    landmarks: np.ndarray | None = None  # (68, 2 or 3) image pixels (iBUG-68 order)
    params: np.ndarray | None = None  # (62,) see above
    param_size: int = 120
    attributes: np.ndarray | None = None  # (40,) in {0, 1}, CelebA order
    identity: int = -1  # class id 0..n-1 within the dataset written
    pose: np.ndarray | None = None  # (3,) yaw, pitch, roll degrees (tfface.morphable.pose convention)
    teacher: np.ndarray | None = None  # (128,) unit-norm teacher embedding of this face
    extra: dict[str, Any] = field(default_factory=dict)  # reader notes, not written

    def __post_init__(self) -> None:
        if not self.key:
            self.key = str(self.image) if not isinstance(self.image, bytes) else f"{self.source}:<bytes>"

    @property
    def masks(self) -> dict[str, float]:
        return {"has_params": float(self.params is not None), "has_landmarks": float(self.landmarks is not None),
                "has_attributes": float(self.attributes is not None), "has_identity": float(self.identity >= 0),
                "has_pose": float(self.pose is not None), "has_teacher": float(self.teacher is not None)}

    def crop_box(self) -> np.ndarray:
        """The square 3DDFA crop box: `roi`, else from the landmarks, else from the face box."""
        if self.roi is not None:
            return np.asarray(self.roi, np.float32)
        if self.landmarks is not None:
            return roi_from_landmarks(self.landmarks)
        if self.box is not None:
            return roi_from_box(self.box)
        raise DataFileError(f"{self.key}: no face box, landmarks or roi to crop the face from")

    def validate(self) -> None:
        """Shapes, finiteness and ranges of every label; DataFileError naming the record otherwise."""
        checks = [("box", self.box, (4,)), ("roi", self.roi, (4,)), ("params", self.params, (PARAM_DIM,)),
                  ("attributes", self.attributes, (NUM_ATTRIBUTES,)), ("pose", self.pose, (3,)),
                  ("teacher", self.teacher, (TEACHER_DIM,))]
        for name, value, shape in checks:
            if value is not None:
                _check_array(self.key, name, value, shape)
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks)
            if lm.ndim != 2 or lm.shape[0] != NUM_LANDMARKS or lm.shape[1] not in (2, 3):
                raise DataFileError(f"{self.key}: landmarks must be (68, 2 or 3), found {lm.shape}")
            _check_array(self.key, "landmarks", lm, lm.shape)
        if self.params is not None and self.roi is None:
            raise DataFileError(f"{self.key}: params need the roi (crop box) they refer to")
        if self.attributes is not None and not np.isin(self.attributes, (0, 1)).all():
            raise DataFileError(f"{self.key}: attributes must be 0/1, found {sorted(set(np.ravel(self.attributes)))}")
        for name, b in (("box", self.box), ("roi", self.roi)):
            if b is not None and not (b[2] > b[0] and b[3] > b[1]):
                raise DataFileError(f"{self.key}: {name} {np.round(b, 1).tolist()} is empty")


def _check_array(key: str, name: str, value: np.ndarray, shape: tuple[int, ...]) -> None:
    a = np.asarray(value)
    if a.shape != shape:
        raise DataFileError(f"{key}: {name} must have shape {shape}, found {a.shape}")
    if not np.all(np.isfinite(a)):
        raise DataFileError(f"{key}: {name} contains NaN or infinite values")


# ---------------------------------------------------------------------------------------------------
# The example format

FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),  # JPEG of the stored crop (crop_size^2, RGB)
    "key": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "source": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "split": tf.io.FixedLenFeature([], tf.string, default_value=b"train"),
    "crop_size": tf.io.FixedLenFeature([], tf.int64),
    "margin": tf.io.FixedLenFeature([], tf.float32),
    "roi": tf.io.FixedLenFeature([4], tf.float32),  # the 3DDFA crop box in the photo (for reference)
    "landmarks": tf.io.FixedLenFeature([NUM_LANDMARKS * 2], tf.float32),  # stored-crop pixels
    "params": tf.io.FixedLenFeature([PARAM_DIM], tf.float32),  # 3DDFA frame of the whole stored crop
    "attributes": tf.io.FixedLenFeature([NUM_ATTRIBUTES], tf.int64),
    "identity": tf.io.FixedLenFeature([], tf.int64),
    "pose": tf.io.FixedLenFeature([3], tf.float32),  # in the stored crop (roll follows the crop)
    "teacher": tf.io.FixedLenFeature([TEACHER_DIM], tf.float32, default_value=[0.0] * TEACHER_DIM),
    **{mask: tf.io.FixedLenFeature([], tf.float32, default_value=0.0) for mask in MASK_KEYS.values()},
}


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """One serialized example -> dict of tensors (the image stays encoded; landmarks reshaped (68, 2))."""
    ex = tf.io.parse_single_example(serialized, FEATURES)
    ex["landmarks"] = tf.reshape(ex["landmarks"], (NUM_LANDMARKS, 2))
    ex["attributes"] = tf.cast(ex["attributes"], tf.float32)
    ex["identity"] = tf.cast(ex["identity"], tf.int32)
    return ex


def _floats(v: Iterable[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(np.asarray(v, np.float32).ravel())))


def _ints(v: Iterable[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(x) for x in np.ravel(v)]))


def _bytes(v: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def load_pixels(record: FaceRecord) -> np.ndarray:
    """The record's photo as RGB uint8; DataFileError for missing / corrupt files."""
    if isinstance(record.image, bytes):
        return decode_image(record.image, record.key)  # the same pixel budget as files
    return read_image(record.image)


Locator = Callable[[np.ndarray], np.ndarray]  # RGB photo -> face box; raises NoFaceError
Teacher = Callable[..., np.ndarray]  # (RGB photo, landmarks=, box=) -> unit-norm embedding (tfface.data.teacher)


def stored_crop_box(roi: np.ndarray, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The square a record stores: the 3DDFA crop box `roi` grown `margin` times about its centre
    (context for augmentation's rotations and zooms)."""
    roi = np.asarray(roi, np.float64)
    side = float(roi[2] - roi[0]) * margin
    corner = (roi[:2] + roi[2:]) / 2.0 - side / 2.0
    return np.concatenate([corner, corner + side])


def stored_roi(crop_size: int = DEFAULT_CROP_SIZE, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """`stored_crop_box` inverted: the roi, in a stored crop's own pixels, that grows back into that very
    crop (a record made from an image already in the stored frame, such as a morph)."""
    side = crop_size / margin
    corner = (crop_size - side) / 2.0
    return np.array([corner, corner, corner + side, corner + side], np.float32)


def encode_record(record: FaceRecord, crop_size: int = DEFAULT_CROP_SIZE, margin: float = DEFAULT_MARGIN,
                  jpeg_quality: int = 95, locate: Locator | None = None, teacher: Teacher | None = None) -> bytes:
    """A FaceRecord -> serialized tf.train.Example; TffaceError (DataFileError, NoFaceError) for anything
    wrong with it. `locate` finds the face box of records that carry no box, landmarks or roi; `teacher`
    labels records that carry no teacher embedding, on the photo (from their landmarks, else their box)."""
    from tfface.data import transforms

    record.validate()
    image = load_pixels(record)
    if record.roi is None and record.landmarks is None and record.box is None and locate is not None:
        record = replace(record, box=np.asarray(locate(image), np.float32))
    if teacher is not None and record.teacher is None:
        if record.landmarks is None and record.box is None:
            raise DataFileError(f"{record.key}: the teacher needs the face's landmarks or box, the record has neither")
        record = replace(record, teacher=np.asarray(teacher(image, landmarks=record.landmarks, box=record.box),
                                                    np.float32))
        record.validate()  # a non-finite embedding is this record's error, not a NaN label
    roi = record.crop_box()
    stored = stored_crop_box(roi, margin)
    corner, side = stored[:2], float(stored[2] - stored[0])
    crop = warp_crop(image, stored, crop_size)  # the one crop rule
    s = side / crop_size  # photo pixels per stored-crop pixel
    # Labels live in the stored crop's pixel-index frame (pixel i centred at i), which warp_crop samples:
    # photo x -> (x - corner + 0.5) / s - 0.5.
    to_crop = transforms.scale_shift([1.0 / s], [(0.5 - corner) / s - 0.5])
    masks = record.masks
    landmarks = np.zeros((NUM_LANDMARKS, 2), np.float32)
    if record.landmarks is not None:
        landmarks = transforms.transform_landmarks(np.asarray(record.landmarks)[None], to_crop)[0].numpy()
    params = np.zeros(PARAM_DIM, np.float32)
    if record.params is not None:
        # 3DDFA param frame p -> photo p * s_p + roi corner (crop_to_image) -> stored-crop index frame.
        s_p = float(record.roi[2] - record.roi[0]) / record.param_size
        frame = transforms.scale_shift([s_p / s], [(np.asarray(record.roi[:2]) - corner + 0.5) / s - 0.5])
        params = transforms.transform_params(np.asarray(record.params)[None], frame, record.param_size,
                                             crop_size)[0].numpy()
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise DataFileError(f"{record.key}: could not encode the face crop")
    feature = {
        "image": _bytes(jpeg.tobytes()), "key": _bytes(record.key.encode()), "source": _bytes(record.source.encode()),
        "split": _bytes(record.split.encode()), "crop_size": _ints([crop_size]), "margin": _floats([margin]),
        "roi": _floats(roi), "landmarks": _floats(landmarks), "params": _floats(params),
        "attributes": _ints(record.attributes if record.attributes is not None else np.zeros(NUM_ATTRIBUTES)),
        "identity": _ints([record.identity if record.identity >= 0 else -1]),
        "pose": _floats(record.pose if record.pose is not None else np.zeros(3)),
        "teacher": _floats(record.teacher if record.teacher is not None else np.zeros(TEACHER_DIM)),
        **{k: _floats([v]) for k, v in masks.items()},
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


# ---------------------------------------------------------------------------------------------------
# Shards

SUMMARY_FILE = "summary.json"
MAX_LISTED_REJECTS = 1000


def shard_path(out_dir: str | os.PathLike, prefix: str, index: int) -> Path:
    return Path(out_dir) / f"{prefix}-{index:05d}.tfrecord"


def write_shards(records: Iterable[FaceRecord], out_dir: str | os.PathLike, prefix: str = "data",
                 shard_size: int = 1000, crop_size: int = DEFAULT_CROP_SIZE, margin: float = DEFAULT_MARGIN,
                 jpeg_quality: int = 95, total: int | None = None, progress: bool = True,
                 locate: Locator | None = None, extra_summary: dict[str, Any] | None = None,
                 run: dict[str, Any] | None = None, overwrite: bool = False,
                 teacher: Teacher | None = None, on_reject: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write records as `<prefix>-NNNNN.tfrecord` shards of `shard_size` INPUT records each; returns the summary.

    Resumable: shard i always holds input records [i*shard_size, (i+1)*shard_size) (in the order
    given), is written to a temporary file and renamed when complete, with a `.json` sidecar of its
    counts; a rerun skips shards whose file and sidecar exist, only when `<prefix>.run.json` (tfface.data.
    manifest: shard arguments, `run` arguments, a digest of the records) matches this run; otherwise a
    one-line TffaceError says to start over with `overwrite`. Records that fail (missing or corrupt
    image, bad labels, no face) are skipped, counted and listed with the reason, and `on_reject` (if
    given) is called with each reason (one line naming the file) as it happens. The summary (counts
    per task, split and source; rejects) is also written to `<out_dir>/summary.json`.
    """
    from tqdm import tqdm

    if shard_size <= 0:
        raise TffaceError(f"shard_size must be > 0. Received: shard_size={shard_size}")
    from tfface.data.manifest import build_manifest, check_resume, manifest_path
    from tfface.io.outputs import check_output_folder, write_json_atomic

    out = check_output_folder(out_dir)
    manifest = build_manifest(prefix, {"shard_size": shard_size, "crop_size": crop_size, "margin": margin,
                                       "jpeg_quality": jpeg_quality}, run, records)
    if not check_resume(out, prefix, manifest, overwrite):
        write_json_atomic(manifest_path(out, prefix), manifest)
    stats: list[dict[str, Any]] = []
    iterator: Iterator[FaceRecord] = iter(records)
    bar = tqdm(total=total, desc=f"writing {prefix} shards", unit="face", disable=not progress)
    index = 0
    while True:
        chunk = list(islice(iterator, shard_size))
        if not chunk:
            break
        path = shard_path(out, prefix, index)
        sidecar = path.with_suffix(".json")
        if path.is_file() and sidecar.is_file():  # the sidecar is written (atomically) after the shard
            stats.append({**json.loads(sidecar.read_text()), "resumed": True})
        else:
            stats.append(_write_one_shard(chunk, path, crop_size, margin, jpeg_quality, bar, locate, teacher,
                                          on_reject))
            write_json_atomic(sidecar, stats[-1], indent=None)
        bar.update(len(chunk) if stats[-1].get("resumed") else 0)
        index += 1
    bar.close()
    summary = _merge_stats(stats, out, prefix, crop_size, margin)
    summary.update(extra_summary or {})
    write_json_atomic(out / SUMMARY_FILE, summary, indent=2)
    return summary


def _write_one_shard(chunk: list[FaceRecord], path: Path, crop_size: int, margin: float, quality: int,
                     bar: Any, locate: Locator | None, teacher: Teacher | None = None,
                     on_reject: Callable[[str], None] | None = None) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    rejected: list[dict[str, str]] = []
    tmp = path.with_suffix(".tfrecord.tmp")
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for record in chunk:
            try:
                data = encode_record(record, crop_size, margin, quality, locate, teacher)
                writer.write(data)
            except Exception as e:  # noqa: BLE001 - whatever one record does, it is that record's reason
                rejected.append({"key": record.key, "reason": str(e) if isinstance(e, TffaceError)
                                 else f"{record.key}: {describe(e)}"})
                if on_reject is not None:
                    on_reject(rejected[-1]["reason"])
            else:
                counts["written"] += 1
                counts[f"split/{record.split}"] += 1
                counts[f"source/{record.source}"] += 1
                for task, value in written_masks(data).items():  # what was written, teacher labels included
                    counts[f"task/{task}"] += int(value)
            bar.update(1)
    os.replace(tmp, path)
    return {"file": path.name, "input": len(chunk), "counts": dict(counts), "rejected": rejected}


def written_masks(data: bytes) -> dict[str, float]:
    """{task: 0/1} of a serialised record, read back from its mask features."""
    feature = tf.train.Example.FromString(data).features.feature
    return {task: feature[key].float_list.value[0] for task, key in MASK_KEYS.items() if key in feature}


def _merge_stats(stats: list[dict[str, Any]], out: Path, prefix: str, crop_size: int, margin: float) -> dict[str, Any]:
    total: Counter[str] = Counter()
    rejected: list[dict[str, str]] = []
    for s in stats:
        total.update(s["counts"])
        rejected.extend(s["rejected"])
    reasons = Counter(r["reason"].split(": ", 1)[-1].split(" (")[0] for r in rejected)
    group = lambda name: {k.split("/", 1)[1]: v for k, v in sorted(total.items()) if k.startswith(name + "/")}  # noqa: E731
    return {
        "out_dir": str(out), "shards": [s["file"] for s in stats], "crop_size": crop_size, "margin": margin,
        "input_records": sum(s["input"] for s in stats), "written": total["written"],
        "resumed_shards": sum(bool(s.get("resumed")) for s in stats),
        "per_task": group("task"), "per_split": group("split"), "per_source": group("source"),
        "rejected": len(rejected), "rejected_by_reason": dict(reasons.most_common()),
        "rejected_records": rejected[:MAX_LISTED_REJECTS],
    }


def read_summary(out_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(out_dir) / SUMMARY_FILE
    if not path.is_file():
        raise DataFileError(f"{path}: no shard summary (run `tfface data convert` first)")
    return json.loads(path.read_text())
