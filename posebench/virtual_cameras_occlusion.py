"""Occlusion of projected joints: out-of-image tests and a capsule model of the human body.

Each person is approximated by capsules (a segment between two joints, inflated by a radius),
one per bone, wide ones for the torso. A joint seen by a camera is occluded when it is missing,
lies behind the camera, leaves the image, or when the line of sight from the camera centre
passes through a capsule of any person, its own body included, before it reaches the joint's
surroundings (its own bones and the capsules that contain it). The table of capsules and the
exact rule are documented in docs/virtual_cameras.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from posebench.cameras import Camera
from posebench.errors import InputError, UnknownNameError
from posebench.skeletons import Skeleton, get_skeleton

__all__ = [
    "CapsuleBody",
    "H36M17_CAPSULES",
    "capsule_body",
    "capsule_entry",
    "check_joints",
    "inside_image",
    "occlusion_flags",
    "segment_distance_squared",
]

#: Capsules of the h36m17 body: (name, joint a, joint b, radius in mm, inset in mm). The axis
#: runs from joint a towards joint b and stops ``inset`` mm short of joint b, so that the
#: rounded end of a thick capsule does not reach far past its joint (chest, head).
H36M17_CAPSULES: tuple[tuple[str, str, str, float, float], ...] = (
    ("r_hip", "pelvis", "r_hip", 100.0, 0.0),
    ("l_hip", "pelvis", "l_hip", 100.0, 0.0),
    ("r_thigh", "r_hip", "r_knee", 80.0, 0.0),
    ("l_thigh", "l_hip", "l_knee", 80.0, 0.0),
    ("r_shin", "r_knee", "r_ankle", 55.0, 0.0),
    ("l_shin", "l_knee", "l_ankle", 55.0, 0.0),
    ("abdomen", "pelvis", "spine", 150.0, 0.0),
    ("chest", "spine", "thorax", 150.0, 100.0),
    ("neck", "thorax", "neck_nose", 60.0, 0.0),
    ("head", "neck_nose", "head_top", 100.0, 70.0),
    ("r_clavicle", "thorax", "r_shoulder", 70.0, 0.0),
    ("l_clavicle", "thorax", "l_shoulder", 70.0, 0.0),
    ("r_upper_arm", "r_shoulder", "r_elbow", 50.0, 0.0),
    ("l_upper_arm", "l_shoulder", "l_elbow", 50.0, 0.0),
    ("r_forearm", "r_elbow", "r_wrist", 40.0, 0.0),
    ("l_forearm", "l_elbow", "l_wrist", 40.0, 0.0),
)

_CAPSULE_TABLES: dict[str, tuple[tuple[str, str, str, float, float], ...]] = {
    "h36m17": H36M17_CAPSULES
}


@dataclass(frozen=True, eq=False)
class CapsuleBody:
    """Capsules approximating one person of a skeleton.

    ``ends (C, 2)`` holds the joint indices a, b of each capsule, ``radii (C,)`` its radius and
    ``insets (C,)`` how far short of joint b its axis stops (mm); ``names`` are the capsule names.
    """

    skeleton: Skeleton
    names: tuple[str, ...]
    ends: np.ndarray
    radii: np.ndarray
    insets: np.ndarray

    def axes(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Capsule axis end points ``(..., C, 3)`` of joints ``(..., J, 3)``.

        The inset is clamped to the bone length (an inset bone becomes a ball around joint a).
        """
        start = joints[..., self.ends[:, 0], :]
        bone = joints[..., self.ends[:, 1], :] - start
        length = np.linalg.norm(bone, axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            keep = np.where(length > 0, np.clip(1 - self.insets[:, None] / length, 0, 1), 0.0)
        return start, start + keep * bone


def capsule_body(skeleton: str = "h36m17", radii: Mapping[str, float] | None = None) -> CapsuleBody:
    """The capsule body of ``skeleton``, with the radii named in ``radii`` (mm) replaced."""
    if skeleton not in _CAPSULE_TABLES:
        raise UnknownNameError(
            f"no capsule body for skeleton {skeleton!r}; capsule bodies exist for: "
            f"{', '.join(sorted(_CAPSULE_TABLES))} (convert the joints to h36m17 first)"
        )
    table = _CAPSULE_TABLES[skeleton]
    names = tuple(row[0] for row in table)
    overrides = dict(radii or {})
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise InputError(
            f"radii: unknown capsule names {unknown}; the {skeleton} capsules are "
            f"{', '.join(names)}"
        )
    values = []
    for name, _, _, default, _ in table:
        value = float(overrides.get(name, default))
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"radii: capsule {name!r} needs a positive radius in mm, got {value}")
        values.append(value)
    layout = get_skeleton(skeleton)
    ends = np.array([(layout.index(row[1]), layout.index(row[2])) for row in table], np.int64)
    insets = np.array([row[4] for row in table])
    return CapsuleBody(layout, names, ends, np.array(values), insets)


