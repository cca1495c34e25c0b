"""The mocap side of a multi-person moving-camera take: subjects' joints, rigid bodies, sampling.

A take's mocap (one file with ``Subject:MARKER`` labels, or a folder with one file per subject)
becomes h36m17 joints per subject in a z-up world (the rotation of :func:`up_axis_rotation`),
with the file's own clock kept, so that ``camera.json``'s ``frame0_mocap_time`` refers to it.
Camera poses come from a trajectory CSV or from a tracked rigid body; both are expressed in the
mocap file's own axes and turned with the same rotation as the joints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from converters.mmhuman_layout import CameraSpec, RigidBodySpec, TakeRow, read_trajectory_csv, take_mocap_files
from converters.mocap import (
    SUFFIXES,
    PersonTrack,
    TakeReport,
    align_take,
    marker_persons,
    nominal_rate,
    read_persons,
    split_persons,
    up_axis_rotation,
)
from posebench.errors import LayoutError
from posebench.io.c3d import read_c3d
from posebench.io.trc import read_trc
from posebench.timeseries import fill_gaps

#: A sample time within this fraction of a frame period of a mocap sample takes that sample.
SNAP_TOLERANCE = 1e-6


@dataclass
class MarkerTrack:
    """Markers of one rigid body: ``points (T, M, 3)`` mm in the z-up world, at ``times (T,)`` s."""

    names: tuple[str, ...]
    points: np.ndarray
    times: np.ndarray


@dataclass
class TakeMocap:
    """A take's subjects as h36m17 joints ``(P, T, 17, 3)`` mm, z-up, at absolute ``times (T,)``."""

    subjects: tuple[str, ...]
    joints: np.ndarray
    times: np.ndarray
    rate: float
    rotation: np.ndarray
    bodies: dict[str, MarkerTrack]
    files: list[Path]
    notes: list[str] = field(default_factory=list)


def _marker_file(path: Path) -> tuple[np.ndarray, list[str], float, float]:
    """Points (T, M, 3) mm, labels, rate and start time of a C3D or TRC file."""
    if SUFFIXES[path.suffix.lower()] == "c3d":
        recording = read_c3d(path)
        return recording.points, list(recording.labels), recording.rate, (recording.first_frame - 1) / recording.rate
    recording = read_trc(path)
    return recording.points, list(recording.marker_names), recording.rate, float(recording.times[0])


def _strip(label: str) -> str:
    return label.split(":", 1)[1].strip() if ":" in label else label.strip()


def _entities(labels: list[str], path: Path, one_file: bool, row: TakeRow) -> dict[str, list[int]]:
    """Label indices per entity (subject or rigid body) name of a marker file."""
    if not one_file:
        return {path.stem: list(range(len(labels)))}
    groups = split_persons(labels)
    if "" in groups:
        groups[row.subjects[0] if len(row.subjects) == 1 and len(groups) == 1 else path.stem] = groups.pop("")
    return groups


def read_take_mocap(rawdir: Path, row: TakeRow, rigid_bodies: set[str], markerset: str | None, max_gap: int) -> TakeMocap:
    """Read the subjects and rigid bodies of one take (see the module docstring)."""
    one_file, files = take_mocap_files(rawdir, row.take)
    report = TakeReport()
    tracks: dict[str, PersonTrack] = {}
    raw_bodies: dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray]] = {}
    found: list[str] = []
    for path in files:
        if SUFFIXES[path.suffix.lower()] == "bvh":
            name = row.subjects[0] if one_file and len(row.subjects) == 1 else path.stem
            found.append(name)
            if name in row.subjects:
                (track,) = read_persons(path, markerset, report)
                tracks[name] = PersonTrack(name, track.joints, track.times, track.source)
            continue
        points, labels, rate, start = _marker_file(path)
        for name, indices in _entities(labels, path, one_file, row).items():
            found.append(name)
            if name in row.subjects:
                persons = marker_persons(points[:, indices], [_strip(labels[i]) for i in indices], rate, start, path, markerset, report)
                tracks[name] = PersonTrack(name, persons[0].joints, persons[0].times, persons[0].source)
            elif name in rigid_bodies:
                times = start + np.arange(points.shape[0]) / rate
                raw_bodies[name] = (tuple(_strip(labels[i]) for i in indices), points[:, indices], times)
            else:
                report.notes.append(f"{path.name}: {name!r} is neither a subject nor a camera rigid body of take {row.take!r}; ignored")
    missing = [s for s in row.subjects if s not in tracks] + [b for b in sorted(rigid_bodies) if b not in raw_bodies]
    if missing:
        raise LayoutError(
            f"{files[0].parent if not one_file else files[0]}: take {row.take!r} lists {missing} (takes.csv subjects or a "
            f"camera.json rigid_body) but the mocap holds only {sorted(set(found))}"
        )
    ordered = [tracks[s] for s in row.subjects]
    joints, relative = align_take(ordered, report)
    step = float(np.median(np.diff(ordered[0].times))) if len(ordered[0].times) > 1 else 1.0
    start = max(t.times[0] for t in ordered)
    times = relative + ordered[0].times[ordered[0].times >= start - step / 2][0]
    rotation = up_axis_rotation(joints)
    joints = joints @ rotation.T
    filled_joints, filled = fill_gaps(joints.transpose(1, 0, 2, 3), max_gap=max_gap)
    if filled.any():
        report.notes.append(f"take {row.take!r}: {int(filled.sum())} joint samples filled by cubic interpolation (gaps <= {max_gap} frames)")
    if not np.allclose(rotation, np.eye(3)):
        report.notes.append(f"take {row.take!r}: world rotated so that the recording's up axis becomes +z; camera poses turned with it")
    bodies = {name: MarkerTrack(names, points @ rotation.T, body_times) for name, (names, points, body_times) in raw_bodies.items()}
    return TakeMocap(tuple(row.subjects), filled_joints.transpose(1, 0, 2, 3), times, nominal_rate(times), rotation, bodies, files, report.notes)


