"""Adapter from a Pose2Sim trial (static calibrated cameras) to the multi-person moving-camera layout.

A Pose2Sim trial folder holds ``pose/<camera>_json/`` (OpenPose JSON per frame) and
``pose-3d/*.trc`` (one triangulated person per file, y-up, metres); its project holds a
calibration TOML (``[cam_01]`` tables with ``size = [width, height]``, ``matrix`` (K),
``distortions`` (k1, k2, p1, p2), ``rotation`` (Rodrigues vector) and ``translation`` (m),
world→camera in OpenCV's convention, z-up world). Pose2Sim writes its TRC files in a y-up copy
of the calibration's world: TRC (X, Y, Z) = world (Y, Z, X). The adapter therefore expresses each
camera pose in the TRC's axes, ``R_trc = R · Pᵀ`` with ``P`` that permutation, and writes it as a
trajectory with the same pose in every frame. See docs/converters/mmhuman.md.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from converters.mmhuman_layout import write_trajectory_csv
from posebench.errors import LayoutError
from posebench.io.openpose import read_openpose_folder
from posebench.io.trc import read_trc

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

#: TRC axes as a permutation of the calibration's world axes: X_trc = P · X_world.
TRC_FROM_WORLD = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
_CAMERA_DIGITS = re.compile(r"(\d+)")


def find_calibration(trial: Path) -> Path:
    """The calibration TOML of a Pose2Sim trial: a ``*.toml`` with 'calib' in its name in a folder
    with 'calib' in its name, beside the trial or up to two folders above it."""
    candidates: list[Path] = []
    for folder in (trial, trial.parent, trial.parent.parent):
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and "calib" in p.name.lower()):
            candidates += sorted(p for p in sub.glob("*.toml") if "calib" in p.name.lower())
        if candidates:
            break
    if len(candidates) != 1:
        found = f"found {[str(p) for p in candidates]}" if candidates else "found none"
        raise LayoutError(f"{trial}: cannot choose the Pose2Sim calibration TOML ({found}); pass it with --calibration")
    return candidates[0]


def read_calibration(path: Path) -> dict[str, dict]:
    """Cameras of a Pose2Sim calibration TOML by name, with K, distortion, R, t (mm), size."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LayoutError(f"{path}: not a readable calibration TOML: {exc}") from None
    cameras = {}
    for key, table in document.items():
        if key == "metadata" or not isinstance(table, dict):
            continue
        missing = [f for f in ("size", "matrix", "distortions", "rotation", "translation") if f not in table]
        if missing:
            raise LayoutError(f"{path}: [{key}] lacks {missing}; expected a Pose2Sim calibration")
        if table.get("fisheye", False):
            raise LayoutError(f"{path}: [{key}] is a fisheye camera; only the pinhole model with k1, k2, p1, p2 is supported")
        K = np.array(table["matrix"], dtype=np.float64)
        R = Rotation.from_rotvec(np.array(table["rotation"], dtype=np.float64)).as_matrix()
        cameras[str(table.get("name", key))] = {
            "size": [int(round(v)) for v in table["size"]],
            "K": K,
            "distortion": [float(v) for v in table["distortions"]],
            "R": R,
            "t": np.array(table["translation"], dtype=np.float64) * 1000.0,
        }
    if not cameras:
        raise LayoutError(f"{path}: no camera table; expected [cam_01] ... tables")
    return cameras


def _camera_number(name: str) -> str:
    digits = _CAMERA_DIGITS.findall(name)
    return str(int(digits[-1])) if digits else name


def pose2sim_layout(trial: Path, output: Path, calibration: Path | None = None, take: str | None = None,
                    action: str = "", split: str = "") -> Path:
    """Write the raw layout for a Pose2Sim trial into ``output`` (a new folder) and return it.

    Persons are the trial's ``pose-3d/*.trc`` files; a file name ``..._P1_...`` gives subject
    ``P1`` (else the file stem). Camera folders ``pose/camNN_json`` are matched to calibration
    cameras by their number. The video frame rate is the TRC rate and video frame 0 is the TRC's
    first row (``frame0_mocap_time`` = its time).
    """
    trial = Path(trial)
    if not trial.is_dir():
        raise LayoutError(f"{trial}: not a folder; expected a Pose2Sim trial with pose/ and pose-3d/")
    calibration = find_calibration(trial) if calibration is None else Path(calibration)
    cameras = read_calibration(calibration)
    trcs = sorted((trial / "pose-3d").glob("*.trc"))
    if not trcs:
        raise LayoutError(f"{trial / 'pose-3d'}: no .trc file; a Pose2Sim trial keeps its triangulated persons there")
    folders = sorted(p for p in (trial / "pose").glob("*_json") if p.is_dir())
    if not folders:
        raise LayoutError(f"{trial / 'pose'}: no <camera>_json folder of OpenPose files")
    take = take or trial.name
    subjects = [_subject_name(p) for p in trcs]
    first = read_trc(trcs[0])
    by_number = {_camera_number(name): name for name in cameras}
    output.mkdir(parents=True)
    (output / "mocap" / take).mkdir(parents=True)
    for path, subject in zip(trcs, subjects):
        shutil.copyfile(path, output / "mocap" / take / f"{subject}.trc")
    for folder in folders:
        name = by_number.get(_camera_number(folder.name.removesuffix("_json")))
        if name is None:
            raise LayoutError(f"{folder}: no camera of {calibration.name} has the number of this folder ({sorted(cameras)})")
        camera = cameras[name]
        video = output / "videos" / take / name
        shutil.copytree(folder, video / "openpose")
        n_frames = read_openpose_folder(video / "openpose").num_frames
        R = camera["R"] @ TRC_FROM_WORLD.T
        write_trajectory_csv(video / "trajectory.csv", np.repeat(R[None], n_frames, axis=0), np.repeat(camera["t"][None], n_frames, axis=0))
        K = camera["K"]
        document = {
            "resolution": camera["size"],
            "fps": first.rate,
            "intrinsics": {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]},
            "distortion": {"model": "opencv", "coefficients": camera["distortion"]},
            "sync": {"frame0_mocap_time": float(first.times[0]), "clock_ratio": 1.0},
            "trajectory": {"csv": "trajectory.csv"},
        }
        (video / "camera.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    with open(output / "takes.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["take", "action", "subjects", "split"])
        writer.writerow([take, action or take, ";".join(subjects), split])
    return output


def _subject_name(path: Path) -> str:
    found = re.findall(r"_(P\d+)(?=_|$)", path.stem)
    return found[-1] if found else path.stem
