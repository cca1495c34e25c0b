"""Reading the raw multi-person moving-camera layout: ``takes.csv``, ``camera.json``, trajectories.

The layout (docs/converters/mmhuman.md)::

    RAWDIR/takes.csv                          take,action,subjects,split
    RAWDIR/mocap/<take>.c3d|.trc|.bvh         one file, subject-prefixed labels, or
    RAWDIR/mocap/<take>/<subject>.<ext>       one file per subject
    RAWDIR/videos/<take>/<video>/camera.json  intrinsics, distortion, resolution, fps, sync, trajectory
    RAWDIR/videos/<take>/<video>/trajectory.csv
    RAWDIR/videos/<take>/<video>/openpose/*.json
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from posebench.cameras import DISTORTION_MODELS
from posebench.errors import LayoutError

MOCAP_SUFFIXES = (".c3d", ".trc", ".bvh")
MATRIX_COLUMNS = tuple(f"r{i}{j}" for i in range(3) for j in range(3))
QUATERNION_COLUMNS = ("qw", "qx", "qy", "qz")
TRANSLATION_COLUMNS = ("tx", "ty", "tz")


@dataclass(frozen=True)
class TakeRow:
    """One row of ``takes.csv``."""

    take: str
    action: str
    subjects: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class RigidBodySpec:
    """A camera carried as a mocap rigid body: marker positions in the body frame (mm) and the
    body→camera transform ``X_cam = R · X_body + t`` (mm)."""

    name: str
    markers: dict[str, tuple[float, float, float]]
    R: np.ndarray
    t: np.ndarray


@dataclass(frozen=True)
class CameraSpec:
    """The content of one ``camera.json``."""

    path: Path
    width: int
    height: int
    fps: float
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: str
    coefficients: tuple[float, ...]
    frame0_mocap_time: float | None
    clock_ratio: float
    trajectory_csv: Path | None
    rigid_body: RigidBodySpec | None
    openpose: Path


def read_takes(rawdir: Path) -> list[TakeRow]:
    """The rows of ``RAWDIR/takes.csv`` (columns take, action, subjects, split)."""
    path = rawdir / "takes.csv"
    if not path.is_file():
        raise LayoutError(
            f"{path}: missing; every raw folder needs takes.csv with the columns "
            "take,action,subjects,split (subjects separated by ';')"
        )
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in ("take", "action", "subjects", "split") if name not in header]
        if missing:
            raise LayoutError(f"{path}: column(s) {missing} missing; the header must be take,action,subjects,split")
        rows = []
        for line, raw in enumerate(reader, start=2):
            row = {key.strip(): (value or "").strip() for key, value in raw.items() if key is not None}
            subjects = tuple(s for s in row["subjects"].replace(";", " ").split() if s)
            if not row["take"] or not subjects:
                raise LayoutError(f"{path}, line {line}: 'take' and 'subjects' must not be empty")
            rows.append(TakeRow(row["take"], row["action"] or row["take"], subjects, row["split"]))
    takes = [row.take for row in rows]
    repeated = sorted({take for take in takes if takes.count(take) > 1})
    if repeated:
        raise LayoutError(f"{path}: take(s) {repeated} listed more than once")
    if not rows:
        raise LayoutError(f"{path}: no takes listed")
    return rows


def take_mocap_files(rawdir: Path, take: str) -> tuple[bool, list[Path]]:
    """``(one_file, files)``: the take's single mocap file, or the files of its mocap folder."""
    mocap = rawdir / "mocap"
    singles = [mocap / f"{take}{suffix}" for suffix in MOCAP_SUFFIXES if (mocap / f"{take}{suffix}").is_file()]
    folder = mocap / take
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MOCAP_SUFFIXES)
        if singles:
            raise LayoutError(f"{mocap}: take {take!r} has both {singles[0].name} and the folder {take}/; keep one")
        if not files:
            raise LayoutError(f"{folder}: no .c3d, .trc or .bvh file in the take's mocap folder")
        return False, files
    if len(singles) > 1:
        raise LayoutError(f"{mocap}: take {take!r} has several mocap files {[p.name for p in singles]}; keep one")
    if not singles:
        raise LayoutError(
            f"{mocap}: no mocap for take {take!r}; expected mocap/{take}.c3d (or .trc, .bvh) or a "
            f"folder mocap/{take}/ with one file per subject"
        )
    return True, singles


def take_videos(rawdir: Path, take: str) -> list[Path]:
    """The video folders ``RAWDIR/videos/<take>/<video>/`` of a take, sorted by name."""
    folder = rawdir / "videos" / take
    if not folder.is_dir():
        raise LayoutError(f"{folder}: missing; each take needs videos/{take}/<video>/ folders")
    videos = sorted(p for p in folder.iterdir() if p.is_dir())
    if not videos:
        raise LayoutError(f"{folder}: no video folder; expected videos/{take}/<video>/camera.json")
    return videos


