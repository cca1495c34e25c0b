"""The logical model of the unified schema: sequences, 2D keypoint sources and their arrays.

A :class:`Sequence` is one take seen from one camera view (or from no camera, for mocap-only
takes). It holds P persons x F frames. Arrays are loaded lazily when a sequence comes from a
stored dataset, so iterating over a large dataset's metadata costs no array reads.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import numpy as np

if TYPE_CHECKING:
    from posebench.cameras import Camera

POSE_DTYPE = np.float32
TIME_DTYPE = np.float64


@dataclass(eq=False)
class Keypoints2D:
    """2D keypoints of one named source (``gt``, ``cpn``, ``openpose`` ...) for one sequence.

    ``xy`` is (P, F, K, 2) in pixels, ``confidence`` (P, F, K) in [0, 1], ``occluded`` (P, F, K)
    bool. Missing keypoints are NaN in ``xy`` (and NaN or 0 in ``confidence``).
    """

    xy: np.ndarray
    confidence: np.ndarray
    occluded: np.ndarray

    @classmethod
    def create(cls, xy: np.ndarray, confidence: np.ndarray | None = None, occluded: np.ndarray | None = None) -> Keypoints2D:
        """Build keypoints with the schema's dtypes.

        ``confidence`` defaults to 1 where a keypoint is present and 0 where it is NaN;
        ``occluded`` defaults to all False.
        """
        xy = np.asarray(xy, dtype=POSE_DTYPE)
        missing = np.isnan(xy).any(axis=-1)
        if confidence is None:
            confidence = np.where(missing, 0.0, 1.0)
        if occluded is None:
            occluded = np.zeros(missing.shape, dtype=bool)
        return cls(xy, np.asarray(confidence, dtype=POSE_DTYPE), np.asarray(occluded, dtype=bool))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Keypoints2D):
            return NotImplemented
        return all(
            _arrays_identical(a, b)
            for a, b in (
                (self.xy, other.xy),
                (self.confidence, other.confidence),
                (self.occluded, other.occluded),
            )
        )


ArrayLoader = Callable[[], dict[str, Any]]


@dataclass(eq=False)
class Sequence:
    """One take from one camera view: P persons x F frames.

    ``joints_world`` is (P, F, J, 3) millimetres in the lab frame. ``joints_cam`` is the same
    joints in the camera frame (OpenCV convention); when a camera is given and ``joints_cam`` is
    not, it is computed from ``joints_world``. ``timestamps`` (F,) are seconds.
    """

    sequence_id: str
    subjects: list[str]
    fps: float
    action: str = ""
    take: str = ""
    camera: Camera | None = None
    person_ids: list[int] | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    n_frames: int | None = None
    keypoint_sources: list[str] | None = None
    _joints_world: np.ndarray | None = field(default=None, repr=False)
    _joints_cam: np.ndarray | None = field(default=None, repr=False)
    _timestamps: np.ndarray | None = field(default=None, repr=False)
    _keypoints: dict[str, Keypoints2D] | None = field(default=None, repr=False)
    _loader: ArrayLoader | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        sequence_id: str,
        subjects: list[str],
        joints_world: np.ndarray,
        fps: float,
        *,
        timestamps: np.ndarray | None = None,
        action: str = "",
        take: str = "",
        camera: Camera | None = None,
        joints_cam: np.ndarray | None = None,
        keypoints: Mapping[str, Keypoints2D] | None = None,
        person_ids: list[int] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> Sequence:
        """Build an in-memory sequence; arrays are converted to the schema's dtypes.

        ``timestamps`` default to ``frame / fps``; ``person_ids`` to 0..P-1; ``joints_cam`` to
        the projection of ``joints_world`` into ``camera`` when a camera is given.
        """
        world = np.asarray(joints_world)
        if world.dtype.kind == "f":
            world = world.astype(POSE_DTYPE, copy=False)
        n_frames = world.shape[1] if world.ndim >= 2 else 0
        if timestamps is None:
            timestamps = np.arange(n_frames, dtype=TIME_DTYPE) / float(fps)
        if joints_cam is None and camera is not None and world.ndim == 4:
            joints_cam = camera.world_to_camera(world.astype(np.float64)).astype(POSE_DTYPE)
        elif joints_cam is not None:
            joints_cam = np.asarray(joints_cam)
            if joints_cam.dtype.kind == "f":
                joints_cam = joints_cam.astype(POSE_DTYPE, copy=False)
        n_persons = world.shape[0] if world.ndim >= 1 else 0
        return cls(
            sequence_id=sequence_id,
            subjects=list(subjects),
            fps=float(fps),
            action=action,
            take=take,
            camera=camera,
            person_ids=list(range(n_persons)) if person_ids is None else [int(p) for p in person_ids],
            attributes=dict(attributes or {}),
            n_frames=n_frames,
            keypoint_sources=sorted(keypoints or {}),
            _joints_world=world,
            _joints_cam=joints_cam,
            _timestamps=np.asarray(timestamps, dtype=TIME_DTYPE),
            _keypoints=dict(keypoints or {}),
        )

    def _ensure_loaded(self) -> None:
        if self._joints_world is None and self._loader is not None:
            arrays = self._loader()
            self._joints_world = arrays["joints_world"]
            self._joints_cam = arrays["joints_cam"]
            self._timestamps = arrays["timestamps"]
            self._keypoints = arrays["keypoints"]

    @property
    def is_loaded(self) -> bool:
        """Whether the arrays are in memory (always true for sequences built in memory)."""
        return self._joints_world is not None

    def unload(self) -> None:
        """Forget the arrays of a stored sequence; they are read again on next use (no-op in memory)."""
        if self._loader is not None:
            self._joints_world = self._joints_cam = self._timestamps = self._keypoints = None

    @property
    def joints_world(self) -> np.ndarray:
        """(P, F, J, 3) float32 joints in millimetres, world (lab) frame."""
        self._ensure_loaded()
        return self._joints_world

    @property
    def joints_cam(self) -> np.ndarray | None:
        """(P, F, J, 3) float32 joints in millimetres, camera frame; None without a camera."""
        self._ensure_loaded()
        return self._joints_cam

    @property
    def timestamps(self) -> np.ndarray:
        """(F,) float64 seconds."""
        self._ensure_loaded()
        return self._timestamps

    @property
    def keypoints(self) -> dict[str, Keypoints2D]:
        """2D keypoints by source name."""
        self._ensure_loaded()
        return self._keypoints

    @property
    def n_persons(self) -> int:
        return len(self.subjects)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        same_meta = (
            self.sequence_id == other.sequence_id
            and self.subjects == other.subjects
            and self.person_ids == other.person_ids
            and self.fps == other.fps
            and self.action == other.action
            and self.take == other.take
            and self.attributes == other.attributes
            and self.n_frames == other.n_frames
            and self.keypoint_sources == other.keypoint_sources
            and (self.camera is None) == (other.camera is None)
            and (self.camera is None or self.camera == other.camera)
        )
        return (
            same_meta
            and _arrays_identical(self.joints_world, other.joints_world)
            and _arrays_identical(self.joints_cam, other.joints_cam)
            and _arrays_identical(self.timestamps, other.timestamps)
            and self.keypoints == other.keypoints
        )

    def __repr__(self) -> str:
        camera = self.camera.camera_id if self.camera is not None else None
        return (
            f"Sequence({self.sequence_id!r}, action={self.action!r}, subjects={self.subjects}, "
            f"frames={self.n_frames}, camera={camera!r}, keypoints={self.keypoint_sources})"
        )


@contextmanager
def transiently_loaded(sequence: Sequence) -> Iterator[Sequence]:
    """The sequence for one pass over its arrays: a stored sequence not in memory before is unloaded after.

    Passes over a whole stored dataset (validate, save, hash, dense arrays) use it so that they hold
    one sequence's arrays at a time, not the dataset.
    """
    was_loaded = sequence.is_loaded
    try:
        yield sequence
    finally:
        if not was_loaded:
            sequence.unload()


def _arrays_identical(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