def check_joints(joints_world: object, n_joints: int | None = None) -> np.ndarray:
    """``joints_world`` as a float64 array ``(P, F, J, 3)`` (mm, NaN for missing joints)."""
    joints = np.asarray(joints_world, dtype=np.float64)
    if joints.ndim != 4 or joints.shape[-1] != 3 or 0 in joints.shape:
        raise InputError(
            f"joints_world must have shape (persons, frames, joints, 3) in mm, got {joints.shape}"
        )
    if n_joints is not None and joints.shape[2] != n_joints:
        raise InputError(
            f"joints_world has {joints.shape[2]} joints per person but the skeleton has "
            f"{n_joints}; convert the poses to the skeleton's joint layout first"
        )
    if np.isinf(joints).any():
        raise InputError("joints_world contains ±inf; mark missing joints with NaN")
    return joints


def inside_image(xy: np.ndarray, width: int, height: int, margin: float = 0.0) -> np.ndarray:
    """Whether pixel points ``(..., 2)`` lie in the image, ``margin`` (fraction of a side) inside.

    The image spans ``[0, width) x [0, height)`` (origin at the top-left corner of the top-left
    pixel). NaN points are outside.
    """
    x, y = xy[..., 0], xy[..., 1]
    with np.errstate(invalid="ignore"):
        return (
            (x >= margin * width)
            & (x < (1 - margin) * width)
            & (y >= margin * height)
            & (y < (1 - margin) * height)
        )


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", u, v)


def _closest_approach(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, e: np.ndarray, f: np.ndarray, rr: np.ndarray
) -> np.ndarray:
    """Squared closest distance of two segments from their dot products.

    With ``d1 = p1 - p0``, ``d2 = q1 - q0`` and ``r = p0 - q0``: ``a = d1·d1``, ``b = d1·d2``,
    ``c = d1·r``, ``e = d2·d2``, ``f = d2·r`` and ``rr = r·r``. Minimises
    ``|r + s d1 - u d2|² = rr + s²a + u²e + 2sc - 2uf - 2sub`` over ``s, u`` in ``[0, 1]``: the
    line-line optimum for ``s`` clamped to ``[0, 1]`` (0 for parallel segments), the best ``u``
    for it clamped to ``[0, 1]``, and where ``u`` had to be clamped (or ``q`` is a point) the best
    ``s`` for that ``u``. A convex quadratic's minimum over the square is found this way.
    """
    tiny = 1e-12
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = a * e - b * b
        general = denom > tiny * a * e
        s = np.where(general, np.clip((b * f - c * e) / np.where(general, denom, 1.0), 0, 1), 0.0)
        has_length_q = e > tiny
        u = np.where(has_length_q, (b * s + f) / np.where(has_length_q, e, 1.0), 0.0)
        u_clamped = np.clip(u, 0.0, 1.0)
        has_length_p = a > tiny
        s_for_u = np.where(
            has_length_p, np.clip((b * u_clamped - c) / np.where(has_length_p, a, 1.0), 0, 1), 0.0
        )
        s = np.where((u != u_clamped) | ~has_length_q, s_for_u, s)
        u = u_clamped
        squared = rr + s * (s * a + 2 * c) + u * (u * e - 2 * f) - 2 * s * u * b
    return np.maximum(squared, 0.0)


def segment_distance_squared(
    p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray
) -> np.ndarray:
    """Squared closest distance between segments ``p0-p1`` and ``q0-q1``, ``(..., 3)`` broadcast.

    A segment of zero length is a point. NaN in any input gives NaN.
    """
    d1 = p1 - p0
    d2 = q1 - q0
    r = p0 - q0
    return _closest_approach(
        _dot(d1, d1), _dot(d1, d2), _dot(d1, r), _dot(d2, d2), _dot(d2, r), _dot(r, r)
    )


