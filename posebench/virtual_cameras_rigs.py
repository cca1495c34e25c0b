"""Virtual camera rigs around a mocap take: look-at poses, a static ring, a hand-held path.

All cameras follow posebench's conventions (OpenCV camera frame, world→camera extrinsics, mm,
world z up). Placement rules and constants are documented in docs/virtual_cameras.md.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d
from scipy.spatial.transform import Rotation

from posebench.cameras import DISTORTION_MODELS, Camera
from posebench.errors import CameraError, InputError
from posebench.virtual_cameras_occlusion import check_joints, inside_image

__all__ = [
    "DEFAULT_COEFFICIENTS",
    "handheld_camera",
    "look_at",
    "ring_cameras",
]

#: Distortion coefficients used when a model is named without coefficients.
DEFAULT_COEFFICIENTS: dict[str, tuple[float, ...]] = {
    "none": (),
    "opencv": (-0.1, 0.02, 0.0, 0.0, 0.0),
    "h36m": (-0.207, 0.248, -0.003, -0.001, -0.0014),
}

#: Camera height above the floor (z = 0) in mm, as Human3.6M's cameras (about 1.5-1.7 m).
CAMERA_HEIGHT_MM = 1600.0
#: Azimuth of the first ring camera (rad, from world +x towards +y): cameras sit on diagonals.
RING_FIRST_AZIMUTH = math.pi / 4
#: Fraction of each image side kept free of joints when placing a camera.
IMAGE_MARGIN = 0.05
#: Fraction of finite joints that must project inside the margin for a placement to be accepted.
MIN_COVERAGE = 0.99
#: Closest horizontal camera distance in mm, whatever the extent of the take.
MIN_DISTANCE_MM = 1000.0
#: Factor by which the distance grows while the coverage is not reached, and how often.
DISTANCE_STEP = 1.05
MAX_DISTANCE_STEPS = 100

#: Hand-held path: smoothing of the subjects' centroid (s), azimuth swing (rad), distance
#: swing (fraction added on top of the needed distance), height swing (mm), hand jitter (rad).
CENTROID_SMOOTHING_S = 0.5
DISTANCE_WINDOW_S = 2.0
AZIMUTH_SWING_RAD = 0.6
DISTANCE_SWING = 0.15
HEIGHT_SWING_MM = 100.0
JITTER_RAD = 0.004
PATH_FREQUENCIES_HZ = (0.01, 0.04)
JITTER_FREQUENCIES_HZ = (0.8, 3.0)


def look_at(
    eye: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    up: Sequence[float] = (0.0, 0.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """World→camera ``(R, t)`` of an OpenCV camera at ``eye`` looking at ``target`` (mm).

    The optical axis (camera z) points from ``eye`` to ``target``, camera x is horizontal
    (perpendicular to ``up``, no roll) and camera y points downwards. Vectorised: ``eye`` and
    ``target`` ``(..., 3)`` broadcast; returns ``R (..., 3, 3)`` and ``t (..., 3)``.
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    if eye.shape[-1:] != (3,) or target.shape[-1:] != (3,) or up.shape != (3,):
        raise CameraError(
            f"look_at needs eye and target of shape (..., 3) and up of shape (3,), got "
            f"{eye.shape}, {target.shape}, {up.shape}"
        )
    eye, target = np.broadcast_arrays(eye, target)
    forward = target - eye
    length = np.linalg.norm(forward, axis=-1, keepdims=True)
    if (length <= 1e-9).any():
        raise CameraError("look_at: eye and target coincide; the viewing direction is undefined")
    forward = forward / length
    right = np.cross(forward, up)
    right_length = np.linalg.norm(right, axis=-1, keepdims=True)
    if (right_length <= 1e-9 * np.linalg.norm(up)).any():
        raise CameraError(
            "look_at: the viewing direction is parallel to the up vector; the roll is undefined"
        )
    right = right / right_length
    down = np.cross(forward, right)
    R = np.stack((right, down, forward), axis=-2)
    t = -(R @ eye[..., None])[..., 0]
    return R, t


def _coefficients(distortion: str, coefficients: Sequence[float]) -> tuple[float, ...]:
    if distortion not in DISTORTION_MODELS:
        raise CameraError(
            f"unknown distortion model {distortion!r}; use one of {', '.join(DISTORTION_MODELS)}"
        )
    values = tuple(float(c) for c in coefficients)
    return values if values else DEFAULT_COEFFICIENTS[distortion]


def _half_field_tangents(focal: float, width: int, height: int) -> tuple[float, float]:
    """Tangents of the half fields of view that keep :data:`IMAGE_MARGIN` free."""
    if not (math.isfinite(focal) and focal > 0):
        raise CameraError(f"focal must be a positive number of pixels, got {focal}")
    for name, size in (("width", width), ("height", height)):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise CameraError(
                f"image {name} must be a positive whole number of pixels, got {size!r}"
            )
    usable = 0.5 - IMAGE_MARGIN
    return usable * width / focal, usable * height / focal


