"""Named skeletons, joint mappings between them and left/right mirroring.

A :class:`Skeleton` is an ordered list of joint names with a kinematic tree (``parents``) and
left/right pairs. Skeletons are registered by name (``h36m17`` is the benchmark target);
:class:`JointMapping` converts poses of one skeleton into another with a fixed linear formula per
target joint. Tables and formulas are documented in docs/skeletons.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np

from posebench._array import Array, namespace
from posebench.cameras import as_float_array, asarray_like
from posebench.errors import SkeletonError, UnknownNameError

__all__ = [
    "H36M32_TO_17",
    "JointMapping",
    "Skeleton",
    "flip_joints_3d",
    "flip_keypoints_2d",
    "get_mapping",
    "get_skeleton",
    "mapping_names",
    "register_mapping",
    "register_skeleton",
    "skeleton_names",
]


def _int_tuple(values: Iterable[Any], what: str, skeleton: str) -> tuple[int, ...]:
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise SkeletonError(f"skeleton {skeleton!r}: {what} must be integers, got {value!r}")
        result.append(int(value))
    return tuple(result)


@dataclass(frozen=True)
class Skeleton:
    """Joint names, kinematic tree and left/right symmetry of a joint layout.

    ``parents[j]`` is the index of joint ``j``'s parent, -1 for the single root. ``left[i]`` and
    ``right[i]`` are mirror images of each other; joints on the midline are in neither list.
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...] = ()
    right: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        name = str(self.name)
        joints = tuple(str(joint) for joint in self.joints)
        parents = _int_tuple(self.parents, "parents", name)
        left = _int_tuple(self.left, "left", name)
        right = _int_tuple(self.right, "right", name)
        for attribute, value in (
            ("name", name),
            ("joints", joints),
            ("parents", parents),
            ("left", left),
            ("right", right),
        ):
            object.__setattr__(self, attribute, value)
        self._validate()

    def _validate(self) -> None:
        n = len(self.joints)
        where = f"skeleton {self.name!r}"
        if not self.name:
            raise SkeletonError("a skeleton needs a non-empty name")
        if n == 0:
            raise SkeletonError(f"{where}: no joints")
        duplicates = sorted({j for j in self.joints if self.joints.count(j) > 1})
        if duplicates:
            raise SkeletonError(f"{where}: duplicate joint names {duplicates}")
        if len(self.parents) != n:
            raise SkeletonError(
                f"{where}: {len(self.parents)} parents for {n} joints; give one parent per joint"
            )
        out_of_range = [(j, p) for j, p in enumerate(self.parents) if not -1 <= p < n or p == j]
        if out_of_range:
            j, p = out_of_range[0]
            raise SkeletonError(
                f"{where}: joint {j} ({self.joints[j]!r}) has parent {p}; parents must be -1 "
                f"(root) or another joint's index in 0..{n - 1}"
            )
        roots = [j for j, p in enumerate(self.parents) if p == -1]
        if len(roots) != 1:
            raise SkeletonError(
                f"{where}: exactly one root (parent -1) is required, found {len(roots)}: "
                f"{[self.joints[j] for j in roots]}"
            )
        for start in range(n):
            joint, steps = start, 0
            while joint != -1:
                joint = self.parents[joint]
                steps += 1
                if steps > n:
                    raise SkeletonError(
                        f"{where}: the parents of joint {start} ({self.joints[start]!r}) form a "
                        "cycle; every joint must reach the root"
                    )
        if len(self.left) != len(self.right):
            raise SkeletonError(
                f"{where}: left has {len(self.left)} joints but right has {len(self.right)}; "
                "left[i] must mirror right[i]"
            )
        sides = self.left + self.right
        bad = [i for i in sides if not 0 <= i < n]
        if bad:
            raise SkeletonError(f"{where}: left/right indices {bad} are outside 0..{n - 1}")
        if len(set(sides)) != len(sides):
            repeated = sorted({i for i in sides if sides.count(i) > 1})
            raise SkeletonError(
                f"{where}: joints {[self.joints[i] for i in repeated]} appear more than once in "
                "left/right; the two lists must be disjoint and without repeats"
            )

    @property
    def n_joints(self) -> int:
        """Number of joints."""
        return len(self.joints)

    def index(self, name: str) -> int:
        """Index of the joint called ``name``."""
        try:
            return self.joints.index(name)
        except ValueError:
            raise UnknownNameError(
                f"skeleton {self.name!r} has no joint {name!r}; its joints are "
                f"{', '.join(self.joints)}"
            ) from None

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """``(child, parent)`` index pairs, one per non-root joint, in joint order."""
        return tuple((j, p) for j, p in enumerate(self.parents) if p >= 0)

    @property
    def flip_permutation(self) -> np.ndarray:
        """Joint index array that swaps every left joint with its right partner.

        ``x[..., flip_permutation, :]`` is the pose with left and right joints exchanged; it is
        its own inverse.
        """
        permutation = np.arange(self.n_joints)
        permutation[list(self.left)] = self.right
        permutation[list(self.right)] = self.left
        return permutation

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description, the inverse of :meth:`from_dict`."""
        return {
            "name": self.name,
            "joints": list(self.joints),
            "parents": list(self.parents),
            "left": list(self.left),
            "right": list(self.right),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Skeleton:
        """Skeleton from the output of :meth:`to_dict` (e.g. read from dataset metadata)."""
        if not isinstance(data, Mapping):
            raise SkeletonError(f"a skeleton description must be a mapping, got {type(data)}")
        keys = ("name", "joints", "parents", "left", "right")
        missing = [key for key in keys if key not in data]
        unknown = sorted(set(data) - set(keys))
        if missing or unknown:
            raise SkeletonError(
                f"skeleton description needs exactly the keys {list(keys)}; missing {missing}, "
                f"unknown {unknown}"
            )
        for key in keys[1:]:
            if isinstance(data[key], (str, bytes)) or not isinstance(data[key], Iterable):
                raise SkeletonError(
                    f"skeleton {data['name']!r}: {key!r} must be a list, got {data[key]!r}"
                )
        return cls(
            data["name"],
            tuple(data["joints"]),
            tuple(data["parents"]),
            tuple(data["left"]),
            tuple(data["right"]),
        )


# --------------------------------------------------------------------------------------------
# registry

_SKELETONS: dict[str, Skeleton] = {}


def register_skeleton(skeleton: Skeleton) -> Skeleton:
    """Make ``skeleton`` available to :func:`get_skeleton` under its name.

    Registering an identical skeleton again is a no-op; a different skeleton under a name that
    is already taken is a :class:`SkeletonError`.
    """
    existing = _SKELETONS.get(skeleton.name)
    if existing is not None and existing != skeleton:
        raise SkeletonError(
            f"a different skeleton named {skeleton.name!r} is already registered; choose "
            "another name"
        )
    _SKELETONS[skeleton.name] = skeleton
    return skeleton


def get_skeleton(name: str) -> Skeleton:
    """The registered skeleton called ``name``."""
    try:
        return _SKELETONS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown skeleton {name!r}; registered skeletons: {', '.join(skeleton_names())}"
        ) from None


def skeleton_names() -> tuple[str, ...]:
    """Names of all registered skeletons, sorted."""
    return tuple(sorted(_SKELETONS))


# --------------------------------------------------------------------------------------------
# built-in skeletons

H36M17 = register_skeleton(
    Skeleton(
        "h36m17",
        (
            "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
            "thorax", "neck_nose", "head_top", "l_shoulder", "l_elbow", "l_wrist",
            "r_shoulder", "r_elbow", "r_wrist",
        ),
        (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
        (4, 5, 6, 11, 12, 13),
        (1, 2, 3, 14, 15, 16),
    )
)  # fmt: skip

H36M32 = register_skeleton(
    Skeleton(
        "h36m32",
        (
            "Hips",
            "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToeBase_Site",
            "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToeBase_Site",
            "Spine", "Spine1", "Neck", "Head", "Head_Site",
            "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
            "LeftHandThumb", "LeftHandThumb_Site", "L_Wrist_End", "L_Wrist_End_Site",
            "RightShoulder", "RightArm", "RightForeArm", "RightHand",
            "RightHandThumb", "RightHandThumb_Site", "R_Wrist_End", "R_Wrist_End_Site",
        ),
        (
            -1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14,
            12, 16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30,
        ),
        (6, 7, 8, 9, 10, 16, 17, 18, 19, 20, 21, 22, 23),
        (1, 2, 3, 4, 5, 24, 25, 26, 27, 28, 29, 30, 31),
    )
)  # fmt: skip

#: Columns of the 32-joint Human3.6M mocap kept (in this order) for the 17-joint skeleton.
H36M32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

HUMANEVA15 = register_skeleton(
    Skeleton(
        "humaneva15",
        (
            "pelvis", "thorax", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow",
            "r_wrist", "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "head",
        ),
        (-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
        (2, 3, 4, 8, 9, 10),
        (5, 6, 7, 11, 12, 13),
    )
)  # fmt: skip

COCO17 = register_skeleton(
    Skeleton(
        "coco17",
        (
            "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
            "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
            "r_ankle",
        ),
        (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
        (1, 3, 5, 7, 9, 11, 13, 15),
        (2, 4, 6, 8, 10, 12, 14, 16),
    )
)  # fmt: skip

OPENPOSE25 = register_skeleton(
    Skeleton(
        "openpose25",
        (
            "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
            "l_wrist", "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
            "r_eye", "l_eye", "r_ear", "l_ear", "l_big_toe", "l_small_toe", "l_heel",
            "r_big_toe", "r_small_toe", "r_heel",
        ),
        (1, 8, 1, 2, 3, 1, 5, 6, -1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11),
        (5, 6, 7, 12, 13, 14, 16, 18, 19, 20, 21),
        (2, 3, 4, 9, 10, 11, 15, 17, 22, 23, 24),
    )
)  # fmt: skip

OPENPOSE18 = register_skeleton(
    Skeleton(
        "openpose18",
        (
            "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
            "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye",
            "l_eye", "r_ear", "l_ear",
        ),
        (1, -1, 1, 2, 3, 1, 5, 6, 1, 8, 9, 1, 11, 12, 0, 0, 14, 15),
        (5, 6, 7, 11, 12, 13, 15, 17),
        (2, 3, 4, 8, 9, 10, 14, 16),
    )
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# joint mappings


def _format_weight(weight: float, joint: str) -> str:
    return joint if weight == 1 else f"{weight:g}·{joint}"


@dataclass(frozen=True, eq=False)
class JointMapping:
    """Linear conversion of poses from skeleton ``source`` to skeleton ``target``.

    ``weights`` ``(n_target, n_source)``: ``target_j = sum_i weights[j, i] · source_i``. Target
    joints listed in ``approximate`` are stand-ins for the target's landmark (explained in
    ``notes``); a target joint whose row is all zero has no formula and comes out NaN.
    """

    source: str
    target: str
    weights: np.ndarray
    approximate: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        source, target = get_skeleton(self.source), get_skeleton(self.target)
        where = f"joint mapping {self.source} -> {self.target}"
        weights = np.array(self.weights, dtype=np.float64)
        if weights.shape != (target.n_joints, source.n_joints):
            raise SkeletonError(
                f"{where}: weights must have shape (n_target, n_source) = "
                f"({target.n_joints}, {source.n_joints}), got {weights.shape}"
            )
        if not np.isfinite(weights).all():
            raise SkeletonError(f"{where}: weights must be finite")
        weights.setflags(write=False)
        approximate = tuple(str(joint) for joint in self.approximate)
        for joint in approximate + tuple(self.notes):
            if joint not in target.joints:
                raise SkeletonError(
                    f"{where}: {joint!r} in approximate/notes is not a joint of {target.name!r}"
                )
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "approximate", approximate)
        object.__setattr__(self, "notes", MappingProxyType(dict(self.notes)))

    @classmethod
    def from_formulas(
        cls,
        source: str,
        target: str,
        formulas: Mapping[str, Mapping[str, float]],
        approximate: Mapping[str, str] | None = None,
    ) -> JointMapping:
        """Mapping from per-joint formulas ``{target_joint: {source_joint: weight}}``.

        ``approximate`` maps each approximate target joint to the explanation kept in ``notes``.
        Target joints without a formula have no value (NaN).
        """
        source_skeleton, target_skeleton = get_skeleton(source), get_skeleton(target)
        weights = np.zeros((target_skeleton.n_joints, source_skeleton.n_joints))
        for target_joint, terms in formulas.items():
            row = target_skeleton.index(target_joint)
            for source_joint, weight in terms.items():
                weights[row, source_skeleton.index(source_joint)] += weight
        approximate = dict(approximate or {})
        ordered = tuple(j for j in target_skeleton.joints if j in approximate)
        return cls(source, target, weights, ordered, {j: approximate[j] for j in ordered})

    @property
    def key(self) -> tuple[str, str]:
        """``(source, target)``."""
        return (self.source, self.target)

    def formula(self, joint: str) -> str:
        """Human-readable formula of target ``joint``, e.g. ``0.5·l_hip + 0.5·r_hip``."""
        row = self.weights[get_skeleton(self.target).index(joint)]
        names = get_skeleton(self.source).joints
        order = sorted(np.flatnonzero(row), key=lambda i: (row[i] < 0, i))
        terms = [_format_weight(float(row[i]), names[i]) for i in order]
        return " + ".join(terms).replace("+ -", "- ") if terms else "none (NaN)"

    def apply(self, x: Array) -> Array:
        """Convert poses ``(..., J_source, C)`` to ``(..., J_target, C)``.

        Works on numpy arrays and torch tensors (same kind, dtype and device out). A target
        value is NaN when its formula uses a non-finite source value (in that coordinate) or when
        the target joint has no formula.
        """
        x = as_float_array(x)
        n_source = self.weights.shape[1]
        if x.ndim < 2 or x.shape[-2] != n_source:
            raise SkeletonError(
                f"joint mapping {self.source} -> {self.target} expects poses of shape "
                f"(..., {n_source}, C), got {tuple(x.shape)}"
            )
        xp = namespace(x)
        missing = ~xp.isfinite(x)
        if bool(missing.any()):
            filled = xp.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            converted = asarray_like(self.weights, x) @ filled
            uses_missing = asarray_like(self.weights != 0, x) @ asarray_like(missing, x)
            converted = xp.where(uses_missing > 0, math.nan, converted)
        else:
            converted = asarray_like(self.weights, x) @ x
        no_formula = ~self.weights.any(axis=1)
        if no_formula.any():
            converted = xp.where(asarray_like(no_formula[:, None], x) > 0, math.nan, converted)
        return converted


_MAPPINGS: dict[tuple[str, str], JointMapping] = {}


def register_mapping(mapping: JointMapping) -> JointMapping:
    """Make ``mapping`` available to :func:`get_mapping`; a pair can be registered only once."""
    if mapping.key in _MAPPINGS and _MAPPINGS[mapping.key] is not mapping:
        raise SkeletonError(
            f"a joint mapping {mapping.source} -> {mapping.target} is already registered"
        )
    _MAPPINGS[mapping.key] = mapping
    return mapping


def get_mapping(source: str, target: str = "h36m17") -> JointMapping:
    """The registered mapping from skeleton ``source`` to skeleton ``target``."""
    try:
        return _MAPPINGS[(source, target)]
    except KeyError:
        known = ", ".join(f"{s} -> {t}" for s, t in mapping_names())
        raise UnknownNameError(
            f"no joint mapping from {source!r} to {target!r}; registered mappings: {known}"
        ) from None


def mapping_names() -> tuple[tuple[str, str], ...]:
    """``(source, target)`` of every registered mapping, sorted."""
    return tuple(sorted(_MAPPINGS))


def _same_names(names: Iterable[str]) -> dict[str, dict[str, float]]:
    return {name: {name: 1.0} for name in names}


_LIMBS = (
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)  # fmt: skip

_NOTE_PELVIS_HIPS = "midpoint of the two hip keypoints: 0.5·l_hip + 0.5·r_hip"
_NOTE_SPINE = "midpoint of pelvis and thorax, each derived as documented for this mapping"
_NOTE_THORAX_SHOULDERS = (
    "midpoint of the shoulders; Human3.6M's thorax (neck base) lies slightly above it"
)
_NOTE_THORAX_NECK = "OpenPose's neck keypoint, trained as the midpoint of the shoulders"
_NOTE_NOSE = "the nose keypoint; Human3.6M's neck/nose joint lies inside the head, behind it"
_NOTE_HEAD_TOP = (
    "mid-ears + 0.7·(mid-ears - mid-shoulders): the crown is taken to lie above the ears by 0.7 "
    "times the ears' height above the shoulders (adult anthropometric proportion)"
)


def _keypoint_formulas(
    pelvis: dict[str, float], thorax: dict[str, float]
) -> dict[str, dict[str, float]]:
    """h36m17 formulas shared by the COCO and OpenPose keypoint layouts."""
    spine: dict[str, float] = {}
    for joint, weight in (*pelvis.items(), *thorax.items()):
        spine[joint] = spine.get(joint, 0.0) + 0.5 * weight
    head_top = {"l_ear": 0.85, "r_ear": 0.85}
    for joint, weight in thorax.items():
        head_top[joint] = head_top.get(joint, 0.0) - 0.7 * weight
    return {
        **_same_names(_LIMBS),
        "pelvis": pelvis,
        "spine": spine,
        "thorax": thorax,
        "neck_nose": {"nose": 1.0},
        "head_top": head_top,
    }


_MID_HIPS = {"l_hip": 0.5, "r_hip": 0.5}
_MID_SHOULDERS = {"l_shoulder": 0.5, "r_shoulder": 0.5}

register_mapping(
    JointMapping(
        "h36m32",
        "h36m17",
        np.eye(H36M32.n_joints)[list(H36M32_TO_17)],
    )
)
register_mapping(JointMapping("h36m17", "h36m17", np.eye(H36M17.n_joints)))
register_mapping(
    JointMapping.from_formulas(
        "humaneva15",
        "h36m17",
        {
            **_same_names(_LIMBS),
            "pelvis": {"pelvis": 1.0},
            "thorax": {"thorax": 1.0},
            "head_top": {"head": 1.0},
            "spine": {"pelvis": 0.5, "thorax": 0.5},
            "neck_nose": {"thorax": 0.5, "head": 0.5},
        },
        {
            "spine": "midpoint of pelvis and thorax: 0.5·pelvis + 0.5·thorax",
            "neck_nose": "midpoint of thorax and head top: 0.5·thorax + 0.5·head",
        },
    )
)
register_mapping(
    JointMapping.from_formulas(
        "coco17",
        "h36m17",
        _keypoint_formulas(_MID_HIPS, _MID_SHOULDERS),
        {
            "pelvis": _NOTE_PELVIS_HIPS,
            "spine": _NOTE_SPINE,
            "thorax": _NOTE_THORAX_SHOULDERS,
            "neck_nose": _NOTE_NOSE,
            "head_top": _NOTE_HEAD_TOP,
        },
    )
)
register_mapping(
    JointMapping.from_formulas(
        "openpose25",
        "h36m17",
        _keypoint_formulas({"mid_hip": 1.0}, {"neck": 1.0}),
        {
            "pelvis": "OpenPose's mid-hip keypoint",
            "spine": _NOTE_SPINE,
            "thorax": _NOTE_THORAX_NECK,
            "neck_nose": _NOTE_NOSE,
            "head_top": _NOTE_HEAD_TOP + " (OpenPose's neck stands for mid-shoulders)",
        },
    )
)
register_mapping(
    JointMapping.from_formulas(
        "openpose18",
        "h36m17",
        _keypoint_formulas(_MID_HIPS, {"neck": 1.0}),
        {
            "pelvis": _NOTE_PELVIS_HIPS,
            "spine": _NOTE_SPINE,
            "thorax": _NOTE_THORAX_NECK,
            "neck_nose": _NOTE_NOSE,
            "head_top": _NOTE_HEAD_TOP + " (OpenPose's neck stands for mid-shoulders)",
        },
    )
)


# --------------------------------------------------------------------------------------------
# mirroring


def _mirror(x: Array, skeleton: Skeleton, offset: float) -> Array:
    """Swap left/right joints of ``x`` ``(..., J, C)`` and map channel 0 to ``offset - x``.

    Indexing copies ``x``, so the in-place update never touches the caller's array.
    """
    permutation = skeleton.flip_permutation
    xp = namespace(x)
    if xp is np:
        swapped = x[..., permutation, :]
    else:
        swapped = x.index_select(-2, xp.as_tensor(permutation, device=x.device))
    swapped[..., 0] = offset - swapped[..., 0]
    return swapped


def _check_joints(x: Array, skeleton: Skeleton, what: str, channels: str, ok: bool) -> None:
    if x.ndim < 2 or x.shape[-2] != skeleton.n_joints or not ok:
        raise SkeletonError(
            f"{what} for skeleton {skeleton.name!r} must have shape (..., {skeleton.n_joints}, "
            f"{channels}), got {tuple(x.shape)}"
        )


def flip_keypoints_2d(x: Array, skeleton: Skeleton, width: float | None = None) -> Array:
    """Mirror 2D keypoints ``(..., J, C)`` horizontally and swap left/right joints.

    With ``width=None`` the keypoints are in normalised screen coordinates (see
    :func:`posebench.cameras.normalize_screen_coordinates`) and ``x -> -x``. With a pixel
    ``width``, ``x -> width - x``, the same mirror expressed in pixels. Channels after the first
    two (e.g. a confidence) are kept; applying the flip twice gives back the input.
    """
    x = as_float_array(x)
    _check_joints(x, skeleton, "2D keypoints", "C >= 2", x.ndim >= 2 and x.shape[-1] >= 2)
    return _mirror(x, skeleton, 0.0 if width is None else float(width))


def flip_joints_3d(x: Array, skeleton: Skeleton) -> Array:
    """Mirror camera-space 3D joints ``(..., J, 3)`` (``x -> -x``) and swap left/right joints."""
    x = as_float_array(x)
    _check_joints(x, skeleton, "3D joints", "3", x.ndim >= 2 and x.shape[-1] == 3)
    return _mirror(x, skeleton, 0.0)
