"""Reader of Biovision Hierarchy (BVH) motion files with vectorised forward kinematics.

A BVH file holds a joint hierarchy (``HIERARCHY``: ``ROOT``/``JOINT``/``End Site`` blocks with an
``OFFSET`` and ``CHANNELS``) and a ``MOTION`` block with one row of channel values per frame.
:func:`read_bvh` parses both, converts lengths to millimetres on request and computes world
positions of every joint and End Site. The conventions (units, axes, rotation order, the CMU to
h36m17 mapping) are documented in ``docs/formats/bvh.md``.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from posebench.io.text import read_text
from posebench.errors import BVHError
from posebench.skeletons import get_skeleton

#: Millimetres per file unit for every value accepted by ``read_bvh(unit=...)``. ``"cmu"`` is the
#: length unit of the CMU Graphics Lab database (ASF ``length 0.45``: 1/0.45 inch = 56.444 mm),
#: which the cgspeed BVH conversions keep.
MM_PER_UNIT: Mapping[str, float] = MappingProxyType(
    {"mm": 1.0, "cm": 10.0, "m": 1000.0, "inch": 25.4, "cmu": 25.4 / 0.45}
)

#: Height of an adult used by ``unit="auto"``: the unit whose conversion brings the skeleton's
#: rest-pose extent closest to this value (on a log scale) is chosen.
TYPICAL_BODY_HEIGHT_MM = 1700.0
#: ``unit="auto"`` refuses a result outside this range of body heights (mm).
PLAUSIBLE_BODY_HEIGHT_MM = (500.0, 3000.0)

#: Channel names of the BVH format, mapped to (kind, axis index).
CHANNEL_AXES: Mapping[str, tuple[str, int]] = MappingProxyType(
    {
        "Xposition": ("position", 0),
        "Yposition": ("position", 1),
        "Zposition": ("position", 2),
        "Xrotation": ("rotation", 0),
        "Yrotation": ("rotation", 1),
        "Zrotation": ("rotation", 2),
    }
)
_CHANNEL_BY_LOWER = {name.lower(): name for name in CHANNEL_AXES}

#: Suffix appended to a joint's name to name the End Site that closes its chain.
END_SITE_SUFFIX = "_end"

#: Deepest chain of nested JOINTs accepted (human rigs nest about 10 to 30 deep); deeper files
#: are refused before the recursive parser could exhaust Python's stack.
MAX_HIERARCHY_DEPTH = 256

#: Each h36m17 joint as the mean of these points of the CMU 31-joint BVH skeleton (joint names,
#: End Sites named ``<parent>_end``). The reasons are given in docs/formats/bvh.md.
CMU_TO_H36M17: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "pelvis": ("LeftUpLeg", "RightUpLeg"),
        "r_hip": ("RightUpLeg",),
        "r_knee": ("RightLeg",),
        "r_ankle": ("RightFoot",),
        "l_hip": ("LeftUpLeg",),
        "l_knee": ("LeftLeg",),
        "l_ankle": ("LeftFoot",),
        "spine": ("Spine",),
        "thorax": ("Neck",),
        "neck_nose": ("Head",),
        "head_top": ("Head" + END_SITE_SUFFIX,),
        "l_shoulder": ("LeftArm",),
        "l_elbow": ("LeftForeArm",),
        "l_wrist": ("LeftHand",),
        "r_shoulder": ("RightArm",),
        "r_elbow": ("RightForeArm",),
        "r_wrist": ("RightHand",),
    }
)

_TOKEN = re.compile(r"[{}]|[^\s{}]+")
_FRAMES_LINE = re.compile(r"Frames\s*:\s*(\S*)\s*$")
_FRAME_TIME_LINE = re.compile(r"Frame\s+Time\s*:\s*(\S*)\s*$")
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True

# X, Y, Z rotation: the two axes (i, j) spanning the rotated plane, in cyclic order.
_ROTATION_PLANE = ((1, 2), (2, 0), (0, 1))
# Rotation of +90 degrees about X: Y-up (x, y, z) to Z-up (x, -z, y), right-handed both.
_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True, eq=False)
class BVHMotion:
    """The content of one BVH file.

    Joints (``ROOT``/``JOINT``) are listed in file order, which is topological: a parent always
    comes before its children. End Sites are extra points named ``<parent>_end``; they follow the
    joints in :attr:`point_names` and :attr:`positions`.
    """

    source: str
    joint_names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    end_site_names: tuple[str, ...]
    end_site_parents: np.ndarray
    end_site_offsets: np.ndarray
    frame_time: float
    motion: np.ndarray
    units_assumed: str
    mm_per_unit: float

    @property
    def rate(self) -> float:
        """Frames per second, ``1 / frame_time`` (CMU's ``.0083333`` gives 120.0005)."""
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        """Number of frames (rows of :attr:`motion`)."""
        return int(self.motion.shape[0])

    @property
    def point_names(self) -> tuple[str, ...]:
        """Names of the points of :attr:`positions`: the joints, then the End Sites."""
        return self.joint_names + self.end_site_names

    @cached_property
    def positions(self) -> np.ndarray:
        """World positions ``(F, joints + end sites, 3)`` in file units and file axes."""
        positions = forward_kinematics(
            self.parents,
            self.offsets,
            self.channels,
            self.motion,
            self.end_site_parents,
            self.end_site_offsets,
        )
        positions.flags.writeable = False
        return positions

    @property
    def positions_mm(self) -> np.ndarray:
        """:attr:`positions` converted to millimetres with :attr:`mm_per_unit`."""
        return self.positions * self.mm_per_unit

    def point_index(self, name: str) -> int:
        """Index of a joint or End Site in :attr:`point_names`; BVHError if absent."""
        try:
            return self.point_names.index(name)
        except ValueError:
            raise BVHError(
                f"{self.source}: no joint or End Site named '{name}'; "
                f"the file has {', '.join(self.point_names)}"
            ) from None


def read_bvh(path: str | Path, unit: str = "auto") -> BVHMotion:
    """Read a BVH file.

    ``unit`` names the length unit of the file: one of ``"mm"``, ``"cm"``, ``"m"``, ``"inch"``,
    ``"cmu"`` (1/0.45 inch, the CMU database) or ``"auto"`` (guessed from the skeleton's size,
    see :func:`infer_unit`). The choice is recorded in ``units_assumed`` and ``mm_per_unit``.
    """
    text = read_text(path, BVHError)
    return parse_bvh(text, source=str(Path(path)), unit=unit)


def parse_bvh(text: str, *, source: str = "<string>", unit: str = "auto") -> BVHMotion:
    """Parse the text of a BVH file; ``source`` names it in error messages."""
    if unit != "auto" and unit not in MM_PER_UNIT:
        raise BVHError(
            f"{source}: unknown unit '{unit}'; use 'auto' or one of {', '.join(MM_PER_UNIT)}"
        )
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    motion_index = _find_motion_line(lines, source)
    skeleton = _HierarchyParser(lines[:motion_index], source).parse()
    n_channels = sum(len(c) for c in skeleton.channels)
    n_frames, frame_time, data_start = _parse_motion_header(lines, motion_index, source)
    motion = _parse_rows(lines[data_start:], data_start + 1, n_frames, skeleton, n_channels, source)
    parents = np.asarray(skeleton.parents, dtype=np.int64)
    offsets = np.asarray(skeleton.offsets, dtype=np.float64).reshape(-1, 3)
    end_parents = np.asarray(skeleton.end_site_parents, dtype=np.int64)
    end_offsets = np.asarray(skeleton.end_site_offsets, dtype=np.float64).reshape(-1, 3)
    channels = tuple(tuple(c) for c in skeleton.channels)
    for array in (motion, parents, offsets, end_parents, end_offsets):
        array.flags.writeable = False
    if unit == "auto":
        rest = forward_kinematics(
            parents, offsets, channels, np.zeros((1, n_channels)), end_parents, end_offsets
        )[0]
        unit = infer_unit(rest, source=source)
    return BVHMotion(
        source=source,
        joint_names=tuple(skeleton.names),
        parents=parents,
        offsets=offsets,
        channels=channels,
        end_site_names=tuple(skeleton.end_site_names),
        end_site_parents=end_parents,
        end_site_offsets=end_offsets,
        frame_time=frame_time,
        motion=motion,
        units_assumed=unit,
        mm_per_unit=MM_PER_UNIT[unit],
    )


def infer_unit(rest_points: np.ndarray, *, source: str = "<points>") -> str:
    """Guess the length unit of a human skeleton from its rest pose ``(N, 3)`` in file units.

    The body size is the largest extent of the points along x, y or z (standing height, or arm
    span in a T-pose). The unit of :data:`MM_PER_UNIT` that turns it into the value closest to
    :data:`TYPICAL_BODY_HEIGHT_MM` on a log scale is chosen; BVHError if even that is outside
    :data:`PLAUSIBLE_BODY_HEIGHT_MM` (not a human body, or an unsupported unit).
    """
    extent = float(np.max(np.ptp(rest_points, axis=0))) if len(rest_points) else 0.0
    if not extent > 0.0:
        raise BVHError(
            f"{source}: the skeleton's rest pose has zero size, so its unit cannot be "
            f"inferred; pass unit= one of {', '.join(MM_PER_UNIT)}"
        )
    unit = min(
        MM_PER_UNIT,
        key=lambda u: abs(math.log(extent * MM_PER_UNIT[u] / TYPICAL_BODY_HEIGHT_MM)),
    )
    height_mm = extent * MM_PER_UNIT[unit]
    low, high = PLAUSIBLE_BODY_HEIGHT_MM
    if not low <= height_mm <= high:
        raise BVHError(
            f"{source}: rest-pose size {extent:g} file units fits no known unit for a human "
            f"body (best: {unit}, {height_mm:.0f} mm); pass unit= one of "
            f"{', '.join(MM_PER_UNIT)}"
        )
    return unit


def forward_kinematics(
    parents: np.ndarray,
    offsets: np.ndarray,
    channels: Sequence[Sequence[str]],
    motion: np.ndarray,
    end_site_parents: np.ndarray | None = None,
    end_site_offsets: np.ndarray | None = None,
) -> np.ndarray:
    """World positions ``(F, J + E, 3)`` of the joints, then the End Sites.

    Per joint the local transform is a translation ``offset + position channels`` and a rotation
    ``R = R(c1) @ R(c2) @ R(c3)`` for its rotation channels ``c1, c2, c3`` in file order (angles in
    degrees, column vectors). ``world_R = parent_world_R @ R`` and
    ``world_position = parent_world_position + parent_world_R @ translation``; a root's world
    transform is its local one. Vectorised over frames; ``parents`` must precede children.
    """
    motion = np.asarray(motion, dtype=np.float64)
    n_frames = motion.shape[0]
    n_joints = len(parents)
    end_site_parents = np.zeros(0, np.int64) if end_site_parents is None else end_site_parents
    end_site_offsets = np.zeros((0, 3)) if end_site_offsets is None else end_site_offsets
    # Frames last: every matrix entry or vector component of a joint is a contiguous run over
    # frames, so the arithmetic below is plain elementwise work on long arrays.
    angles = np.deg2rad(motion.T)
    positions = np.empty((n_joints + len(end_site_parents), 3, n_frames))
    world_rotations = np.empty((n_joints, 3, 3, n_frames))
    column = 0
    for joint, joint_channels in enumerate(channels):
        translation = np.broadcast_to(offsets[joint][:, None], (3, n_frames)).copy()
        rotation_channels = []
        for name in joint_channels:
            kind, axis = CHANNEL_AXES[name]
            if kind == "position":
                translation[axis] += motion[:, column]
            else:
                rotation_channels.append((axis, column))
            column += 1
        parent = parents[joint]
        if parent < 0:
            positions[joint] = translation
            rotation = np.broadcast_to(np.eye(3)[:, :, None], (3, 3, n_frames)).copy()
        else:
            positions[joint] = positions[parent] + _rotate(world_rotations[parent], translation)
            rotation = world_rotations[parent].copy()
        for axis, rotation_column in rotation_channels:
            _right_multiply_axis_rotation(rotation, axis, angles[rotation_column])
        world_rotations[joint] = rotation
    for site, (parent, offset) in enumerate(zip(end_site_parents, end_site_offsets)):
        positions[n_joints + site] = positions[parent] + _rotate(
            world_rotations[parent], offset[:, None]
        )
    return np.ascontiguousarray(positions.transpose(2, 0, 1))


def _rotate(rotations: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``rotations @ vectors`` per frame, frames last: ``(3, 3, F)`` by ``(3, F)`` or ``(3, 1)``."""
    return (
        rotations[:, 0] * vectors[0] + rotations[:, 1] * vectors[1] + rotations[:, 2] * vectors[2]
    )


def _right_multiply_axis_rotation(rotations: np.ndarray, axis: int, radians: np.ndarray) -> None:
    """In place ``rotations = rotations @ R_axis(radians)`` per frame, frames last ``(3, 3, F)``.

    Right-multiplying by a rotation about one axis only mixes the two columns of the other axes,
    which is much cheaper than a general batched matrix product.
    """
    cos, sin = np.cos(radians), np.sin(radians)
    i, j = _ROTATION_PLANE[axis]
    column_i = rotations[:, i].copy()
    column_j = rotations[:, j]
    rotations[:, i] = column_i * cos + column_j * sin
    rotations[:, j] = column_j * cos - column_i * sin


def to_z_up(points: np.ndarray) -> np.ndarray:
    """Rotate Y-up points ``(..., 3)`` into posebench's Z-up world: ``(x, y, z) -> (x, -z, y)``.

    This is the proper rotation of +90 degrees about X (+Y goes to +Z, +Z to -Y), so handedness
    and left/right are preserved; a BVH subject facing +Z faces -Y afterwards.
    """
    return np.asarray(points, dtype=np.float64) @ _Y_UP_TO_Z_UP.T


def bvh_to_h36m17(motion: BVHMotion) -> np.ndarray:
    """The h36m17 joints ``(F, 17, 3)`` in millimetres of a CMU-skeleton BVH (file axes).

    Each joint is the mean of its :data:`CMU_TO_H36M17` points. Apply :func:`to_z_up` to get
    posebench's Z-up world frame.
    """
    missing = sorted(
        {name for names in CMU_TO_H36M17.values() for name in names} - set(motion.point_names)
    )
    if missing:
        raise BVHError(
            f"{motion.source}: not a CMU skeleton, joints {', '.join(missing)} are missing; "
            "the h36m17 mapping needs the CMU 31-joint hierarchy"
        )
    target = get_skeleton("h36m17").joints
    weights = np.zeros((len(target), len(motion.point_names)))
    for row, joint in enumerate(target):
        sources = CMU_TO_H36M17[joint]
        for name in sources:
            weights[row, motion.point_index(name)] += 1.0 / len(sources)
    return np.einsum("kn,fnc->fkc", weights, motion.positions_mm)


def _error(source: str, line: int, message: str) -> BVHError:
    return BVHError(f"{source}, line {line}: {message}")


def _find_motion_line(lines: list[str], source: str) -> int:
    for index, line in enumerate(lines):
        words = line.split()
        if words and words[0] == "MOTION":
            if len(words) > 1:
                raise _error(source, index + 1, "expected 'MOTION' alone on its line")
            return index
    raise _error(
        source,
        len(lines),
        "missing MOTION section: expected a line 'MOTION' followed by 'Frames:' and "
        "'Frame Time:' after the HIERARCHY block",
    )


@dataclass
class _Skeleton:
    names: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    offsets: list[list[float]] = field(default_factory=list)
    channels: list[list[str]] = field(default_factory=list)
    end_site_names: list[str] = field(default_factory=list)
    end_site_parents: list[int] = field(default_factory=list)
    end_site_offsets: list[list[float]] = field(default_factory=list)


class _HierarchyParser:
    """Recursive-descent parser of the HIERARCHY block; tokens keep their line numbers."""

    def __init__(self, lines: list[str], source: str) -> None:
        self.source = source
        self.tokens = [
            (match.group(), number)
            for number, line in enumerate(lines, start=1)
            for match in _TOKEN.finditer(line)
        ]
        self.end_line = len(lines) + 1
        self.position = 0
        self.skeleton = _Skeleton()

    def parse(self) -> _Skeleton:
        token, line = self._next("'HIERARCHY'")
        if token != "HIERARCHY":
            raise _error(
                self.source, line, f"expected 'HIERARCHY' to start the file, got '{token}'"
            )
        if self._peek() != "ROOT":
            token, line = self._next("'ROOT'")
            raise _error(self.source, line, f"expected 'ROOT', got '{token}'")
        while self._peek() == "ROOT":
            self._next("'ROOT'")
            self._parse_joint(parent=-1, depth=1)
        if self.position < len(self.tokens):
            token, line = self.tokens[self.position]
            what = "unbalanced braces: '}' closes nothing" if token == "}" else f"got '{token}'"
            raise _error(self.source, line, f"{what}; expected 'ROOT' or 'MOTION'")
        names = self.skeleton.names + self.skeleton.end_site_names
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise BVHError(
                f"{self.source}: joint names must be unique, repeated: {', '.join(duplicates)}"
            )
        return self.skeleton

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def _next(self, expected: str) -> tuple[str, int]:
        if self.position >= len(self.tokens):
            raise _error(
                self.source, self.end_line, f"expected {expected}, found the end of the hierarchy"
            )
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _parse_joint(self, parent: int, depth: int) -> None:
        keyword_line = self.tokens[self.position - 1][1]
        if depth > MAX_HIERARCHY_DEPTH:
            raise _error(
                self.source,
                keyword_line,
                f"joints are nested more than {MAX_HIERARCHY_DEPTH} deep; a body skeleton nests "
                "far less, so the hierarchy is corrupt (check its braces)",
            )
        name_parts = []
        while self.position < len(self.tokens) and self.tokens[self.position][1] == keyword_line:
            if self._peek() in ("{", "}"):
                break
            name_parts.append(self._next("a joint name")[0])
        if not name_parts:
            raise _error(self.source, keyword_line, "expected a joint name after ROOT/JOINT")
        name = " ".join(name_parts)
        skeleton = self.skeleton
        index = len(skeleton.names)
        skeleton.names.append(name)
        skeleton.parents.append(parent)
        skeleton.offsets.append([])
        skeleton.channels.append([])
        open_line = self._expect_open(name)
        has_channels = False
        while True:
            token, line = self._next_in_block(name, open_line)
            if token == "}":
                break
            if token == "OFFSET":
                if skeleton.offsets[index]:
                    raise _error(self.source, line, f"joint '{name}' has a second OFFSET")
                skeleton.offsets[index] = self._read_offset(name)
            elif token == "CHANNELS":
                if has_channels:
                    raise _error(self.source, line, f"joint '{name}' has a second CHANNELS")
                skeleton.channels[index] = self._read_channels(name)
                has_channels = True
            elif token == "JOINT":
                self._parse_joint(parent=index, depth=depth + 1)
            elif token == "End":
                self._parse_end_site(index, line)
            else:
                raise _error(
                    self.source,
                    line,
                    f"expected OFFSET, CHANNELS, JOINT, End Site or '}}' in joint '{name}', "
                    f"got '{token}'",
                )
        if not skeleton.offsets[index]:
            raise _error(self.source, open_line, f"joint '{name}' has no OFFSET")

    def _parse_end_site(self, parent: int, line: int) -> None:
        token, token_line = self._next("'Site' after 'End'")
        if token != "Site":
            raise _error(self.source, token_line, f"expected 'End Site', got 'End {token}'")
        name = self.skeleton.names[parent] + END_SITE_SUFFIX
        open_line = self._expect_open(name)
        token, token_line = self._next_in_block(name, open_line)
        if token != "OFFSET":
            raise _error(
                self.source, token_line, f"expected OFFSET in End Site '{name}', got '{token}'"
            )
        offset = self._read_offset(name)
        token, token_line = self._next_in_block(name, open_line)
        if token != "}":
            raise _error(
                self.source, token_line, f"expected '}}' closing End Site '{name}', got '{token}'"
            )
        self.skeleton.end_site_names.append(name)
        self.skeleton.end_site_parents.append(parent)
        self.skeleton.end_site_offsets.append(offset)

    def _expect_open(self, name: str) -> int:
        token, line = self._next(f"'{{' opening '{name}'")
        if token != "{":
            raise _error(self.source, line, f"expected '{{' opening '{name}', got '{token}'")
        return line

    def _next_in_block(self, name: str, open_line: int) -> tuple[str, int]:
        if self.position >= len(self.tokens):
            raise _error(
                self.source,
                self.end_line,
                f"unbalanced braces: '{{' of '{name}' opened at line {open_line} is never "
                "closed; expected '}' before MOTION",
            )
        return self._next("'}'")

    def _read_offset(self, name: str) -> list[float]:
        values = []
        for _ in range(3):
            token, line = self._next(f"3 OFFSET values for '{name}'")
            values.append(self._number(token, line, f"an OFFSET value of '{name}'"))
        return values

    def _read_channels(self, name: str) -> list[str]:
        token, line = self._next(f"the channel count of '{name}'")
        try:
            count = int(token)
        except ValueError:
            count = -1
        if not 0 <= count <= 6:
            raise _error(
                self.source,
                line,
                f"expected a channel count 0..6 after CHANNELS of '{name}', got '{token}'",
            )
        channels = []
        for _ in range(count):
            token, line = self._next(f"{count} channel names for '{name}'")
            canonical = _CHANNEL_BY_LOWER.get(token.lower())
            if canonical is None:
                raise _error(
                    self.source,
                    line,
                    f"unknown channel name '{token}' in joint '{name}' (CHANNELS {count}); "
                    f"expected one of {', '.join(CHANNEL_AXES)}",
                )
            if canonical in channels:
                raise _error(self.source, line, f"channel '{canonical}' repeated in joint '{name}'")
            channels.append(canonical)
        return channels

    def _number(self, token: str, line: int, what: str) -> float:
        try:
            value = float(token)
        except ValueError:
            raise _error(
                self.source, line, f"expected a number for {what}, got '{token}'"
            ) from None
        if not math.isfinite(value):
            raise _error(self.source, line, f"{what} is '{token}'; expected a finite number")
        return value


def _parse_motion_header(
    lines: list[str], motion_index: int, source: str
) -> tuple[int, float, int]:
    """Frames count, frame time and the index of the first data line after 'MOTION'."""
    index = _next_nonblank(lines, motion_index + 1)
    match = _FRAMES_LINE.match(lines[index].strip()) if index < len(lines) else None
    if match is None:
        raise _error(source, index + 1, "expected 'Frames: <count>' after MOTION")
    try:
        n_frames = int(match.group(1))
    except ValueError:
        n_frames = -1
    if n_frames < 0:
        raise _error(
            source,
            index + 1,
            f"expected a non-negative integer after 'Frames:', got '{match.group(1)}'",
        )
    index = _next_nonblank(lines, index + 1)
    match = _FRAME_TIME_LINE.match(lines[index].strip()) if index < len(lines) else None
    if match is None:
        raise _error(source, index + 1, "expected 'Frame Time: <seconds>' after the Frames line")
    try:
        frame_time = float(match.group(1))
    except ValueError:
        frame_time = math.nan
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise _error(
            source,
            index + 1,
            f"expected a positive number of seconds after 'Frame Time:', got '{match.group(1)}'",
        )
    return n_frames, frame_time, index + 1


def _next_nonblank(lines: list[str], start: int) -> int:
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index


def _parse_rows(
    lines: list[str],
    first_line: int,
    n_frames: int,
    skeleton: _Skeleton,
    n_channels: int,
    source: str,
) -> np.ndarray:
    """The motion rows as ``(n_frames, n_channels)``, parsed in one vectorised pass.

    Values per line are counted on the raw bytes (token starts between line starts), so rows of
    the wrong length are found without a loop; the numbers are then converted in one call.
    """
    text = "\n".join(lines)
    buffer = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    is_space = _WHITESPACE[buffer]
    token_starts = np.flatnonzero(~is_space & np.concatenate(([True], is_space[:-1])))
    line_starts = np.concatenate(([0], np.flatnonzero(buffer == ord("\n")) + 1))
    first_tokens = np.searchsorted(token_starts, line_starts)
    counts = np.diff(np.append(first_tokens, len(token_starts)))
    rows = np.flatnonzero(counts)
    wrong = rows[counts[rows] != n_channels]
    if wrong.size:
        row = int(wrong[0])
        raise _error(
            source,
            first_line + row,
            f"expected {n_channels} values (one per channel), found {counts[row]}"
            + (" (truncated row)" if row == rows[-1] and counts[row] < n_channels else ""),
        )
    if len(rows) < n_frames:
        last = first_line + int(rows[-1]) if len(rows) else first_line
        raise _error(
            source,
            last,
            f"truncated: 'Frames: {n_frames}' declared but only {len(rows)} rows of values found",
        )
    if len(rows) > n_frames:
        raise _error(
            source,
            first_line + int(rows[n_frames]),
            f"'Frames: {n_frames}' declared but {len(rows)} rows of values found; "
            "correct the Frames line",
        )
    if n_frames == 0:
        return np.zeros((0, n_channels))

    def line_of_token(index: int) -> int:
        return first_line + int(np.searchsorted(line_starts, token_starts[index], side="right")) - 1

    try:
        values = np.loadtxt(io.StringIO(text), dtype=np.float64, comments=None, ndmin=2)
    except ValueError as exc:
        tokens = text.split()
        bad = next((k for k, token in enumerate(tokens) if not _is_float(token)), None)
        if bad is None:
            raise _error(source, first_line, f"cannot read the motion values: {exc}") from None
        raise _error(
            source,
            line_of_token(bad),
            f"expected a number for channel {_channel_label(skeleton, bad % n_channels)}, "
            f"got '{tokens[bad]}'",
        ) from None
    values = values.reshape(n_frames, n_channels)
    not_finite = np.flatnonzero(~np.isfinite(values.ravel()))
    if not_finite.size:
        bad = int(not_finite[0])
        token = bytes(buffer[token_starts[bad] :][:64]).split()[0].decode("utf-8", "replace")
        raise _error(
            source,
            line_of_token(bad),
            f"channel {_channel_label(skeleton, bad % n_channels)} is '{token}'; "
            "expected a finite number (NaN and infinity are not allowed)",
        )
    return values


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _channel_label(skeleton: _Skeleton, column: int) -> str:
    for name, channels in zip(skeleton.names, skeleton.channels):
        if column < len(channels):
            return f"{name}.{channels[column]}"
        column -= len(channels)
    return str(column)
