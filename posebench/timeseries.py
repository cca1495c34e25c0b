"""Time-series operations on joint or marker trajectories: gap filling and resampling.

Arrays have time on axis 0 and any trailing shape (e.g. (F, J, 3)); a sample is missing when
any of its coordinates is NaN. Loops run over trajectories (a few dozen), never over frames.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from posebench.errors import PosebenchError


def _tracks(points: np.ndarray) -> np.ndarray:
    """View as (F, N, C): N trajectories of C coordinates."""
    return points.reshape(points.shape[0], -1, points.shape[-1])


def _runs(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop indices of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], missing, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return edges[0::2], edges[1::2]


def fill_gaps(points: np.ndarray, max_gap: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Fill interior gaps of at most ``max_gap`` frames by cubic interpolation.

    Each trajectory is interpolated with a cubic spline through all its valid samples (at least
    two are needed; with exactly two the fill is linear). Gaps touching the first or last frame,
    and gaps longer than ``max_gap``, stay NaN. Returns the filled array (float64) and a bool
    mask (F, ...) without the coordinate axis, True where a value was filled.
    """
    if max_gap < 0:
        raise PosebenchError(f"max_gap must be >= 0 frames, got {max_gap}")
    points = np.array(points, dtype=np.float64)
    tracks = _tracks(points)
    missing = np.isnan(tracks).any(axis=-1)
    filled = np.zeros(missing.shape, dtype=bool)
    frames = np.arange(tracks.shape[0])
    for n in np.flatnonzero(missing.any(axis=0)):
        valid = ~missing[:, n]
        if valid.sum() < 2:
            continue
        starts, stops = _runs(missing[:, n])
        fillable = (starts > 0) & (stops < len(frames)) & (stops - starts <= max_gap)
        if not fillable.any():
            continue
        targets = np.concatenate([np.arange(a, b) for a, b in zip(starts[fillable], stops[fillable])])
        if valid.sum() == 2:
            values = np.stack([np.interp(targets, frames[valid], tracks[valid, n, c]) for c in range(tracks.shape[-1])], -1)
        else:
            values = CubicSpline(frames[valid], tracks[valid, n], axis=0)(targets)
        tracks[targets, n] = values
        filled[targets, n] = True
    return tracks.reshape(points.shape), filled.reshape(points.shape[:-1])


def resample(points: np.ndarray, times: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample trajectories sampled at ``times`` (s) onto a regular grid at ``fps`` Hz.

    The grid starts at ``times[0]`` and stops at the last time not after ``times[-1]``; its
    timestamps are ``times[0] + k / fps`` exactly. Values come from a cubic spline through each
    trajectory's valid samples; a new sample is NaN when either original sample around it is
    missing, so gaps are never bridged by resampling (fill them first with :func:`fill_gaps`).
    """
    if not np.isfinite(fps) or fps <= 0:
        raise PosebenchError(f"target frame rate must be positive, got {fps}")
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.shape[0] != points.shape[0] or np.any(np.diff(times) <= 0):
        raise PosebenchError("times must be strictly increasing, one per frame")
    count = int(np.floor((times[-1] - times[0]) * fps + 1e-9)) + 1
    new_times = times[0] + np.arange(count) / fps
    points = np.asarray(points, dtype=np.float64)
    tracks = _tracks(points)
    missing = np.isnan(tracks).any(axis=-1)
    right = np.clip(np.searchsorted(times, new_times, side="left"), 0, len(times) - 1)
    left = np.clip(np.searchsorted(times, new_times, side="right") - 1, 0, len(times) - 1)
    out = np.full((count,) + tracks.shape[1:], np.nan)
    for n in range(tracks.shape[1]):
        valid = ~missing[:, n]
        if valid.sum() < 2:
            continue
        values = CubicSpline(times[valid], tracks[valid, n], axis=0)(new_times)
        keep = valid[left] & valid[right]
        out[keep, n] = values[keep]
    return out.reshape((count,) + points.shape[1:]), new_times