def _needed_distance(
    radius: np.ndarray, rise: np.ndarray, tan_x: float, tan_y: float
) -> np.ndarray:
    """Horizontal camera distance at which a volume fits in the field of view.

    ``radius`` is the volume's horizontal extent around the look-at point and ``rise`` its
    vertical extent above or below it (mm). A circle of radius ``r`` seen from distance ``d``
    spans a half angle ``asin(r / d)``; a height ``h`` at depth ``d - r`` spans
    ``atan(h / (d - r))``. The result is at least :data:`MIN_DISTANCE_MM`.
    """
    sin_x = tan_x / math.hypot(1.0, tan_x)
    return np.maximum.reduce(
        [radius / sin_x, radius + rise / tan_y, np.full_like(radius, MIN_DISTANCE_MM)]
    )


def _coverage(camera: Camera, joints: np.ndarray, finite: np.ndarray) -> float:
    """Fraction of finite joints that project inside the image margin of ``camera``."""
    inside = inside_image(camera.project_world(joints), camera.width, camera.height, IMAGE_MARGIN)
    return float(inside[finite].mean())


def _finite(joints: np.ndarray) -> np.ndarray:
    finite = np.isfinite(joints).all(axis=-1)
    if not finite.any():
        raise InputError("joints_world has no finite joint; cameras cannot be placed around it")
    return finite


def ring_cameras(
    joints_world: object,
    n: int = 4,
    focal: float = 1145.0,
    width: int = 1000,
    height: int = 1000,
    distortion: str = "none",
    coefficients: Sequence[float] = (),
    height_mm: float | None = None,
    id_prefix: str = "ring",
) -> list[Camera]:
    """``n`` static cameras evenly spaced in azimuth around a take ``(P, F, J, 3)`` (mm).

    Cameras stand at ``height_mm`` (default :data:`CAMERA_HEIGHT_MM`) and look at the median of
    the finite joints (horizontal median, median height). Their common horizontal distance is
    computed from the horizontal and vertical extent of the joints and the field of view, then
    grown by 5 % steps until at least 99 % of finite joints project inside every image with a 5 %
    margin. Camera ids are ``{id_prefix}_0`` ... ``{id_prefix}_{n-1}``; camera ``k`` is at azimuth
    ``pi/4 + 2 pi k / n``. The principal point is the image centre.
    """
    joints = check_joints(joints_world)
    finite = _finite(joints)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise CameraError(f"a ring needs a positive integer number of cameras, got {n!r}")
    coefficients = _coefficients(distortion, coefficients)
    tan_x, tan_y = _half_field_tangents(float(focal), width, height)
    points = joints[finite]
    centre = np.median(points[:, :2], axis=0)
    look_height = float(np.median(points[:, 2]))
    camera_height = CAMERA_HEIGHT_MM if height_mm is None else float(height_mm)
    if not math.isfinite(camera_height):
        raise CameraError(f"height_mm must be finite, got {height_mm}")
    radius = np.linalg.norm(points[:, :2] - centre, axis=-1).max()
    rise = np.abs(points[:, 2] - look_height).max()
    distance = float(_needed_distance(np.array(radius), np.array(rise), tan_x, tan_y))
    azimuths = RING_FIRST_AZIMUTH + 2 * math.pi * np.arange(n) / n
    direction = np.column_stack((np.cos(azimuths), np.sin(azimuths)))
    target = np.array([centre[0], centre[1], look_height])
    for _ in range(MAX_DISTANCE_STEPS):
        eyes = np.column_stack((centre + distance * direction, np.full(n, camera_height)))
        R, t = look_at(eyes, target)
        cameras = [
            Camera(
                f"{id_prefix}_{k}", width, height, float(focal), float(focal), width / 2,
                height / 2, distortion, coefficients, R[k], t[k],
            )
            for k in range(n)
        ]  # fmt: skip
        if all(_coverage(camera, joints, finite) >= MIN_COVERAGE for camera in cameras):
            return cameras
        distance *= DISTANCE_STEP
    raise CameraError(
        f"no ring distance up to {distance:.0f} mm shows {MIN_COVERAGE:.0%} of the joints inside "
        f"a {width}x{height} image with focal {focal}; check the distortion coefficients"
    )