def _field(document: dict[str, Any], key: str, path: Path, fix: str) -> Any:
    if key not in document:
        raise LayoutError(f"{path}: field '{key}' missing; {fix}")
    return document[key]


def _number(value: Any, where: str, path: Path, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LayoutError(f"{path}: field '{where}' must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise LayoutError(f"{path}: field '{where}' must be > 0, got {value!r}")
    return float(value)


def _matrix(value: Any, shape: tuple[int, ...], where: str, path: Path) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape or not np.isfinite(array).all():
        raise LayoutError(f"{path}: field '{where}' must be a finite array of shape {shape}, got {value!r}")
    return array


def read_camera_json(path: Path) -> CameraSpec:
    """Parse one ``camera.json`` (fields in docs/converters/mmhuman.md)."""
    if not path.is_file():
        raise LayoutError(f"{path}: missing; every video folder needs a camera.json")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise LayoutError(f"{path}: expected a JSON object")
    intrinsics = _field(document, "intrinsics", path, 'add "intrinsics": {"fx": ..., "fy": ..., "cx": ..., "cy": ...} in pixels')
    if not isinstance(intrinsics, dict):
        raise LayoutError(f"{path}: field 'intrinsics' must be an object with fx, fy, cx, cy")
    values = {}
    for key in ("fx", "fy", "cx", "cy"):
        raw = _field(intrinsics, key, path, f"'intrinsics' needs fx, fy, cx, cy in pixels (intrinsics.{key})")
        values[key] = _number(raw, f"intrinsics.{key}", path, positive=key in ("fx", "fy"))
    resolution = _field(document, "resolution", path, 'add "resolution": [width, height] in pixels')
    if (not isinstance(resolution, list) or len(resolution) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resolution)):
        raise LayoutError(f"{path}: field 'resolution' must be [width, height], two positive integers, got {resolution!r}")
    fps = _number(_field(document, "fps", path, 'add "fps": the video frame rate in Hz'), "fps", path, positive=True)
    distortion, coefficients = _distortion(document.get("distortion", {"model": "none"}), path)
    sync = document.get("sync", {})
    if not isinstance(sync, dict):
        raise LayoutError(f"{path}: field 'sync' must be an object with frame0_mocap_time and clock_ratio")
    offset = sync.get("frame0_mocap_time")
    offset = None if offset is None else _number(offset, "sync.frame0_mocap_time", path)
    ratio = _number(sync.get("clock_ratio", 1.0), "sync.clock_ratio", path, positive=True)
    trajectory = _field(document, "trajectory", path, 'add "trajectory": {"csv": "trajectory.csv"} or {"rigid_body": ...}')
    csv_path, rigid_body = _trajectory(trajectory, path)
    openpose = path.parent / str(document.get("openpose", "openpose"))
    return CameraSpec(path, resolution[0], resolution[1], fps, values["fx"], values["fy"], values["cx"], values["cy"],
                      distortion, coefficients, offset, ratio, csv_path, rigid_body, openpose)


def _distortion(block: Any, path: Path) -> tuple[str, tuple[float, ...]]:
    if not isinstance(block, dict) or "model" not in block:
        raise LayoutError(f"{path}: field 'distortion' must be an object {{\"model\": ..., \"coefficients\": [...]}}")
    model = block["model"]
    if model not in DISTORTION_MODELS:
        raise LayoutError(f"{path}: distortion.model {model!r} unknown; use one of {', '.join(DISTORTION_MODELS)}")
    raw = block.get("coefficients", [])
    if not isinstance(raw, list):
        raise LayoutError(f"{path}: field 'distortion.coefficients' must be a list of numbers")
    coefficients = [_number(v, "distortion.coefficients", path) for v in raw]
    expected = len(DISTORTION_MODELS[model])
    if model == "opencv" and len(coefficients) == 4:
        coefficients.append(0.0)
    if len(coefficients) != expected:
        names = ", ".join(DISTORTION_MODELS[model]) or "none"
        raise LayoutError(f"{path}: distortion model {model!r} takes {expected} coefficients ({names}), got {len(raw)}")
    return model, tuple(coefficients)


def _trajectory(block: Any, path: Path) -> tuple[Path | None, RigidBodySpec | None]:
    if not isinstance(block, dict) or ("csv" in block) == ("rigid_body" in block):
        raise LayoutError(
            f"{path}: field 'trajectory' must be {{\"csv\": FILE}} or {{\"rigid_body\": NAME, \"markers\": "
            "{...}, \"marker_to_camera\": {\"R\": ..., \"t\": ...}}"
        )
    if "csv" in block:
        return path.parent / str(block["csv"]), None
    markers = _field(block, "markers", path, "'trajectory.markers' maps each rigid-body marker to its [x, y, z] in the body frame (mm)")
    if not isinstance(markers, dict) or len(markers) < 3:
        raise LayoutError(f"{path}: field 'trajectory.markers' needs at least 3 markers with body-frame positions (mm)")
    positions = {str(name): tuple(_matrix(xyz, (3,), f"trajectory.markers.{name}", path)) for name, xyz in markers.items()}
    centred = np.array(list(positions.values())) - np.mean(list(positions.values()), axis=0)
    if np.linalg.matrix_rank(centred, tol=1.0) < 2:
        raise LayoutError(f"{path}: the markers of 'trajectory.markers' are collinear; a rigid body needs 3 non-collinear markers")
    transform = _field(block, "marker_to_camera", path, "give the body→camera transform {\"R\": 3x3, \"t\": [mm]}")
    if not isinstance(transform, dict):
        raise LayoutError(f"{path}: field 'trajectory.marker_to_camera' must be an object with R and t")
    R = _matrix(transform.get("R"), (3, 3), "trajectory.marker_to_camera.R", path)
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-6 or np.linalg.det(R) <= 0:
        raise LayoutError(f"{path}: field 'trajectory.marker_to_camera.R' is not a rotation matrix (orthonormal, det +1)")
    t = _matrix(transform.get("t"), (3,), "trajectory.marker_to_camera.t", path)
    return None, RigidBodySpec(str(block["rigid_body"]), positions, R, t)


def read_trajectory_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frames (F,)``, ``R (F, 3, 3)`` and ``t (F, 3)`` (mm, world→camera) of a trajectory CSV.

    Rotation columns are either ``r00 ... r22`` (row-major matrix) or ``qw, qx, qy, qz`` (unit
    quaternion, normalised on reading); translation columns ``tx, ty, tz``. Empty cells make the
    frame's pose unknown (NaN).
    """
    if not path.is_file():
        raise LayoutError(f"{path}: missing; camera.json names it as the camera trajectory")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise LayoutError(f"{path}: empty; expected a header line and one row per video frame")
    header = [name.strip() for name in rows[0]]
    if all(c in header for c in MATRIX_COLUMNS):
        rotation = MATRIX_COLUMNS
    elif all(c in header for c in QUATERNION_COLUMNS):
        rotation = QUATERNION_COLUMNS
    else:
        raise LayoutError(f"{path}: header {header} lacks rotation columns; use r00..r22 (row-major) or qw,qx,qy,qz")
    needed = ("frame", *rotation, *TRANSLATION_COLUMNS)
    missing = [c for c in needed if c not in header]
    if missing:
        raise LayoutError(f"{path}: column(s) {missing} missing; the header needs {', '.join(needed)}")
    columns = [header.index(c) for c in needed]
    try:
        values = np.array(
            [[float(row[c]) if c < len(row) and row[c].strip() else math.nan for c in columns] for row in rows[1:]],
            dtype=np.float64,
        ).reshape(-1, len(columns))
    except ValueError as exc:
        raise LayoutError(f"{path}: a cell is not a number ({exc})") from None
    frames = values[:, 0]
    if not np.isfinite(frames).all() or not np.array_equal(frames, np.arange(len(frames))):
        raise LayoutError(f"{path}: column 'frame' must count 0, 1, 2, ... one row per video frame")
    pose = values[:, 1:]
    known = np.isfinite(pose).all(axis=1)
    if not (known | np.isnan(pose).all(axis=1)).all():
        bad = int(np.flatnonzero(~(known | np.isnan(pose).all(axis=1)))[0])
        raise LayoutError(f"{path}: frame {bad} has some pose cells empty; leave all of a row's pose cells empty for an unknown pose")
    R = np.full((len(frames), 3, 3), np.nan)
    if rotation == MATRIX_COLUMNS:
        R[known] = pose[known, :9].reshape(-1, 3, 3)
    else:
        q = pose[known, :4]
        norms = np.linalg.norm(q, axis=1)
        if (norms < 1e-9).any():
            raise LayoutError(f"{path}: a quaternion is zero; quaternions must be unit (qw, qx, qy, qz)")
        R[known] = Rotation.from_quat(q[:, [1, 2, 3, 0]] / norms[:, None]).as_matrix()
    t = pose[:, -3:].copy()
    return frames.astype(np.int64), R, t


def write_trajectory_csv(path: Path, R: np.ndarray, t: np.ndarray) -> None:
    """Write ``R (F, 3, 3)``, ``t (F, 3)`` (mm, world→camera) as a trajectory CSV (matrix columns)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", *MATRIX_COLUMNS, *TRANSLATION_COLUMNS])
        for frame, (rotation, translation) in enumerate(zip(R.reshape(-1, 9), t)):
            writer.writerow([frame, *(repr(float(v)) for v in rotation), *(repr(float(v)) for v in translation)])
