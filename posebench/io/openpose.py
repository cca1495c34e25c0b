"""Reader of OpenPose JSON keypoint files (one file per frame, ``--write_json`` output).

Each file is ``{"version": ..., "people": [{"person_id": ..., "pose_keypoints_2d": [x, y, c,
...], ...}]}``. Body keypoints are read for the BODY_25 (25 keypoints) and COCO (18 keypoints)
layouts; OpenPose's ``(0, 0, 0)`` for an undetected keypoint becomes NaN coordinates with
confidence 0; a person whose body keypoint list is empty (found by the face or hand detector
only) is skipped. See ``docs/formats/openpose.md``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from posebench.errors import OpenPoseError
from posebench.skeletons import get_skeleton

#: Number of body keypoints of each layout; the names are those of posebench's skeletons.
LAYOUT_KEYPOINTS: Mapping[str, int] = MappingProxyType(
    {name: get_skeleton(name).n_joints for name in ("openpose25", "openpose18")}
)
_LAYOUT_BY_VALUES = {3 * count: name for name, count in LAYOUT_KEYPOINTS.items()}

#: Keys holding the body keypoints: OpenPose >= 1.2 writes the first, 1.0 and 1.1 the second.
POSE_KEYS = ("pose_keypoints_2d", "pose_keypoints")

_LAST_INTEGER = re.compile(r"(\d+)(?!.*\d)")


@dataclass(frozen=True, eq=False)
class OpenPosePerson:
    """One detected person of one frame file."""

    person_id: int
    keypoints: np.ndarray
    confidence: np.ndarray

    @property
    def layout(self) -> str:
        """``"openpose25"`` or ``"openpose18"`` from the number of keypoints."""
        return _LAYOUT_BY_VALUES[3 * len(self.confidence)]


@dataclass(frozen=True, eq=False)
class OpenPoseSequence:
    """The frame files of one folder, stacked and padded to the largest number of people.

    ``keypoints`` ``(F, P, K, 2)`` float32 pixels (NaN where undetected or padding),
    ``confidence`` ``(F, P, K)`` float32 (0 where undetected or padding), ``person_ids`` ``(F, P)``
    int64 (-1 for untracked people and padding), ``people_count`` ``(F,)`` people per file.
    """

    folder: str
    frames: np.ndarray
    keypoints: np.ndarray
    confidence: np.ndarray
    person_ids: np.ndarray
    people_count: np.ndarray
    layout: str
    file_names: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        """Number of frame files."""
        return int(self.frames.shape[0])


def read_openpose_json(path: str | Path, layout: str = "auto") -> list[OpenPosePerson]:
    """The people of one OpenPose JSON frame file.

    ``layout`` is ``"auto"`` (from the number of values: 75 is BODY_25, 54 is COCO-18),
    ``"openpose25"`` or ``"openpose18"``; every person of the file must have that length.
    """
    path = Path(path)
    _check_layout_name(layout, str(path))
    people, _ = _read_frame(path, layout)
    return people


def read_openpose_folder(folder: str | Path, layout: str = "auto") -> OpenPoseSequence:
    """All ``*.json`` frame files of ``folder``, ordered by frame index.

    The frame index of a file is the last run of digits in its name without ``.json``
    (``video_000000000012_keypoints.json`` is 12, ``cam02.0080.json`` is 80). With
    ``layout="auto"`` every person of every file must have the same layout.
    """
    folder = Path(folder)
    _check_layout_name(layout, str(folder))
    if not folder.is_dir():
        raise OpenPoseError(f"{folder}: not a folder of OpenPose JSON files")
    paths = list(folder.glob("*.json"))
    if not paths:
        raise OpenPoseError(f"{folder}: no *.json files; expected one OpenPose file per frame")
    indexed = sorted((_frame_index(path), path.name, path) for path in paths)
    frames = np.array([index for index, _, _ in indexed], dtype=np.int64)
    repeated = np.flatnonzero(np.diff(frames) == 0)
    if repeated.size:
        first = int(repeated[0])
        raise OpenPoseError(
            f"{folder}: files {indexed[first][1]} and {indexed[first + 1][1]} both have frame "
            f"index {frames[first]}; keep one camera's files per folder"
        )
    per_file = []
    chosen_layout, layout_file = (None, None) if layout == "auto" else (layout, None)
    for _, name, path in indexed:
        people, file_layout = _read_frame(path, layout)
        if file_layout is not None and chosen_layout is None:
            chosen_layout, layout_file = file_layout, name
        elif file_layout is not None and file_layout != chosen_layout:
            raise OpenPoseError(
                f"{path}: pose_keypoints_2d has {LAYOUT_KEYPOINTS[file_layout]} keypoints "
                f"({file_layout}) but {layout_file} has {LAYOUT_KEYPOINTS[chosen_layout]} "
                f"({chosen_layout}); a folder must hold one layout"
            )
        per_file.append(people)
    if chosen_layout is None:
        raise OpenPoseError(
            f"{folder}: no file contains a person, so the layout cannot be detected; pass "
            f"layout= one of {', '.join(LAYOUT_KEYPOINTS)}"
        )
    return _stack(folder, frames, per_file, chosen_layout, tuple(name for _, name, _ in indexed))


def _check_layout_name(layout: str, source: str) -> None:
    if layout != "auto" and layout not in LAYOUT_KEYPOINTS:
        raise OpenPoseError(
            f"{source}: unknown layout '{layout}'; "
            f"use 'auto' or one of {', '.join(LAYOUT_KEYPOINTS)}"
        )


def _frame_index(path: Path) -> int:
    stem = path.name[: -len(".json")]
    match = _LAST_INTEGER.search(stem)
    if match is None:
        raise OpenPoseError(
            f"{path}: the file name holds no frame number; expected names like "
            "'<name>_000000000012_keypoints.json' or 'cam02.0080.json'"
        )
    return int(match.group(1))


def _read_frame(path: Path, layout: str) -> tuple[list[OpenPosePerson], str | None]:
    """The people of one file and the layout they have (None for a file without people)."""
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise OpenPoseError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OpenPoseError(f"{path}: invalid JSON: {exc}") from None
    except RecursionError:
        raise OpenPoseError(f"{path}: JSON nested too deeply to be an OpenPose file") from None
    except ValueError:
        raise OpenPoseError(f"{path}: JSON holds an integer with thousands of digits; expected pixel coordinates") from None
    if not isinstance(document, dict) or "people" not in document:
        raise OpenPoseError(f"{path}: field 'people' missing; expected an OpenPose JSON object")
    people_field = document["people"]
    if not isinstance(people_field, list):
        raise OpenPoseError(
            f"{path}: field 'people' must be a list, got {type(people_field).__name__}"
        )
    parsed = (
        _parse_person(person, f"{path}: people[{i}]") for i, person in enumerate(people_field)
    )
    people = [person for person in parsed if person is not None]
    if not people:
        return people, None
    file_layout = people[0].layout
    for index, person in enumerate(people):
        expected = file_layout if layout == "auto" else layout
        if person.layout != expected:
            raise OpenPoseError(
                f"{path}: people[{index}] has {len(person.confidence)} body "
                f"keypoints but {expected} has {LAYOUT_KEYPOINTS[expected]}"
                + ("; people of one file must share a layout" if layout == "auto" else "")
            )
    return people, file_layout


def _parse_person(person: Any, where: str) -> OpenPosePerson | None:
    """The person, or None when its body keypoint list is empty (no body detection)."""
    if not isinstance(person, dict):
        raise OpenPoseError(f"{where}: expected an object with 'pose_keypoints_2d'")
    key = next((k for k in POSE_KEYS if k in person), None)
    if key is None:
        raise OpenPoseError(f"{where}: field 'pose_keypoints_2d' missing")
    raw = person[key]
    try:
        values = np.array(raw) if isinstance(raw, list) else None
    except ValueError:
        values = None
    if values is None or values.ndim != 1 or (values.size and values.dtype.kind not in "iuf"):
        raise OpenPoseError(f"{where}.{key}: expected a flat list of numbers [x, y, c, ...]")
    if values.size == 0:
        return None
    if values.size not in _LAYOUT_BY_VALUES:
        raise OpenPoseError(
            f"{where}.{key}: has {values.size} values; expected 75 (BODY_25, 25 x 3) or "
            "54 (COCO, 18 x 3)"
        )
    values = values.astype(np.float64).reshape(-1, 3)
    if not np.isfinite(values).all():
        raise OpenPoseError(f"{where}.{key}: contains NaN or infinity; expected finite numbers")
    confidence = values[:, 2].astype(np.float32)
    keypoints = values[:, :2].astype(np.float32)
    keypoints[confidence == 0] = np.nan
    return OpenPosePerson(_person_id(person.get("person_id", -1), where), keypoints, confidence)


def _person_id(raw: Any, where: str) -> int:
    value = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OpenPoseError(
            f"{where}.person_id: got {json.dumps(raw)}; "
            "expected an integer or a list of one integer"
        )
    return value


def _stack(
    folder: Path,
    frames: np.ndarray,
    per_file: list[list[OpenPosePerson]],
    layout: str,
    file_names: tuple[str, ...],
) -> OpenPoseSequence:
    n_keypoints = LAYOUT_KEYPOINTS[layout]
    people_count = np.array([len(people) for people in per_file], dtype=np.int64)
    n_people = int(people_count.max(initial=0))
    shape = (len(per_file), n_people, n_keypoints)
    keypoints = np.full(shape + (2,), np.nan, dtype=np.float32)
    confidence = np.zeros(shape, dtype=np.float32)
    person_ids = np.full(shape[:2], -1, dtype=np.int64)
    for frame, people in enumerate(per_file):
        for slot, person in enumerate(people):
            keypoints[frame, slot] = person.keypoints
            confidence[frame, slot] = person.confidence
            person_ids[frame, slot] = person.person_id
    return OpenPoseSequence(
        folder=str(folder),
        frames=frames,
        keypoints=keypoints,
        confidence=confidence,
        person_ids=person_ids,
        people_count=people_count,
        layout=layout,
        file_names=file_names,
    )
