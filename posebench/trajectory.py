"""Global root trajectory from root-relative 3D poses and 2D keypoints (MMHuman eq. 9).

The camera-space root positions ``C_t`` minimise

    sum_t sum_j (1 - M_jt) ||rho(X_jt + C_t) - x_jt||^2
      + lambda1 sum_t ||C_t - C_{t-1}||^2 + lambda2 sum_t ||C_{t-1} + C_{t+1} - 2 C_t||^2

with the pinhole projection ``rho``. Scale convention (the lambdas are meaningless without one):
reprojection residuals in **pixels**, trajectory differences in **metres**. The solver is a
linear least-squares start (the projection multiplied by depth is linear in C) followed by
Gauss-Newton on the true reprojection error; both are one banded (bandwidth 6) Cholesky solve
over all windows at once. See docs/metrics.md.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from scipy.linalg import solveh_banded

from posebench._array import Array, is_tensor
from posebench.errors import InputError

__all__ = ["recover_trajectory"]

MM_PER_M = 1000.0
MIN_DEPTH_MM = 1.0
MAX_ITERATIONS = 20
STEP_TOLERANCE_MM = 1e-6
MAX_HALVINGS = 12
RESOLVABLE_DECREASE = 1e-12

Intrinsic = Union[float, np.ndarray]


def _window_starts(n_frames: int, window: int) -> np.ndarray:
    """Window starts with stride window // 2; the last window ends at the last frame."""
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    stride = max(window // 2, 1)
    starts = np.arange(0, n_frames - window + 1, stride)
    if starts[-1] != n_frames - window:
        starts = np.append(starts, n_frames - window)
    return starts


def _blend_weights(starts: np.ndarray, length: int, n_frames: int) -> np.ndarray:
    """Per (window, position) weight: 0 within length/8 of an interior window end, ramping to 1
    at length/4; sequence ends do not count as window ends (those frames have no other window)."""
    pos = np.arange(length, dtype=np.float64)
    from_start = np.where(starts[:, None] == 0, np.inf, pos[None, :] + 0.5)
    from_end = np.where(starts[:, None] + length == n_frames, np.inf, length - 0.5 - pos[None, :])
    distance = np.minimum(from_start, from_end)
    ramp = length / 8.0
    return np.clip((distance - ramp) / ramp, 0.0, 1.0) if ramp > 0 else np.ones_like(distance)


def _difference_gram(length: int, stencil: tuple[float, ...]) -> list[np.ndarray]:
    """Lower diagonals ``G[t + m, t]`` (m = 0..len(stencil)-1) of ``D^T D`` for the difference
    operator D whose rows apply ``stencil`` at every position that fits in ``length`` frames."""
    width = len(stencil)
    bands = [np.zeros(length) for _ in range(width)]
    rows = length - width + 1
    for a in range(width):
        for b in range(a, width):
            if rows > 0:
                bands[b - a][a : a + rows] += stencil[a] * stencil[b]
    return bands


def _smoothness_bands(length: int, lambda1: float, lambda2: float) -> list[np.ndarray]:
    """Lower diagonals of the per-window smoothness matrix (pixels^2 per mm^2)."""
    scale = 1.0 / MM_PER_M**2
    first = _difference_gram(length, (-1.0, 1.0))
    second = _difference_gram(length, (1.0, -2.0, 1.0))
    bands = [second[m] * lambda2 * scale for m in range(3)]
    for m in range(2):
        bands[m] = bands[m] + first[m] * lambda1 * scale
    return bands


def _apply_bands(bands: list[np.ndarray], c: np.ndarray) -> np.ndarray:
    """``S @ C`` per window and coordinate for c (B, W, 3), S symmetric given by lower bands."""
    out = bands[0][None, :, None] * c
    for m in range(1, len(bands)):
        band = bands[m][None, :-m, None]
        out[:, m:] += band * c[:, :-m]
        out[:, :-m] += band * c[:, m:]
    return out


def _smoothness_energy(c: np.ndarray, lambda1: float, lambda2: float) -> np.ndarray:
    """Per-window smoothness terms of eq. 9 with C in metres, c (B, W, 3) in mm."""
    c = c / MM_PER_M
    d1 = np.diff(c, axis=1)
    d2 = np.diff(c, n=2, axis=1)
    return lambda1 * (d1 * d1).sum(axis=(1, 2)) + lambda2 * (d2 * d2).sum(axis=(1, 2))


class _Problem:
    """Batched windows of eq. 9: arrays (B, W, J, ...) with visibility weights."""

    def __init__(self, points, pixels, visible, fx, fy, cx, cy, lambda1, lambda2):
        self.points, self.pixels, self.visible = points, pixels, visible
        self.focal = np.stack([fx, fy], axis=-1)[:, :, None, :]
        self.centre = np.stack([cx, cy], axis=-1)[:, :, None, :]
        self.lambda1, self.lambda2 = lambda1, lambda2
        self.bands = _smoothness_bands(points.shape[1], lambda1, lambda2)

    def residuals(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel residuals (B, W, J, 2) (0 where occluded) and camera-space joints (B, W, J, 3)."""
        cam = self.points + c[:, :, None, :]
        depth = np.where(self.visible, cam[..., 2], 1.0)
        projected = self.focal * cam[..., :2] / depth[..., None] + self.centre
        return (projected - self.pixels) * self.visible[..., None], cam

    def objective(self, c: np.ndarray) -> np.ndarray:
        """Eq. 9 per window; +inf where a visible joint is not in front of the camera."""
        r, cam = self.residuals(c)
        behind = (self.visible & (cam[..., 2] < MIN_DEPTH_MM)).any(axis=(1, 2))
        value = (r * r).sum(axis=(1, 2, 3)) + _smoothness_energy(c, self.lambda1, self.lambda2)
        return np.where(behind, np.inf, value)

    def solve(self, blocks: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Solve ``(blockdiag(blocks) + S) x = rhs`` for all windows; blocks (B, W, 3, 3)."""
        n_windows, length = rhs.shape[:2]
        n_unknowns = n_windows * length * 3
        ab = np.zeros((7, n_unknowns))
        for d in range(3):
            for k in range(3 - d):
                ab[d, k::3] += blocks[:, :, k + d, k].ravel()
        for m, band in enumerate(self.bands):
            tiled = np.tile(band, n_windows)
            for k in range(3):
                ab[3 * m, k::3] += tiled
        try:
            solution = solveh_banded(ab, rhs.reshape(-1), lower=True)
        except np.linalg.LinAlgError as error:
            raise InputError(
                "recover_trajectory: the trajectory is not determined (singular system); frames without "
                "visible joints need lambda1 > 0 or lambda2 > 0 to be bridged"
            ) from error
        return solution.reshape(rhs.shape)

    def linear_start(self, depth_scale: float) -> np.ndarray:
        """Minimiser of the depth-multiplied (linear) reprojection error, scaled by 1/depth_scale."""
        u = (self.pixels - self.centre) / self.focal
        f = self.focal / depth_scale
        rows = np.zeros(self.pixels.shape + (3,))
        rows[..., 0, 0] = f[..., 0]
        rows[..., 1, 1] = f[..., 1]
        rows[..., 2] = -u * f
        target = f * (u * self.points[..., 2:3] - self.points[..., :2])
        w = self.visible[..., None, None]
        blocks = np.einsum("bwjci,bwjck->bwik", rows * w, rows)
        rhs = np.einsum("bwjci,bwjc->bwi", rows * w, target)
        return self.solve(blocks, rhs)

    def gauss_newton(self, c: np.ndarray) -> np.ndarray:
        """Gauss-Newton with per-window step halving on the true pixel reprojection error.

        A window stops when its step is below STEP_TOLERANCE_MM, when the decrease the linearised
        model predicts is below what float64 resolves in its objective, or when no halving of the
        step decreases its objective (it is at the minimum up to rounding).
        """
        value = self.objective(c)
        if not np.isfinite(value).all():
            raise InputError(
                "recover_trajectory: the linear start places visible joints behind the camera; check that "
                "pred_rel is in camera orientation (mm) and keypoints_2d in pixels of the same camera"
            )
        active = np.ones(len(c), dtype=bool)
        for _ in range(MAX_ITERATIONS):
            r, cam = self.residuals(c)
            depth = np.where(self.visible, cam[..., 2], 1.0)[..., None]
            jac = np.zeros(r.shape + (3,))
            jac[..., 0, 0] = self.focal[..., 0] / depth[..., 0]
            jac[..., 1, 1] = self.focal[..., 1] / depth[..., 0]
            jac[..., 2] = -self.focal * cam[..., :2] / depth**2
            jac *= self.visible[..., None, None]
            blocks = np.einsum("bwjci,bwjck->bwik", jac, jac, optimize=True)
            gradient = np.einsum("bwjci,bwjc->bwi", jac, r, optimize=True) + _apply_bands(self.bands, c)
            step = -self.solve(blocks, gradient)
            predicted_decrease = -(gradient * step).sum(axis=(1, 2))
            active &= np.abs(step).max(axis=(1, 2)) > STEP_TOLERANCE_MM
            active &= predicted_decrease > RESOLVABLE_DECREASE * value
            if not active.any():
                break
            step *= active[:, None, None]
            scale = np.ones(len(c))
            searching = active.copy()
            for _ in range(MAX_HALVINGS):
                trial = c + scale[:, None, None] * step
                trial_value = self.objective(trial)
                better = searching & (trial_value <= value)
                c = np.where(better[:, None, None], trial, c)
                value = np.where(better, trial_value, value)
                searching &= ~better
                if not searching.any():
                    break
                scale = np.where(searching, scale / 2, scale)
            active &= ~searching
        return c


def _per_frame(value: Intrinsic, n_frames: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(n_frames, float(array))
    if array.shape != (n_frames,) or not np.isfinite(array).all():
        raise InputError(
            f"recover_trajectory: {name} must be a finite scalar or one value per frame ({n_frames},)"
        )
    return array


def _weak_perspective_depth(points, pixels, visible, focal) -> float:
    """Median over frames of f * (3D spread / 2D spread): a depth scale for the linear start."""
    w = visible[..., None]
    count = visible.sum(axis=-1)[..., None, None]
    safe = np.maximum(count, 1)
    spread_2d = ((pixels - (pixels * w).sum(-2, keepdims=True) / safe) ** 2 * w).sum(axis=(-1, -2))
    xy = points[..., :2]
    spread_3d = ((xy - (xy * w).sum(-2, keepdims=True) / safe) ** 2 * w).sum(axis=(-1, -2))
    usable = (count[..., 0, 0] >= 2) & (spread_2d > 0) & (spread_3d > 0)
    if not usable.any():
        raise InputError(
            "recover_trajectory: no frame has two distinct visible joints; the trajectory is undetermined"
        )
    ratio = np.sqrt(spread_3d[usable] / spread_2d[usable])
    return float(np.median(focal[usable] * ratio))


def _as_numpy(x: object) -> np.ndarray:
    return x.detach().cpu().numpy() if is_tensor(x) else np.asarray(x)


def _visibility(mask: object, pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Visible = not occluded and finite 2D keypoint."""
    if mask is None:
        occluded = np.zeros(shape, dtype=bool)
    else:
        occluded = _as_numpy(mask)
        if occluded.dtype != bool or occluded.shape != shape:
            raise InputError(
                f"recover_trajectory: mask must be a bool array of shape {shape} (True = occluded), "
                f"got {occluded.dtype} {occluded.shape}"
            )
    return ~occluded & np.isfinite(pixels).all(axis=-1)


def _stitch(c: np.ndarray, starts: np.ndarray, index: np.ndarray, n_frames: int) -> np.ndarray:
    """Weighted mean over the windows covering each frame (weights of :func:`_blend_weights`)."""
    weights = _blend_weights(starts, index.shape[1], n_frames)
    flat = index.ravel()
    total = np.bincount(flat, weights=weights.ravel(), minlength=n_frames)
    columns = [np.bincount(flat, weights=(weights * c[..., k]).ravel(), minlength=n_frames) for k in range(3)]
    return np.stack(columns, axis=-1) / total[:, None]


def recover_trajectory(
    pred_rel: Array,
    keypoints_2d: Array,
    mask: Optional[Array],
    fx: Intrinsic,
    fy: Intrinsic,
    cx: Intrinsic,
    cy: Intrinsic,
    lambda1: float = 1.0,
    lambda2: float = 1.0,
    window: Optional[int] = 100,
) -> Array:
    """Camera-space root positions ``C`` (F, 3) in mm that place ``pred_rel`` on ``keypoints_2d``.

    ``pred_rel`` (F, J, 3): root-relative joints in camera orientation, mm. ``keypoints_2d``
    (F, J, 2): pixels of the same (undistorted pinhole) camera. ``mask`` (F, J) bool, True =
    occluded (None = all visible); non-finite 2D keypoints count as occluded. Intrinsics in
    pixels, scalars or one per frame. ``lambda1``/``lambda2`` weigh the first/second differences
    of C in metres against reprojection residuals in pixels. ``window`` frames per optimisation
    window (windows overlap by half and are cross-faded; None = the whole sequence in one
    problem). Frames with every joint occluded are bridged by the smoothness terms.

    numpy in, numpy out; a torch ``pred_rel`` is solved on the CPU and returned as a tensor of its
    dtype and device.
    """
    points = _as_numpy(pred_rel).astype(np.float64)
    pixels = _as_numpy(keypoints_2d).astype(np.float64)
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] == 0:
        raise InputError(
            f"recover_trajectory: pred_rel must have shape (F, J, 3) with F > 0, got {points.shape}"
        )
    if pixels.shape != points.shape[:2] + (2,):
        raise InputError(
            f"recover_trajectory: keypoints_2d must have shape {points.shape[:2] + (2,)} to match "
            f"pred_rel, got {pixels.shape}"
        )
    if not np.isfinite(points).all():
        raise InputError("recover_trajectory: pred_rel holds NaN or inf; the 3D prediction must be finite")
    if lambda1 < 0 or lambda2 < 0 or not np.isfinite(lambda1 + lambda2):
        raise InputError(
            f"recover_trajectory: lambda1 and lambda2 must be finite and >= 0, got {lambda1}, {lambda2}"
        )
    if window is not None and (int(window) != window or window < 1):
        raise InputError(f"recover_trajectory: window must be a positive integer or None, got {window}")
    n_frames = points.shape[0]
    visible = _visibility(mask, pixels, points.shape[:2])
    pixels = np.where(visible[..., None], pixels, 0.0)
    intrinsics = [_per_frame(v, n_frames, n) for v, n in ((fx, "fx"), (fy, "fy"), (cx, "cx"), (cy, "cy"))]

    length = n_frames if window is None else min(int(window), n_frames)
    starts = _window_starts(n_frames, length)
    index = starts[:, None] + np.arange(length)[None, :]
    counts = visible[index].sum(axis=(1, 2))
    if (counts < 2).any():
        first = int(starts[np.argmax(counts < 2)])
        raise InputError(
            f"recover_trajectory: frames {first}..{first + length - 1} hold fewer than 2 visible "
            f"joints; the trajectory there is undetermined. Use a larger window or window=None"
        )
    depth_scale = _weak_perspective_depth(points, pixels, visible, np.sqrt(intrinsics[0] * intrinsics[1]))
    problem = _Problem(
        points[index], pixels[index], visible[index], *(v[index] for v in intrinsics), lambda1, lambda2
    )
    trajectory = _stitch(problem.gauss_newton(problem.linear_start(depth_scale)), starts, index, n_frames)
    if is_tensor(pred_rel):
        return torch.as_tensor(trajectory, dtype=pred_rel.dtype, device=pred_rel.device)
    return trajectory