def capsule_entry(
    direction: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float
) -> np.ndarray:
    """Distance along rays from the origin at which they enter a capsule (inf where they miss).

    ``direction (..., 3)`` are unit vectors; the capsule is the set of points within ``radius``
    of the segment ``start-end`` ``(..., 3)``. It is the union of the two end balls and the
    finite cylinder, so the entry is the smallest of the balls' entries and the entry through the
    cylinder's side (a flat end face lies inside its ball). A ray starting inside enters at 0.
    """
    axis = end - start
    axis2 = _dot(axis, axis)
    along_start = _dot(direction, start)
    along_axis = _dot(direction, axis)
    start_axis = _dot(start, axis)
    start2 = _dot(start, start)
    r2 = radius * radius
    with np.errstate(invalid="ignore", divide="ignore"):
        along_end = along_start + along_axis
        end2 = start2 + 2 * start_axis + axis2
        entries = []
        for along, centre2 in ((along_start, start2), (along_end, end2)):
            reach = np.sqrt(along * along - centre2 + r2)
            entries.append(np.where(along + reach >= 0, np.maximum(along - reach, 0.0), np.inf))
        quad_a = axis2 - along_axis * along_axis
        quad_b = along_start * axis2 - along_axis * start_axis
        quad_c = (start2 - r2) * axis2 - start_axis * start_axis
        root = np.sqrt(quad_b * quad_b - quad_a * quad_c)
        side = (quad_b - root) / quad_a
        exit_side = (quad_b + root) / quad_a
        inside_slab = (side * along_axis - start_axis) / axis2
        valid = (
            (quad_a > 1e-12 * axis2) & (exit_side >= 0) & (inside_slab >= 0) & (inside_slab <= 1)
        )
        entries.append(np.where(valid, np.maximum(side, 0.0), np.inf))
    entry = np.minimum.reduce(entries)
    return np.where(np.isnan(entry), np.inf, entry)


def _hidden_by_capsules(points_cam: np.ndarray, body: CapsuleBody) -> np.ndarray:
    """Whether a capsule hides each joint ``(P, F, J)`` before the joint's surroundings do.

    ``points_cam (P, F, J, 3)`` are camera-frame joints (the camera centre is the origin). The
    surroundings of a joint are its own capsules (those of its person with the joint as an end)
    and every capsule that contains it. Its sight line is cut where it first enters them; any
    other capsule of any person that meets the remaining segment from the camera hides it.
    Distances are evaluated from dot products (:func:`_closest_approach`), one capsule at a time
    for all joints of all frames.
    """
    n_persons = points_cam.shape[0]
    starts, ends = body.axes(points_cam)
    axes = ends - starts
    with np.errstate(invalid="ignore", divide="ignore"):
        depth2 = _dot(points_cam, points_cam)
        depth = np.sqrt(depth2)
        direction = points_cam / depth[..., None]
    capsules = list(np.ndindex(n_persons, len(body.ends)))
    cut = depth.copy()
    surroundings = []
    zero = np.zeros(())
    for person, capsule in capsules:
        start, axis = starts[person, :, capsule], axes[person, :, capsule]
        radius = body.radii[capsule]
        # Point-to-axis distance of every joint: the segment p is the joint itself.
        from_start = (
            depth2 - 2 * np.einsum("pfjk,fk->pfj", points_cam, start) + _dot(start, start)[:, None]
        )
        along = np.einsum("pfjk,fk->pfj", points_cam, axis) - _dot(start, axis)[:, None]
        with np.errstate(invalid="ignore"):
            inside = _closest_approach(
                zero, zero, zero, _dot(axis, axis)[:, None], along, from_start
            )
            inside = inside <= radius**2
        a, b = body.ends[capsule]
        inside[person, :, a] = True
        inside[person, :, b] = True
        where = np.nonzero(inside)
        frames = where[1]
        entry = capsule_entry(
            direction[where], start[frames], ends[person, frames, capsule], radius
        )
        cut[where] = np.minimum(cut[where], entry)
        surroundings.append(where)
    sight = direction * cut[..., None]
    hidden = np.zeros(points_cam.shape[:3], dtype=bool)
    for (person, capsule), near in zip(capsules, surroundings):
        start, axis = starts[person, :, capsule], axes[person, :, capsule]
        squared = _closest_approach(
            cut * cut,
            np.einsum("pfjk,fk->pfj", sight, axis),
            -np.einsum("pfjk,fk->pfj", sight, start),
            _dot(axis, axis)[:, None],
            -_dot(axis, start)[:, None],
            _dot(start, start)[:, None],
        )
        with np.errstate(invalid="ignore"):
            hit = squared < body.radii[capsule] ** 2
        hit[near] = False
        hidden |= hit
    return hidden


def occlusion_flags(
    joints_world: object,
    camera: Camera,
    skeleton: str = "h36m17",
    radii: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Occluded flags ``(P, F, J)`` bool of world joints ``(P, F, J, 3)`` (mm) seen by ``camera``.

    True where the joint is NaN, behind the camera, projects outside the image, or is hidden by a
    capsule of any person (see :data:`H36M17_CAPSULES` and docs/virtual_cameras.md). ``radii``
    replaces the radius (mm) of the named capsules. A moving camera needs one pose per frame.
    """
    body = capsule_body(skeleton, radii)
    joints = check_joints(joints_world, body.skeleton.n_joints)
    points_cam = camera.world_to_camera(joints)
    xy = camera.project(points_cam)
    outside = ~inside_image(xy, camera.width, camera.height)
    return outside | _hidden_by_capsules(points_cam, body)