def _track_centroid(joints: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Per-frame mean ``(F, 3)`` of all finite joints; frames without any are interpolated."""
    weights = finite.sum(axis=(0, 2))
    sums = np.where(finite[..., None], joints, 0.0).sum(axis=(0, 2))
    frames = np.arange(joints.shape[1])
    seen = weights > 0
    centroid = sums[seen] / weights[seen, None]
    return np.column_stack([np.interp(frames, frames[seen], centroid[:, k]) for k in range(3)])


def _wander(
    rng: np.random.Generator, time: np.ndarray, frequencies: tuple[float, float]
) -> np.ndarray:
    """A smooth random signal in [-1, 1]: three sinusoids with random weights, rates and phases."""
    weights = rng.uniform(0.5, 1.0, 3)
    rates = rng.uniform(*frequencies, 3)
    phases = rng.uniform(0.0, 2 * math.pi, 3)
    waves = np.sin(2 * math.pi * rates * time[:, None] + phases)
    return waves @ (weights / weights.sum())


def _spread(
    joints: np.ndarray, finite: np.ndarray, centre: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame horizontal radius and vertical rise ``(F,)`` of the joints around ``centre``.

    Frames without finite joints are interpolated from their neighbours.
    """
    offset = joints - centre[None, :, None, :]
    radius = np.where(finite, np.linalg.norm(offset[..., :2], axis=-1), -np.inf).max(axis=(0, 2))
    rise = np.where(finite, np.abs(offset[..., 2]), -np.inf).max(axis=(0, 2))
    frames = np.arange(joints.shape[1])
    seen = np.isfinite(radius)
    return (
        np.interp(frames, frames[seen], radius[seen]),
        np.interp(frames, frames[seen], rise[seen]),
    )


def handheld_camera(
    joints_world: object,
    seed: int = 0,
    focal: float = 1500.0,
    width: int = 1920,
    height: int = 1080,
    distance: float | None = None,
    camera_id: str = "handheld",
    fps: float = 50.0,
) -> Camera:
    """A moving camera (one pose per frame) carried around a take ``(P, F, J, 3)`` (mm).

    The camera follows the subjects' centroid (mean of finite joints, interpolated over frames
    without any, Gaussian-smoothed over 0.5 s) and looks at it. Its azimuth, distance and height
    wander along seeded sums of slow sinusoids (0.01-0.04 Hz) and a small hand jitter
    (0.8-3 Hz, about 0.2 degrees) rotates it. ``distance`` (mm, horizontal) is by default the
    smoothed running maximum of the distance that fits each frame's joints in the view, grown
    by 5 % steps until 99 % of finite joints are inside the image margin; a given ``distance``
    is used as the closest distance and not grown. ``fps`` sets the time scale of the path.
    """
    joints = check_joints(joints_world)
    finite = _finite(joints)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CameraError(f"seed must be a non-negative integer, got {seed!r}")
    if not (math.isfinite(fps) and fps > 0):
        raise CameraError(f"fps must be a positive number of frames per second, got {fps}")
    if distance is not None and not (math.isfinite(distance) and distance > 0):
        raise CameraError(f"distance must be a positive number of mm, got {distance}")
    tan_x, tan_y = _half_field_tangents(float(focal), width, height)
    n_frames = joints.shape[1]
    centre = gaussian_filter1d(
        _track_centroid(joints, finite), CENTROID_SMOOTHING_S * fps, axis=0, mode="nearest"
    )
    if distance is None:
        needed = _needed_distance(*_spread(joints, finite, centre), tan_x, tan_y)
        window = 2 * int(DISTANCE_WINDOW_S * fps / 2) + 1
        base = gaussian_filter1d(
            maximum_filter1d(needed, window, mode="nearest"), window / 6, mode="nearest"
        )
    else:
        base = np.full(n_frames, float(distance))

    rng = np.random.default_rng(seed)
    time = np.arange(n_frames) / fps
    azimuth = rng.uniform(0.0, 2 * math.pi) + AZIMUTH_SWING_RAD * _wander(
        rng, time, PATH_FREQUENCIES_HZ
    )
    swing = 1.0 + DISTANCE_SWING * (1.0 + _wander(rng, time, PATH_FREQUENCIES_HZ)) / 2
    camera_height = CAMERA_HEIGHT_MM + HEIGHT_SWING_MM * _wander(rng, time, PATH_FREQUENCIES_HZ)
    jitter = JITTER_RAD * np.column_stack(
        [_wander(rng, time, JITTER_FREQUENCIES_HZ) for _ in range(3)]
    )
    shake = Rotation.from_rotvec(jitter).as_matrix()
    direction = np.column_stack((np.cos(azimuth), np.sin(azimuth)))

    scale = 1.0
    for _ in range(MAX_DISTANCE_STEPS):
        horizontal = centre[:, :2] + (scale * base * swing)[:, None] * direction
        eye = np.column_stack((horizontal, camera_height))
        R, _ = look_at(eye, centre)
        R = shake @ R
        t = -(R @ eye[..., None])[..., 0]
        camera = Camera(
            camera_id, width, height, float(focal), float(focal), width / 2, height / 2, R=R, t=t
        )
        if distance is not None or _coverage(camera, joints, finite) >= MIN_COVERAGE:
            return camera
        scale *= DISTANCE_STEP
    raise CameraError(
        f"no hand-held distance keeps {MIN_COVERAGE:.0%} of the joints inside a {width}x{height} "
        f"image with focal {focal}"
    )
