"""Camera geometry: rotations, world/camera transforms, lens distortion and projection.

Conventions (see docs/cameras.md): camera frames follow OpenCV (x right, y down, z forward);
extrinsics map world to camera, ``X_cam = R · X_world + t``, with 3D points in millimetres and
2D points in pixels. Every function is vectorised over leading axes and accepts numpy arrays or
torch tensors; the result is of the same kind, dtype and device as the point argument.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from posebench._array import Array, is_tensor, namespace
from posebench.errors import CameraError

__all__ = [
    "DISTORTION_MODELS",
    "ROTATION_TOLERANCE",
    "Camera",
    "as_float_array",
    "asarray_like",
    "camera_to_world",
    "distort",
    "extrinsics_from_orientation_centre",
    "image_coordinates",
    "matrix_to_quaternion",
    "normalize_screen_coordinates",
    "project",
    "quaternion_to_matrix",
    "world_to_camera",
]

#: Distortion model name -> names of its coefficients, in the order they are passed.
DISTORTION_MODELS: dict[str, tuple[str, ...]] = {
    "none": (),
    "opencv": ("k1", "k2", "p1", "p2", "k3"),
    "h36m": ("k1", "k2", "k3", "p1", "p2"),
}

#: Largest |R·Rᵀ - I| entry accepted for a camera rotation.
ROTATION_TOLERANCE = 1e-4


# --------------------------------------------------------------------------------------------
# dtype-preserving conversions (the numpy / torch dispatch itself is posebench._array)


def as_float_array(x: Any) -> Array:
    """``x`` as a floating-point numpy array or torch tensor.

    Tensors and floating numpy arrays are returned unchanged; integer arrays and Python sequences
    become float64.
    """
    if is_tensor(x):
        return x if x.is_floating_point() else x.to(torch.float64)
    array = np.asarray(x)
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float64)


def asarray_like(values: Any, like: Array) -> Array:
    """``values`` converted to the kind, dtype and device of ``like``."""
    if is_tensor(like):
        if isinstance(values, np.ndarray) and not values.flags.writeable:
            values = values.copy()
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return np.asarray(values, dtype=like.dtype)


def _check_last_axis(x: Array, size: int, what: str) -> None:
    if x.ndim == 0 or x.shape[-1] != size:
        raise CameraError(f"{what} must have shape (..., {size}), got {tuple(x.shape)}")


# --------------------------------------------------------------------------------------------
# rotations


def quaternion_to_matrix(q: Array) -> Array:
    """Rotation matrices ``(..., 3, 3)`` of quaternions ``q = (w, x, y, z)``, shape ``(..., 4)``.

    ``R = I + 2w[u]x + 2[u]x²`` with ``u = (x, y, z)``; ``R @ v`` equals the quaternion rotation
    ``q v q*``. ``q`` must be a unit quaternion; it is not renormalised (as in VideoPose3D).
    """
    q = as_float_array(q)
    _check_last_axis(q, 4, "quaternion")
    xp = namespace(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return xp.stack([xp.stack(row, -1) for row in rows], -2)


def matrix_to_quaternion(R: Array) -> Array:
    """Unit quaternions ``(w, x, y, z)`` with ``w >= 0`` of rotation matrices ``(..., 3, 3)``.

    Uses the numerically stable branch (largest of ``|w|, |x|, |y|, |z|``) per matrix.
    """
    R = as_float_array(R)
    if R.ndim < 2 or tuple(R.shape[-2:]) != (3, 3):
        raise CameraError(f"rotation matrices must have shape (..., 3, 3), got {tuple(R.shape)}")
    xp = namespace(R)
    r00, r01, r02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    r10, r11, r12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    r20, r21, r22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    # 4·w², 4·x², 4·y², 4·z² from the diagonal; the largest one gives the stable branch.
    squares = xp.stack(
        (
            1 + r00 + r11 + r22,
            1 + r00 - r11 - r22,
            1 - r00 + r11 - r22,
            1 - r00 - r11 + r22,
        ),
        -1,
    )
    branch = xp.argmax(squares, -1)
    # 2·|component| of each branch's pivot; clipped so that unused branches stay finite.
    two_pivot = xp.sqrt(xp.clip(squares, 1e-12, None))
    a, b, c, d = (two_pivot[..., i] for i in range(4))
    candidates = (
        (a / 2, (r21 - r12) / (2 * a), (r02 - r20) / (2 * a), (r10 - r01) / (2 * a)),
        ((r21 - r12) / (2 * b), b / 2, (r01 + r10) / (2 * b), (r02 + r20) / (2 * b)),
        ((r02 - r20) / (2 * c), (r01 + r10) / (2 * c), c / 2, (r12 + r21) / (2 * c)),
        ((r10 - r01) / (2 * d), (r02 + r20) / (2 * d), (r12 + r21) / (2 * d), d / 2),
    )
    q = xp.stack(candidates[3], -1)
    for index in (2, 1, 0):
        q = xp.where((branch == index)[..., None], xp.stack(candidates[index], -1), q)
    return xp.where(q[..., :1] < 0, -q, q)


def extrinsics_from_orientation_centre(q: Array, centre: Array) -> tuple[Array, Array]:
    """World→camera ``(R, t)`` from a camera→world orientation and the camera centre.

    This is the Human3.6M / VideoPose3D parametrisation: ``q = (w, x, y, z)`` rotates camera
    axes into the world and ``centre`` is the camera centre in world coordinates (mm). Returns
    ``R = R(q)ᵀ`` ``(..., 3, 3)`` and ``t = -R(q)ᵀ · centre`` ``(..., 3)``, so that
    ``world_to_camera(centre, R, t) = 0``.
    """
    centre = as_float_array(centre)
    _check_last_axis(centre, 3, "camera centre")
    xp = namespace(centre)
    R = xp.swapaxes(quaternion_to_matrix(asarray_like(q, centre)), -1, -2)
    t = -(R @ centre[..., None])[..., 0]
    return R, t


# --------------------------------------------------------------------------------------------
# world <-> camera


def _pose_operands(X: Any, R: Any, t: Any) -> tuple[Array, Array, Array]:
    X = as_float_array(X)
    _check_last_axis(X, 3, "points")
    if X.ndim < 2:
        raise CameraError(f"points must have shape (..., J, 3), got {tuple(X.shape)}")
    R = asarray_like(R, X)
    t = asarray_like(t, X)
    if R.ndim < 2 or tuple(R.shape[-2:]) != (3, 3):
        raise CameraError(f"R must have shape (..., 3, 3), got {tuple(R.shape)}")
    _check_last_axis(t, 3, "t")
    try:
        np.broadcast_shapes(tuple(X.shape[:-2]), tuple(R.shape[:-2]), tuple(t.shape[:-1]))
    except ValueError:
        raise CameraError(
            f"camera pose of shape R {tuple(R.shape)}, t {tuple(t.shape)} does not fit points "
            f"of shape {tuple(X.shape)}: use R (3, 3) / t (3,) for one pose, or R (F, 3, 3) / "
            "t (F, 3) with F the points' frame axis (the axis before the joints)"
        ) from None
    return X, R, t


def world_to_camera(X: Array, R: Array, t: Array) -> Array:
    """Camera coordinates ``X_cam = R · X + t`` of world points ``X`` ``(..., J, 3)``.

    ``R (..., 3, 3)`` and ``t (..., 3)`` broadcast against the axes of ``X`` before the joint
    axis: ``R (3, 3)`` / ``t (3,)`` (or a leading axis of 1) is one pose for every point; with
    ``X (P, F, J, 3)``, ``R (F, 3, 3)`` / ``t (F, 3)`` applies pose ``f`` to frame ``f`` (moving
    camera). The result has the kind, dtype and device of ``X``.
    """
    X, R, t = _pose_operands(X, R, t)
    xp = namespace(X)
    return X @ xp.swapaxes(R, -1, -2) + t[..., None, :]


def camera_to_world(X_cam: Array, R: Array, t: Array) -> Array:
    """World coordinates ``Rᵀ · (X_cam - t)``: the inverse of :func:`world_to_camera`.

    Shapes and broadcasting as in :func:`world_to_camera`.
    """
    X_cam, R, t = _pose_operands(X_cam, R, t)
    return (X_cam - t[..., None, :]) @ R


# --------------------------------------------------------------------------------------------
# distortion and projection


def _check_distortion(model: str, coefficients: Sequence[float]) -> tuple[float, ...]:
    if model not in DISTORTION_MODELS:
        known = "; ".join(
            f"{name} ({', '.join(names) or 'no coefficients'})"
            for name, names in DISTORTION_MODELS.items()
        )
        raise CameraError(f"unknown distortion model {model!r}; known models: {known}")
    names = DISTORTION_MODELS[model]
    values = tuple(float(c) for c in coefficients)
    if len(values) != len(names):
        expected = ", ".join(names) or "none"
        raise CameraError(
            f"distortion model {model!r} takes {len(names)} coefficients ({expected}), "
            f"got {len(values)}: {values}"
        )
    if not all(math.isfinite(v) for v in values):
        raise CameraError(f"distortion coefficients of model {model!r} must be finite: {values}")
    return values


def distort(
    m: Array, model: str, coefficients: Sequence[float] = (), clip: bool = False
) -> Array:
    """Apply lens distortion to normalised image-plane points ``m = (X/Z, Y/Z)``, ``(..., 2)``.

    Models (``r² = x² + y²``; coefficient order as in :data:`DISTORTION_MODELS`):

    - ``"none"``: identity.
    - ``"opencv"`` (k1, k2, p1, p2, k3), Brown-Conrady as in OpenCV:
      ``x' = x·radial + 2·p1·x·y + p2·(r² + 2x²)``,
      ``y' = y·radial + p1·(r² + 2y²) + 2·p2·x·y``, ``radial = 1 + k1·r² + k2·r⁴ + k3·r⁶``.
    - ``"h36m"`` (k1, k2, k3, p1, p2), Human3.6M's own model:
      ``m' = m·(radial + p1·x + p2·y) + (p1, p2)·r²``.

    ``clip=True`` first clips ``m`` to ``[-1, 1]`` as VideoPose3D's ``project_to_2d`` does.
    """
    coeffs = _check_distortion(model, coefficients)
    m = as_float_array(m)
    _check_last_axis(m, 2, "normalised image points")
    xp = namespace(m)
    if clip:
        m = xp.clip(m, -1.0, 1.0)
    x, y = m[..., 0], m[..., 1]
    r2 = x * x + y * y
    if model == "opencv":
        k1, k2, p1, p2, k3 = coeffs
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        x_d = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        y_d = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    elif model == "h36m":
        k1, k2, k3, p1, p2 = coeffs
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        tangential = p1 * x + p2 * y
        x_d = x * (radial + tangential) + p1 * r2
        y_d = y * (radial + tangential) + p2 * r2
    else:
        x_d, y_d = x, y
    return xp.stack((x_d, y_d), -1)


def project(
    X_cam: Array,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    model: str = "none",
    coefficients: Sequence[float] = (),
    clip: bool = False,
) -> Array:
    """Pixel coordinates ``(..., 2)`` of camera-frame points ``X_cam`` ``(..., 3)``.

    ``u = fx·x' + cx``, ``v = fy·y' + cy`` with ``(x', y') = distort((X/Z, Y/Z))``. Points on or
    behind the image plane (``Z <= 0``) and points with a NaN coordinate project to NaN.
    """
    X_cam = as_float_array(X_cam)
    _check_last_axis(X_cam, 3, "camera-frame points")
    xp = namespace(X_cam)
    z = X_cam[..., 2]
    in_front = z > 0
    m = X_cam[..., :2] / xp.where(in_front, z, xp.ones_like(z))[..., None]
    m_d = distort(m, model, coefficients, clip)
    uv = xp.stack((fx * m_d[..., 0] + cx, fy * m_d[..., 1] + cy), -1)
    return xp.where(in_front[..., None], uv, math.nan)


def normalize_screen_coordinates(X: Array, w: float, h: float) -> Array:
    """Pixels ``(..., 2)`` to VideoPose3D's normalised screen coordinates ``X / w · 2 - (1, h/w)``.

    x in ``[0, w]`` maps to ``[-1, 1]``; y is scaled by the same factor ``2/w``, so y in
    ``[0, h]`` maps to ``[-h/w, h/w]`` (aspect ratio preserved).
    """
    X = as_float_array(X)
    _check_last_axis(X, 2, "screen points")
    xp = namespace(X)
    return xp.stack((X[..., 0] / w * 2 - 1, X[..., 1] / w * 2 - h / w), -1)


def image_coordinates(X: Array, w: float, h: float) -> Array:
    """Normalised screen coordinates back to pixels: ``(X + (1, h/w)) · w / 2``."""
    X = as_float_array(X)
    _check_last_axis(X, 2, "normalised screen points")
    xp = namespace(X)
    return xp.stack(((X[..., 0] + 1) * w / 2, (X[..., 1] + h / w) * w / 2), -1)


# --------------------------------------------------------------------------------------------
# Camera


def _identity_pose() -> np.ndarray:
    return np.eye(3)[None]


def _zero_translation() -> np.ndarray:
    return np.zeros((1, 3))


@dataclass(eq=False)
class Camera:
    """A calibrated camera: pinhole intrinsics in pixels, lens distortion, world→camera poses.

    ``R (N, 3, 3)`` and ``t (N, 3)`` (float64, mm) hold one pose for a static camera (N = 1) or
    one per frame of its sequence for a moving camera. ``R (3, 3)`` / ``t (3,)`` are accepted and
    stored with N = 1; without them the camera frame is the world frame. A pose may be all-NaN
    (unknown for that frame); points transformed with it become NaN. R and t are stored as
    read-only copies.
    """

    camera_id: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: str = "none"
    coefficients: tuple[float, ...] = ()
    R: np.ndarray = field(default_factory=_identity_pose)
    t: np.ndarray = field(default_factory=_zero_translation)

    def __post_init__(self) -> None:
        self.camera_id = str(self.camera_id)
        self.width = self._positive_int("width", self.width)
        self.height = self._positive_int("height", self.height)
        for name in ("fx", "fy", "cx", "cy"):
            value = self._real(name, getattr(self, name))
            if name in ("fx", "fy") and value <= 0:
                raise CameraError(f"camera {self.camera_id!r}: {name} must be > 0, got {value}")
            setattr(self, name, value)
        try:
            self.coefficients = _check_distortion(self.distortion, self.coefficients)
        except CameraError as error:
            raise CameraError(f"camera {self.camera_id!r}: {error}") from None
        self.R, self.t = self._checked_poses(self.R, self.t)

    def _positive_int(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise CameraError(
                f"camera {self.camera_id!r}: {name} must be a positive integer (pixels), "
                f"got {value!r}"
            )
        return int(value)

    def _real(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise CameraError(f"camera {self.camera_id!r}: {name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise CameraError(f"camera {self.camera_id!r}: {name} must be finite, got {value}")
        return float(value)

    def _checked_poses(self, R: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
        R = np.array(R, dtype=np.float64)
        t = np.array(t, dtype=np.float64)
        if R.shape == (3, 3):
            R = R[None]
        if t.shape == (3,):
            t = t[None]
        if R.ndim != 3 or R.shape[1:] != (3, 3) or R.shape[0] == 0:
            raise CameraError(
                f"camera {self.camera_id!r}: R must have shape (3, 3) or (N, 3, 3) with N >= 1, "
                f"got {R.shape}"
            )
        if t.shape != (R.shape[0], 3):
            raise CameraError(
                f"camera {self.camera_id!r}: t must have shape ({R.shape[0]}, 3) to match R "
                f"{R.shape}, got {t.shape}"
            )
        pose = np.concatenate((R.reshape(-1, 9), t), axis=1)
        known = np.isfinite(pose).all(axis=1)
        missing = np.isnan(pose).all(axis=1)
        if not (known | missing).all():
            bad = int(np.flatnonzero(~(known | missing))[0])
            raise CameraError(
                f"camera {self.camera_id!r}: pose {bad} mixes finite and non-finite values; a "
                "pose must be entirely finite or entirely NaN (unknown)"
            )
        Rk = R[known]
        error = np.abs(Rk @ Rk.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2), initial=0.0)
        not_rotation = (error > ROTATION_TOLERANCE) | (np.linalg.det(Rk) <= 0)
        if not_rotation.any():
            bad = int(np.flatnonzero(known)[np.flatnonzero(not_rotation)[0]])
            raise CameraError(
                f"camera {self.camera_id!r}: R[{bad}] is not a rotation matrix "
                f"(max |R·Rᵀ - I| = {error[not_rotation][0]:.3g}, det = "
                f"{np.linalg.det(R[bad]):.6g}); R must be orthonormal with det +1"
            )
        R.setflags(write=False)
        t.setflags(write=False)
        return R, t

    @property
    def n_poses(self) -> int:
        """Number of stored poses: 1 for a static camera, the frame count for a moving one."""
        return int(self.R.shape[0])

    @property
    def is_moving(self) -> bool:
        """Whether the camera has one pose per frame (more than one pose)."""
        return self.n_poses > 1

    @property
    def K(self) -> np.ndarray:
        """The 3x3 intrinsic matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def _pose_for(self, X: Array) -> tuple[np.ndarray, np.ndarray]:
        if not self.is_moving:
            return self.R[0], self.t[0]
        frames = X.shape[-3] if X.ndim >= 3 else None
        if frames != self.n_poses:
            found = f"{frames} frames" if frames is not None else "no frame axis"
            raise CameraError(
                f"camera {self.camera_id!r} is moving with {self.n_poses} poses (one per frame) "
                f"but the points of shape {tuple(X.shape)} have {found} on axis -3; pass points "
                f"shaped (..., {self.n_poses}, J, 3)"
            )
        return self.R, self.t

    def world_to_camera(self, X: Array) -> Array:
        """Camera coordinates of world points ``X`` ``(..., F, J, 3)`` (mm)."""
        X = as_float_array(X)
        return world_to_camera(X, *self._pose_for(X))

    def camera_to_world(self, X_cam: Array) -> Array:
        """World coordinates of camera-frame points ``X_cam`` ``(..., F, J, 3)`` (mm)."""
        X_cam = as_float_array(X_cam)
        return camera_to_world(X_cam, *self._pose_for(X_cam))

    def project(self, X_cam: Array, clip: bool = False) -> Array:
        """Pixel coordinates of camera-frame points (see :func:`project`)."""
        return project(
            X_cam, self.fx, self.fy, self.cx, self.cy, self.distortion, self.coefficients, clip
        )

    def project_world(self, X_world: Array, clip: bool = False) -> Array:
        """Pixel coordinates of world points ``(..., F, J, 3)``."""
        return self.project(self.world_to_camera(X_world), clip)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        scalars = ("camera_id", "width", "height", "fx", "fy", "cx", "cy", "distortion")
        return (
            all(getattr(self, name) == getattr(other, name) for name in scalars)
            and self.coefficients == other.coefficients
            and np.array_equal(self.R, other.R, equal_nan=True)
            and np.array_equal(self.t, other.t, equal_nan=True)
        )
