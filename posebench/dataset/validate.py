"""Validation rules of the unified schema.

Each rule has a short identifier (listed in docs/schema.md); a violation raises
:class:`~posebench.errors.SchemaError` naming the table, the column and the rule. The same rules
run when a dataset is saved and when it is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np

from posebench.cameras import Camera
from posebench.dataset.model import POSE_DTYPE, TIME_DTYPE, Keypoints2D, Sequence, transiently_loaded
from posebench.errors import CameraError, SchemaError

if TYPE_CHECKING:
    from posebench.dataset.dataset import Dataset

CAMERA_FIELDS = ("distortion", "coefficients", "width", "height", "fx", "fy", "cx", "cy", "R", "t")
CAMERA_CONSISTENCY_TOLERANCE_MM = 1.0
# A human skeleton in millimetres has a median joint-to-root distance of hundreds of mm; below
# this the numbers are almost certainly metres (or decimetres).
MIN_PLAUSIBLE_SPREAD_MM = 20.0
UNITS_SAMPLE_SIZE = 100_000


def validate_dataset(dataset: Dataset, *, arrays: bool = True) -> None:
    """Check every rule; with ``arrays=False`` only metadata rules (no array reads)."""
    _check_unique([s.sequence_id for s in dataset], "sequences", "sequence_id")
    cameras = [s.camera for s in dataset if s.camera is not None]
    _check_camera_ids(cameras)
    _check_splits(dataset)
    _check_keypoint_sources(dataset)
    for sequence in dataset:
        validate_sequence_metadata(sequence, dataset)
        if arrays:
            with transiently_loaded(sequence):
                validate_sequence_arrays(sequence, dataset)


def _check_unique(values: Iterable, table: str, column: str) -> None:
    seen: set = set()
    for value in values:
        if value in seen:
            raise SchemaError(table, column, "unique_id", f"{value!r} appears more than once")
        seen.add(value)


def _check_camera_ids(cameras: list[Camera]) -> None:
    by_id: dict[str, Camera] = {}
    for camera in cameras:
        known = by_id.setdefault(camera.camera_id, camera)
        if known is not camera and known != camera:
            raise SchemaError(
                "cameras", "camera_id", "unique_id",
                f"two different cameras share the id {camera.camera_id!r}; give each its own id",
            )


def camera_from_fields(where: str, **fields) -> Camera:
    """Build a camera read from a file, reporting invalid parameters as a schema error.

    A :class:`Camera` checks its own parameters (positive size and focal lengths, known distortion
    model with the right coefficients, rotations orthonormal with det +1); this names the
    offending column for the rule ``camera``.
    """
    try:
        return Camera(**fields)
    except CameraError as exc:
        message = str(exc)
        column = next((name for name in CAMERA_FIELDS if f"{name} " in message or f"{name}[" in message), "*")
        raise SchemaError(where, column, "camera", message) from None


def _check_splits(dataset: Dataset) -> None:
    ids = set(dataset.sequence_ids)
    owner: dict[str, str] = {}
    for split, members in dataset.splits.items():
        for sequence_id in members:
            if sequence_id not in ids:
                raise SchemaError("meta", f"splits.{split}", "splits", f"split {split!r} names unknown sequence {sequence_id!r}")
            if sequence_id in owner:
                raise SchemaError(
                    "meta", f"splits.{split}", "splits",
                    f"sequence {sequence_id!r} is in both {owner[sequence_id]!r} and {split!r}; splits must be disjoint",
                )
            owner[sequence_id] = split


def _check_keypoint_sources(dataset: Dataset) -> None:
    for source, meta in dataset.keypoint_sources.items():
        if not source or "/" in source:
            raise SchemaError("meta", "keypoint_sources", "keypoint_source", f"source name {source!r} must be non-empty and contain no '/'")
        try:
            dataset.keypoint_layout(source)
        except KeyError as exc:
            raise SchemaError(
                "meta", f"keypoint_sources.{source}", "keypoint_source",
                f"unknown keypoint layout {meta.get('skeleton')!r}: {exc.args[0]}",
            ) from None


def validate_sequence_metadata(sequence: Sequence, dataset: Dataset) -> None:
    """Rules that need no array: ids, persons, rates, keypoint sources, camera length."""
    table = f"sequences[{sequence.sequence_id}]"
    if not isinstance(sequence.sequence_id, str) or not sequence.sequence_id:
        raise SchemaError("sequences", "sequence_id", "required", "sequence id must be a non-empty string")
    if not sequence.subjects or not all(isinstance(s, str) and s for s in sequence.subjects):
        raise SchemaError(table, "subjects", "required", "every person needs a non-empty subject name")
    if sequence.person_ids is None or len(sequence.person_ids) != len(sequence.subjects):
        raise SchemaError(table, "person_id", "shape", "one person_id per subject is required")
    _check_unique(sequence.person_ids, table, "person_id")
    if not np.isfinite(sequence.fps) or sequence.fps <= 0:
        raise SchemaError(table, "fps", "range", f"fps must be positive, found {sequence.fps}")
    if sequence.n_frames is None or sequence.n_frames < 1:
        raise SchemaError(table, "n_frames", "range", "a sequence needs at least one frame")
    for source in sequence.keypoint_sources or ():
        if source not in dataset.keypoint_sources:
            raise SchemaError(
                table, f"keypoints/{source}", "keypoint_source",
                f"source {source!r} is not declared in the metadata's keypoint_sources {sorted(dataset.keypoint_sources)}",
            )
    camera = sequence.camera
    if camera is not None and camera.is_moving and camera.n_poses != sequence.n_frames:
        raise SchemaError(
            table, "camera_id", "camera_ref",
            f"moving camera {camera.camera_id!r} has {camera.n_poses} poses but the sequence has {sequence.n_frames} frames",
        )


def validate_sequence_arrays(sequence: Sequence, dataset: Dataset) -> None:
    """Shapes, dtypes, NaN policy, units and camera consistency of one sequence's arrays."""
    table = f"poses[{sequence.sequence_id}]"
    P, F, J = sequence.n_persons, sequence.n_frames, dataset.skeleton.n_joints
    _check_array(sequence.timestamps, (F,), TIME_DTYPE, f"sequences[{sequence.sequence_id}]", "timestamps")
    steps = np.diff(sequence.timestamps)
    if not np.all(np.isfinite(sequence.timestamps)) or np.any(steps <= 0):
        raise SchemaError(
            f"sequences[{sequence.sequence_id}]", "timestamps", "timestamps",
            "timestamps must be finite and strictly increasing (seconds)",
        )
    _check_array(sequence.joints_world, (P, F, J, 3), POSE_DTYPE, table, "joints_world")
    _check_pose_values(sequence.joints_world, table, "joints_world")
    if sequence.camera is None:
        if sequence.joints_cam is not None:
            raise SchemaError(table, "joints_cam", "camera_ref", "camera-frame joints given without a camera")
    else:
        if sequence.joints_cam is None:
            raise SchemaError(table, "joints_cam", "required", "a sequence with a camera needs camera-frame joints")
        _check_array(sequence.joints_cam, (P, F, J, 3), POSE_DTYPE, table, "joints_cam")
        _check_pose_values(sequence.joints_cam, table, "joints_cam")
        _check_camera_consistency(sequence, table)
    for source, keypoints in sequence.keypoints.items():
        layout = dataset.keypoint_layout(source)
        _check_keypoints(keypoints, (P, F, layout.n_joints), f"keypoints/{source}[{sequence.sequence_id}]")


