"""The npz files of VideoPose3D's data scripts, shared by the Human3.6M and HumanEva-I converters.

``data_3d_<dataset>.npz`` holds ``positions_3d[subject][action]``: (F, J, 3) metres.
``data_2d_<dataset>_<detector>.npz`` holds ``positions_2d[subject][action]``: a list with one
(F, K, 2) or (F, K, 3) pixel array per camera (``None`` where a camera has none; the third channel,
when present, is the detector's confidence) and ``metadata`` (``layout_name``, ``num_joints``,
``keypoints_symmetry``). Both are read with the restricted unpickler of
:func:`posebench.io.npz.load_npz`. Layout rules: docs/converters/h36m.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posebench.errors import FormatError
from posebench.io.npz import load_npz
from posebench.skeletons import get_skeleton, skeleton_names

__all__ = [
    "Detections",
    "align_length",
    "keypoint_arrays",
    "read_2d_file",
    "read_3d_file",
    "resolve_layout",
]

#: VideoPose3D's layout names (``data/data_utils.py``, tried in this order on a file name) ->
#: posebench skeleton names; ``None`` where posebench has no such skeleton.
VP3D_LAYOUTS: dict[str, str | None] = {
    "mpii": None,
    "coco": "coco17",
    "h36m": "h36m17",
    "humaneva15": "humaneva15",
    "humaneva20": None,
}


def _check_mapping(value: Any, path: Path, what: str) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise FormatError(f"{path}: {what} must be a dict with string keys, found {type(value).__name__}")
    return value


def read_3d_file(path: Path, joints: int) -> dict[str, dict[str, np.ndarray]]:
    """``positions_3d`` of a VideoPose3D 3D file in millimetres: subject -> action -> (F, joints, 3) float64."""
    members = load_npz(path)
    if "positions_3d" not in members:
        raise FormatError(f"{path}: no 'positions_3d' array; found {sorted(members)}. Is this a VideoPose3D data_3d_*.npz file?")
    result: dict[str, dict[str, np.ndarray]] = {}
    for subject, actions in _check_mapping(members["positions_3d"], path, "positions_3d").items():
        result[subject] = {}
        for action, positions in _check_mapping(actions, path, f"positions_3d[{subject!r}]").items():
            array = np.asarray(positions) if isinstance(positions, np.ndarray) else None
            if array is None or array.dtype.kind != "f" or array.ndim != 3 or array.shape[1:] != (joints, 3):
                found = f"shape {array.shape}, dtype {array.dtype}" if array is not None else type(positions).__name__
                raise FormatError(f"{path}: positions_3d[{subject!r}][{action!r}] must be a float array (frames, {joints}, 3) in metres, found {found}")
            result[subject][action] = array.astype(np.float64) * 1000.0
    return result


@dataclass
class Detections:
    """One 2D file: its source name, layout, and per (subject, action) a list of per-camera arrays."""

    path: Path
    detector: str
    layout: str
    positions: dict[str, dict[str, list[np.ndarray | None]]]


def resolve_layout(path: Path, detector: str, metadata: Any, num_keypoints: int | None) -> str:
    """The posebench skeleton of a 2D file's keypoints.

    From ``metadata['layout_name']`` when present, else from the file name as VideoPose3D's
    ``suggest_metadata`` does, else the registered skeleton whose size and left/right lists equal
    ``num_joints`` and ``keypoints_symmetry``. The result is checked against both.
    """
    metadata = metadata if isinstance(metadata, dict) else {}
    symmetry = metadata.get("keypoints_symmetry")
    symmetry = [list(map(int, side)) for side in symmetry] if isinstance(symmetry, (list, tuple)) and len(symmetry) == 2 else None
    count = metadata.get("num_joints", num_keypoints)
    vp3d_name = metadata.get("layout_name")
    how = "metadata layout_name"
    if not isinstance(vp3d_name, str):
        vp3d_name = next((name for name in VP3D_LAYOUTS if name in detector), None)
        how = "file name"
    if vp3d_name is not None:
        layout = VP3D_LAYOUTS.get(vp3d_name, vp3d_name if vp3d_name in skeleton_names() else None)
        if layout is None:
            raise FormatError(f"{path}: keypoint layout {vp3d_name!r} (from the {how}) has no posebench skeleton; known: {', '.join(skeleton_names())}")
    else:
        matches = [
            name for name in skeleton_names()
            if get_skeleton(name).n_joints == count and symmetry is not None
            and [list(get_skeleton(name).left), list(get_skeleton(name).right)] == symmetry
        ]
        if len(matches) != 1:
            raise FormatError(
                f"{path}: cannot tell the keypoint layout: no metadata layout_name, no layout name in the file name, "
                f"and {len(matches)} registered skeletons match num_joints={count} and keypoints_symmetry={symmetry}"
            )
        layout = matches[0]
    skeleton = get_skeleton(layout)
    if count is not None and int(count) != skeleton.n_joints:
        raise FormatError(f"{path}: metadata says {count} keypoints but layout {layout!r} has {skeleton.n_joints}")
    if symmetry is not None and symmetry != [list(skeleton.left), list(skeleton.right)]:
        raise FormatError(
            f"{path}: keypoints_symmetry {symmetry} does not match layout {layout!r} "
            f"(left {list(skeleton.left)}, right {list(skeleton.right)})"
        )
    return layout


def read_2d_file(path: Path, prefix: str) -> Detections:
    """A ``data_2d_<dataset>_<detector>.npz`` file; ``prefix`` is ``data_2d_<dataset>_``."""
    detector = path.name[len(prefix):-len(".npz")]
    members = load_npz(path)
    if "positions_2d" not in members:
        raise FormatError(f"{path}: no 'positions_2d' array; found {sorted(members)}. Is this a VideoPose3D data_2d_*.npz file?")
    positions: dict[str, dict[str, list[np.ndarray | None]]] = {}
    sizes = set()
    for subject, actions in _check_mapping(members["positions_2d"], path, "positions_2d").items():
        positions[subject] = {}
        for action, cameras in _check_mapping(actions, path, f"positions_2d[{subject!r}]").items():
            if not isinstance(cameras, (list, tuple)):
                raise FormatError(f"{path}: positions_2d[{subject!r}][{action!r}] must be a list with one array per camera, found {type(cameras).__name__}")
            arrays: list[np.ndarray | None] = []
            for index, keypoints in enumerate(cameras):
                if keypoints is None:
                    arrays.append(None)
                    continue
                if not isinstance(keypoints, np.ndarray) or keypoints.dtype.kind != "f" or keypoints.ndim != 3 or keypoints.shape[2] not in (2, 3):
                    found = f"shape {keypoints.shape}" if isinstance(keypoints, np.ndarray) else type(keypoints).__name__
                    raise FormatError(f"{path}: positions_2d[{subject!r}][{action!r}][{index}] must be a float array (frames, keypoints, 2 or 3), found {found}")
                sizes.add(keypoints.shape[1])
                arrays.append(keypoints)
            positions[subject][action] = arrays
    if len(sizes) > 1:
        raise FormatError(f"{path}: arrays have different keypoint counts {sorted(sizes)}")
    layout = resolve_layout(path, detector, members.get("metadata"), next(iter(sizes), None))
    return Detections(path, detector, layout, positions)


def keypoint_arrays(keypoints: np.ndarray, path: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``xy`` (F, K, 2) with NaN where missing and ``confidence`` (F, K) of one detection array."""
    xy = keypoints[..., :2].astype(np.float64)
    if keypoints.shape[-1] == 3:
        confidence = keypoints[..., 2].astype(np.float64)
        bad = np.isfinite(confidence) & ((confidence < 0) | (confidence > 1))
        if bad.any():
            raise FormatError(f"{path}: {where}: confidences must lie in [0, 1], found values from {np.nanmin(confidence):.3g} to {np.nanmax(confidence):.3g}")
    else:
        confidence = np.ones(xy.shape[:-1])
    missing = ~np.isfinite(xy).all(axis=-1) | ~np.isfinite(confidence)
    xy[missing] = np.nan
    confidence[missing] = 0.0
    return xy, confidence


def align_length(xy: np.ndarray, confidence: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Detections cut or NaN-padded to the mocap's ``frames``; the note says what was done (or None)."""
    found = xy.shape[0]
    if found == frames:
        return xy, confidence, None
    if found > frames:
        return xy[:frames], confidence[:frames], f"{found} detection frames truncated to the mocap's {frames}"
    pad = frames - found
    xy = np.concatenate([xy, np.full((pad, *xy.shape[1:]), np.nan)])
    confidence = np.concatenate([confidence, np.zeros((pad, *confidence.shape[1:]))])
    return xy, confidence, f"{found} detection frames, shorter than the mocap's {frames}: the last {pad} frames have no detection (NaN)"
