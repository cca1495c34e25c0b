"""Marker sets: how optical-mocap markers (or exported joint centres) become skeleton joints.

A marker set is a small TOML file. Each joint is the weighted mean of named markers plus an
optional offset expressed in a local frame built from markers, optionally scaled by the distance
between two marker groups (for regressions such as Bell's hip joint centre)::

    name = "my-lab"
    skeleton = "h36m17"

    [frames.pelvis]                  # e1 = x_from -> x_to, e3 = e1 x (y_from -> y_to), e2 = e3 x e1
    x_from = ["LASI"]
    x_to = ["RASI"]
    y_from = ["LPSI", "RPSI"]
    y_to = ["LASI", "RASI"]

    [joints.r_hip]
    markers = ["LASI", "RASI"]        # or a table of weights: { LASI = 0.5, RASI = 0.5 }
    frame = "pelvis"
    offset = [0.36, -0.14, -0.30]     # along (e1, e2, e3)
    scale = [["LASI"], ["RASI"]]      # offset x |mean(RASI) - mean(LASI)|; without it: mm

Marker groups are lists of labels (equal weights). A joint is NaN in every frame where one of its
markers, or one marker of its frame or scale, is missing. Built-in sets ship as TOML files next to
this module; docs/converters/mocap.md lists their formulas.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from posebench.errors import PosebenchError
from posebench.skeletons import get_skeleton

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BUILTIN_DIRECTORY = Path(__file__).parent


class MarkerSetError(PosebenchError):
    """A marker set file is invalid, or no marker set fits the labels of a recording."""


Group = tuple[str, ...]


@dataclass(frozen=True)
class LocalFrame:
    """An orthonormal frame from four marker groups (see the module docstring)."""

    x_from: Group
    x_to: Group
    y_from: Group
    y_to: Group

    @property
    def markers(self) -> set[str]:
        return set(self.x_from + self.x_to + self.y_from + self.y_to)


@dataclass(frozen=True)
class JointRule:
    """One joint: weighted mean of markers plus an offset in a local frame."""

    weights: Mapping[str, float]
    frame: str | None = None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[Group, Group] | None = None

    @property
    def markers(self) -> set[str]:
        extra = set(self.scale[0] + self.scale[1]) if self.scale else set()
        return set(self.weights) | extra


@dataclass(frozen=True)
class MarkerSet:
    """A named mapping from marker labels to the joints of a skeleton."""

    name: str
    skeleton: str
    joints: Mapping[str, JointRule]
    frames: Mapping[str, LocalFrame]
    description: str = ""
    priority: int = 0

    def required_markers(self) -> set[str]:
        """Every label the set reads."""
        needed: set[str] = set()
        for rule in self.joints.values():
            needed |= rule.markers
            if rule.frame is not None:
                needed |= self.frames[rule.frame].markers
        return needed

    def fits(self, labels: list[str]) -> bool:
        """Whether every marker the set needs is among ``labels``."""
        return self.required_markers() <= set(labels)

    def apply(self, points: np.ndarray, labels: list[str]) -> np.ndarray:
        """Joints (F, J, 3) from marker trajectories ``points`` (F, M, 3) labelled ``labels``.

        Vectorised over frames; NaN wherever an input marker is missing.
        """
        missing = sorted(self.required_markers() - set(labels))
        if missing:
            raise MarkerSetError(f"marker set {self.name!r} needs markers {missing} that the recording does not have")
        index = {label: i for i, label in enumerate(labels)}
        points = np.asarray(points, dtype=np.float64)

        def mean(group: Group) -> np.ndarray:
            return points[:, [index[m] for m in group]].mean(axis=1)

        axes = {name: _frame_axes(mean(f.x_from), mean(f.x_to), mean(f.y_from), mean(f.y_to)) for name, f in self.frames.items()}
        skeleton = get_skeleton(self.skeleton)
        joints = np.full((points.shape[0], skeleton.n_joints, 3), np.nan)
        for name, rule in self.joints.items():
            markers = list(rule.weights)
            weights = np.array([rule.weights[m] for m in markers])
            position = np.einsum("fmc,m->fc", points[:, [index[m] for m in markers]], weights / weights.sum())
            if rule.frame is not None:
                offset = np.asarray(rule.offset)
                if rule.scale is not None:
                    offset = offset[None] * np.linalg.norm(mean(rule.scale[1]) - mean(rule.scale[0]), axis=-1)[:, None]
                else:
                    offset = np.broadcast_to(offset, position.shape)
                position = position + np.einsum("fk,fkc->fc", offset, axes[rule.frame])
            joints[:, skeleton.index(name)] = position
        return joints


def _frame_axes(x_from: np.ndarray, x_to: np.ndarray, y_from: np.ndarray, y_to: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rows e1, e2, e3 of the local frame in each frame."""
    with np.errstate(invalid="ignore", divide="ignore"):
        e1 = _unit(x_to - x_from)
        e3 = _unit(np.cross(e1, y_to - y_from))
        e2 = np.cross(e3, e1)
    return np.stack([e1, e2, e3], axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _group(value: Any, where: str) -> Group:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise MarkerSetError(f"{where}: expected a non-empty list of marker labels, found {value!r}")
    return tuple(value)


def parse_markerset(data: Mapping[str, Any], source: str) -> MarkerSet:
    """Build a :class:`MarkerSet` from parsed TOML/YAML content; errors name ``source`` and the field."""
    try:
        name = data["name"]
        joints_table = data["joints"]
    except KeyError as exc:
        raise MarkerSetError(f"{source}: missing required key {exc.args[0]!r} (see docs/converters/mocap.md for the format)") from None
    skeleton_name = data.get("skeleton", "h36m17")
    try:
        skeleton = get_skeleton(skeleton_name)
    except KeyError as exc:
        raise MarkerSetError(f"{source}: {exc}") from None
    frames = {}
    for frame_name, spec in data.get("frames", {}).items():
        where = f"{source}: frames.{frame_name}"
        try:
            frames[frame_name] = LocalFrame(*(_group(spec[k], f"{where}.{k}") for k in ("x_from", "x_to", "y_from", "y_to")))
        except KeyError as exc:
            raise MarkerSetError(f"{where}: missing {exc.args[0]!r}; a frame needs x_from, x_to, y_from, y_to") from None
    joints = {}
    for joint, spec in joints_table.items():
        where = f"{source}: joints.{joint}"
        if joint not in skeleton.joints:
            raise MarkerSetError(f"{where}: {joint!r} is not a joint of {skeleton_name}; joints are {list(skeleton.joints)}")
        markers = spec.get("markers")
        if isinstance(markers, Mapping):
            weights = {str(k): float(v) for k, v in markers.items()}
        else:
            weights = {m: 1.0 for m in _group(markers, f"{where}.markers")}
        if not weights or sum(weights.values()) <= 0:
            raise MarkerSetError(f"{where}.markers: weights must be positive in sum")
        frame = spec.get("frame")
        if frame is not None and frame not in frames:
            raise MarkerSetError(f"{where}.frame: unknown frame {frame!r}; defined frames are {sorted(frames)}")
        offset = spec.get("offset", [0.0, 0.0, 0.0])
        if not (isinstance(offset, list) and len(offset) == 3 and all(isinstance(v, (int, float)) for v in offset)):
            raise MarkerSetError(f"{where}.offset: expected three numbers, found {offset!r}")
        if frame is None and any(offset):
            raise MarkerSetError(f"{where}.offset: an offset needs a 'frame' to be expressed in")
        scale = spec.get("scale")
        if scale is not None:
            if not (isinstance(scale, list) and len(scale) == 2):
                raise MarkerSetError(f"{where}.scale: expected two marker groups, found {scale!r}")
            scale = (_group(scale[0], f"{where}.scale[0]"), _group(scale[1], f"{where}.scale[1]"))
        joints[joint] = JointRule(weights, frame, tuple(float(v) for v in offset), scale)
    return MarkerSet(name, skeleton_name, joints, frames, data.get("description", ""), int(data.get("priority", 0)))


def read_markerset(path: str | Path) -> MarkerSet:
    """Read a marker set from a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MarkerSetError(f"{path}: cannot read marker set: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # parser errors of either format
        raise MarkerSetError(f"{path}: not a valid {path.suffix.lstrip('.') or 'TOML'} file: {exc}") from None
    if not isinstance(data, Mapping):
        raise MarkerSetError(f"{path}: expected a table at the top level")
    return parse_markerset(data, str(path))


def builtin_markersets() -> dict[str, MarkerSet]:
    """The marker sets that ship with posebench, by name, in detection order (highest priority first)."""
    sets = [read_markerset(p) for p in sorted(BUILTIN_DIRECTORY.glob("*.toml"))]
    sets.sort(key=lambda s: -s.priority)
    return {s.name: s for s in sets}


def resolve_markerset(name_or_path: str | None, labels: list[str]) -> MarkerSet:
    """The marker set named (built-in name or file path), or the first built-in that fits ``labels``."""
    builtins = builtin_markersets()
    if name_or_path is not None:
        if name_or_path in builtins:
            chosen = builtins[name_or_path]
        elif Path(name_or_path).suffix:
            chosen = read_markerset(name_or_path)
        else:
            raise MarkerSetError(f"unknown marker set {name_or_path!r}; built-in sets are {sorted(builtins)}, or pass a .toml/.yaml file")
        if not chosen.fits(labels):
            missing = sorted(chosen.required_markers() - set(labels))
            raise MarkerSetError(f"marker set {chosen.name!r} needs markers the recording lacks: {missing}; labels found: {sorted(labels)}")
        return chosen
    for markerset in builtins.values():
        if markerset.fits(labels):
            return markerset
    raise MarkerSetError(
        f"no built-in marker set fits the labels {sorted(labels)}; built-in sets are {sorted(builtins)}. "
        "Write a mapping file (joints as weighted means of your markers, e.g. "
        "'[joints.r_knee]\\nmarkers = [\"RKNE\"]') and pass it with --markerset FILE; "
        "see docs/converters/mocap.md"
    )