def _check_array(array: np.ndarray, shape: tuple, dtype: type, table: str, column: str) -> None:
    if not isinstance(array, np.ndarray):
        raise SchemaError(table, column, "dtype", f"expected a numpy array, found {type(array).__name__}")
    if array.shape != shape:
        raise SchemaError(table, column, "shape", f"expected shape {shape}, found {array.shape}")
    if array.dtype != np.dtype(dtype):
        raise SchemaError(table, column, "dtype", f"expected dtype {np.dtype(dtype)}, found {array.dtype}")


def _check_pose_values(joints: np.ndarray, table: str, column: str) -> None:
    if np.isinf(joints).any():
        raise SchemaError(table, column, "finite", "infinite values; missing joints must be NaN")
    zero_frames = np.all(joints == 0, axis=(-1, -2))
    if zero_frames.any():
        person, frame = (int(i) for i in np.argwhere(zero_frames)[0])
        raise SchemaError(
            table, column, "missing_as_zero",
            f"person {person}, frame {frame}: every joint is exactly 0; missing values must be NaN, never 0",
        )
    points = joints.reshape(-1, 3)
    points = points[:: max(1, points.shape[0] // UNITS_SAMPLE_SIZE)]
    finite = points[np.isfinite(points).all(axis=-1)]
    if finite.shape[0] >= 2:
        spread = float(np.median(np.linalg.norm(finite - np.median(finite, axis=0), axis=-1)))
        if spread < MIN_PLAUSIBLE_SPREAD_MM:
            raise SchemaError(
                table, column, "units",
                f"joints spread only {spread:.3g} around their median: values look like metres, not millimetres; multiply by 1000",
            )


def _check_camera_consistency(sequence: Sequence, table: str) -> None:
    expected = sequence.camera.world_to_camera(sequence.joints_world.astype(np.float64))
    difference = np.abs(expected - sequence.joints_cam)
    if np.nanmax(difference, initial=0.0) > CAMERA_CONSISTENCY_TOLERANCE_MM or not np.array_equal(
        np.isnan(expected), np.isnan(sequence.joints_cam)
    ):
        raise SchemaError(
            table, "joints_cam", "camera_consistency",
            f"camera-frame joints differ from R @ joints_world + t of camera {sequence.camera.camera_id!r} "
            f"by up to {np.nanmax(difference, initial=0.0):.3g} mm (tolerance {CAMERA_CONSISTENCY_TOLERANCE_MM} mm)",
        )


def _check_keypoints(keypoints: Keypoints2D, shape: tuple, table: str) -> None:
    _check_array(keypoints.xy, shape + (2,), POSE_DTYPE, table, "xy")
    _check_array(keypoints.confidence, shape, POSE_DTYPE, table, "confidence")
    _check_array(keypoints.occluded, shape, np.bool_, table, "occluded")
    if np.isinf(keypoints.xy).any():
        raise SchemaError(table, "xy", "finite", "infinite values; missing keypoints must be NaN")
    zero = np.all(keypoints.xy == 0, axis=-1) & (keypoints.confidence == 0)
    if zero.any():
        raise SchemaError(
            table, "xy", "missing_as_zero",
            "keypoints at (0, 0) with confidence 0 (OpenPose's marker for 'not detected'); store them as NaN",
        )
    confidence = keypoints.confidence
    if np.any((confidence < 0) | (confidence > 1)):
        raise SchemaError(table, "confidence", "range", "confidence must lie in [0, 1] (or be NaN)")