def sample_at(values: np.ndarray, times: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Values ``(T, ...)`` sampled at ``times (T,)`` (uniform), evaluated at ``query`` (any shape).

    Uniform Catmull-Rom cubic between the two samples around each query time, linear where an
    outer neighbour is missing or absent; exact at sample times. NaN where either inner sample is
    missing and outside ``[times[0], times[-1]]``. Returns ``query.shape + values.shape[1:]``.
    """
    query = np.asarray(query, dtype=np.float64)
    count = len(times)
    flat = values.reshape(count, -1)
    step = (times[-1] - times[0]) / (count - 1) if count > 1 else 1.0
    position = (query - times[0]) / step
    nearest = np.round(position)
    position = np.where(np.abs(position - nearest) < SNAP_TOLERANCE, nearest, position)
    inside = (position >= 0) & (position <= count - 1)
    position = np.clip(np.where(inside, position, 0.0), 0, count - 1)
    left = np.minimum(np.floor(position).astype(np.int64), max(count - 2, 0))
    weight = (position - left)[..., None]
    right = np.minimum(left + 1, count - 1)
    p1, p2 = flat[left], flat[right]
    p0, p3 = flat[np.maximum(left - 1, 0)], flat[np.minimum(left + 2, count - 1)]
    linear = np.where(weight == 0, p1, np.where(weight == 1, p2, p1 + (p2 - p1) * weight))
    cubic = p1 + 0.5 * weight * (p2 - p0 + weight * (2 * p0 - 5 * p1 + 4 * p2 - p3 + weight * (3 * (p1 - p2) + p3 - p0)))
    has_outer = ((left > 0) & (left + 2 < count))[..., None] & np.isfinite(p0) & np.isfinite(p3)
    result = np.where(has_outer & (weight > 0) & (weight < 1), cubic, linear)
    result = np.where(inside[..., None], result, np.nan)
    return result.reshape(query.shape + values.shape[1:])


def fit_rigid_body(reference: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body→world ``(R (..., 3, 3), t (..., 3))`` with ``observed ≈ R · reference + t`` (Kabsch).

    ``reference (M, 3)`` are the markers in the body frame, ``observed (..., M, 3)`` in the world,
    NaN where a marker is missing; a frame with fewer than 3 markers gets a NaN pose.
    """
    valid = np.isfinite(observed).all(axis=-1)
    weights = valid.astype(np.float64)[..., None]
    count = weights.sum(axis=-2)
    safe = np.maximum(count, 1.0)
    world = np.where(valid[..., None], observed, 0.0)
    body_centre = (weights * reference).sum(axis=-2) / safe
    world_centre = world.sum(axis=-2) / safe
    H = np.swapaxes(weights * (reference - body_centre[..., None, :]), -1, -2) @ (world - world_centre[..., None, :])
    H = np.where((count >= 3)[..., None], H, np.eye(3))
    U, _, Vt = np.linalg.svd(H)
    sign = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.zeros(H.shape)
    D[..., 0, 0] = 1.0
    D[..., 1, 1] = 1.0
    D[..., 2, 2] = sign
    R = np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)
    t = world_centre - (R @ body_centre[..., None])[..., 0]
    lost = (count < 3)[..., 0]
    return np.where(lost[..., None, None], np.nan, R), np.where(lost[..., None], np.nan, t)


@dataclass
class CameraTrack:
    """World→camera poses of one video in the z-up world: per video frame (CSV) or from a rigid body."""

    frame_R: np.ndarray | None = None
    frame_t: np.ndarray | None = None
    body: MarkerTrack | None = None
    spec: RigidBodySpec | None = None

    def poses(self, frames: np.ndarray, mocap_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``R (..., 3, 3)``, ``t (..., 3)`` at video ``frames`` shown at ``mocap_times`` (same shape)."""
        if self.body is None or self.spec is None:
            return self.frame_R[frames], self.frame_t[frames]
        order = [self.body.names.index(name) for name in self.spec.markers]
        observed = sample_at(self.body.points[:, order], self.body.times, mocap_times)
        reference = np.array(list(self.spec.markers.values()))
        body_R, body_t = fit_rigid_body(reference, observed)
        R = self.spec.R @ np.swapaxes(body_R, -1, -2)
        t = self.spec.t - (R @ body_t[..., None])[..., 0]
        return R, t


def camera_track(spec: CameraSpec, mocap: TakeMocap) -> tuple[CameraTrack, int | None]:
    """The camera track of a video and, for a CSV trajectory, its number of frames."""
    if spec.rigid_body is None:
        _, R, t = read_trajectory_csv(spec.trajectory_csv)
        return CameraTrack(frame_R=R @ mocap.rotation.T, frame_t=t), len(R)
    body = mocap.bodies[spec.rigid_body.name]
    absent = [name for name in spec.rigid_body.markers if name not in body.names]
    if absent:
        raise LayoutError(
            f"{spec.path}: trajectory.markers {absent} are not markers of rigid body {spec.rigid_body.name!r} "
            f"in the mocap (it has {list(body.names)})"
        )
    return CameraTrack(body=body, spec=spec.rigid_body), None
