"""Occlusion masks: synthetic long-time occlusion (MMHuman eqs. 10-11), natural occlusion from
detector confidence, and how masked 2D keypoints are handed to a model.

Masks are boolean with **True = occluded** (MMHuman eq. 8). The synthetic threshold is the exact
Bates quantile, so the expected occluded fraction equals the requested ratio for every kernel
length K; see docs/metrics.md for the maths and the boundary modes.
"""

from __future__ import annotations

import hashlib
from typing import Literal, Optional, Sequence, Union

import numpy as np
from scipy.optimize import brentq

from posebench.errors import InputError

__all__ = [
    "apply_mask",
    "irwin_hall_cdf",
    "masks_for_sequences",
    "natural_mask",
    "occlusion_threshold",
    "synthetic_mask",
]

SeedLike = Union[int, np.random.SeedSequence]
SequenceKey = Union[int, str]
NATURAL_CONFIDENCE_THRESHOLD = 0.3


def irwin_hall_cdf(x: Union[float, np.ndarray], n: int) -> np.ndarray:
    """CDF of the sum of ``n`` independent U(0, 1) variables (Irwin-Hall distribution).

    Evaluated with the B-spline recursion
    ``F_m(y) = (y F_{m-1}(y) + (m - y) F_{m-1}(y - 1)) / m`` on ``0 <= y <= m``, starting from the
    unit step ``F_0``. Every step is a convex combination of values in [0, 1], so the result keeps
    full relative precision in both tails for any ``n`` (the textbook alternating sum loses all
    digits beyond n ~ 30). Cost O(n^2) per point.
    """
    if int(n) != n or n < 1:
        raise InputError(f"irwin_hall_cdf: n must be a positive integer, got {n}")
    n = int(n)
    x = np.asarray(x, dtype=np.float64)
    y = x[None, ...] - np.arange(n + 1, dtype=np.float64).reshape((n + 1,) + (1,) * x.ndim)
    values = (y >= 0).astype(np.float64)
    for m in range(1, n + 1):
        ym = y[: n + 1 - m]
        mixed = (ym * values[: n + 1 - m] + (m - ym) * values[1 : n + 2 - m]) / m
        values = np.where(ym <= 0, 0.0, np.where(ym >= m, 1.0, mixed))
    return values[0]


def occlusion_threshold(ratio: float, kernel: int) -> float:
    """Threshold theta on the K-sample mean so that ``P(mean > theta) = ratio`` exactly.

    ``theta = IrwinHall(K).ppf(1 - ratio) / K``; the quantile is solved from the lighter tail
    (``F(y) = ratio`` with ``theta = (K - y) / K`` when ratio <= 0.5) so small ratios stay exact.
    """
    _check_ratio_kernel(ratio, kernel)
    if ratio == 0.0:
        return 1.0
    if ratio == 1.0:
        return 0.0
    tail = min(ratio, 1.0 - ratio)
    root = brentq(
        lambda y: float(irwin_hall_cdf(y, kernel)) - tail, 0.0, float(kernel), xtol=1e-14, rtol=1e-15
    )
    quantile = kernel - root if ratio <= 0.5 else root
    return quantile / kernel


def _check_ratio_kernel(ratio: float, kernel: int) -> None:
    if not (0.0 <= ratio <= 1.0):
        raise InputError(f"occlusion ratio must lie in [0, 1], got {ratio}")
    if int(kernel) != kernel or kernel < 1:
        raise InputError(f"occlusion kernel length K must be a positive integer, got {kernel}")


def synthetic_mask(
    n_frames: int,
    n_joints: int,
    ratio: float,
    kernel: int = 1,
    seed: SeedLike = 0,
    per_coordinate: bool = False,
    boundary: Literal["valid", "same"] = "valid",
) -> np.ndarray:
    """Synthetic long-time occlusion mask, True = occluded.

    ``P ~ U(0, 1)`` per frame and joint (and coordinate if ``per_coordinate``), averaged along time
    with a length-``kernel`` all-ones kernel / K, thresholded at :func:`occlusion_threshold`.
    ``boundary="valid"`` draws ``n_frames + K - 1`` samples so every output frame averages K real
    samples (the ratio is the same at every frame); ``"same"`` draws ``n_frames`` samples and
    zero-pads (the window of frame t covers t - K//2 .. t + (K-1)//2), which makes the first and
    last ~K/2 frames less often occluded. Random numbers come from
    ``np.random.default_rng(seed)``; in "valid" mode a shorter mask is a prefix of a longer one.

    Returns a bool array ``(n_frames, n_joints)``, or ``(n_frames, n_joints, 2)``.
    """
    _check_ratio_kernel(ratio, kernel)
    if int(n_frames) != n_frames or n_frames < 0 or int(n_joints) != n_joints or n_joints < 0:
        raise InputError(
            f"synthetic_mask: n_frames and n_joints must be non-negative integers, "
            f"got {n_frames} and {n_joints}"
        )
    if boundary not in ("valid", "same"):
        raise InputError(f"synthetic_mask: boundary must be 'valid' or 'same', got {boundary!r}")
    kernel, n_frames = int(kernel), int(n_frames)
    tail = (int(n_joints), 2) if per_coordinate else (int(n_joints),)
    if ratio in (0.0, 1.0):
        return np.full((n_frames,) + tail, ratio == 1.0, dtype=bool)
    rng = np.random.default_rng(seed)
    if boundary == "valid":
        samples = rng.random((n_frames + kernel - 1,) + tail)
    else:
        drawn = rng.random((n_frames,) + tail)
        samples = np.zeros((n_frames + kernel - 1,) + tail)
        samples[kernel // 2 : kernel // 2 + n_frames] = drawn
    cumulative = np.concatenate([np.zeros((1,) + tail), np.cumsum(samples, axis=0)], axis=0)
    window_sum = cumulative[kernel:] - cumulative[:-kernel]
    return window_sum > occlusion_threshold(ratio, kernel) * kernel


def _seed_for(seed: int, key: SequenceKey) -> np.random.SeedSequence:
    if isinstance(key, str):
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        spawn_key = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    elif isinstance(key, (int, np.integer)) and key >= 0:
        spawn_key = (int(key),)
    else:
        raise InputError(
            f"masks_for_sequences: sequence keys must be non-negative integers or strings, got {key!r}"
        )
    return np.random.SeedSequence(int(seed), spawn_key=spawn_key)


def masks_for_sequences(
    lengths: Sequence[int],
    n_joints: int,
    ratio: float,
    kernel: int = 1,
    seed: int = 0,
    *,
    keys: Optional[Sequence[SequenceKey]] = None,
    per_coordinate: bool = False,
    boundary: Literal["valid", "same"] = "valid",
) -> list[np.ndarray]:
    """One :func:`synthetic_mask` per sequence, each seeded by ``(seed, key)`` alone.

    ``keys`` (default: the position 0, 1, ... in ``lengths``) identify the sequences; an integer
    key ``i`` uses ``np.random.SeedSequence(seed, spawn_key=(i,))`` (the i-th child of
    ``SeedSequence(seed).spawn``), a string key (e.g. ``"S9/Walking 1/54138969"``) the first 16
    bytes of its SHA-256. A sequence's mask therefore does not depend on which other sequences
    are processed, nor on their order when keys are given.
    """
    keys = list(range(len(lengths))) if keys is None else list(keys)
    if len(keys) != len(lengths):
        raise InputError(
            f"masks_for_sequences: got {len(lengths)} lengths but {len(keys)} keys; give one key per sequence"
        )
    return [
        synthetic_mask(n, n_joints, ratio, kernel, _seed_for(seed, key), per_coordinate, boundary)
        for n, key in zip(lengths, keys)
    ]


def natural_mask(confidence: np.ndarray, threshold: float = NATURAL_CONFIDENCE_THRESHOLD) -> np.ndarray:
    """Occlusion from detector confidence: True where ``confidence < threshold`` or NaN."""
    confidence = np.asarray(confidence, dtype=np.float64)
    return ~(confidence >= threshold)


def _expand_mask(keypoints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise InputError(f"apply_mask: mask must be boolean (True = occluded), got dtype {mask.dtype}")
    if mask.shape == keypoints.shape[:-1]:
        return np.broadcast_to(mask[..., None], keypoints.shape)
    if mask.shape == keypoints.shape:
        return mask
    raise InputError(
        f"apply_mask: mask shape {mask.shape} fits neither keypoints (..., F, J, C) = "
        f"{keypoints.shape} per joint (..., F, J) nor per coordinate (..., F, J, C)"
    )


def _interpolate(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Linear interpolation over time (axis -3) of the invisible entries, edges held constant."""
    n_frames = keypoints.shape[-3]
    t = np.arange(n_frames).reshape(n_frames, 1, 1)
    prev = np.maximum.accumulate(np.where(visible, t, -1), axis=-3)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(visible, t, n_frames), -3), axis=-3), -3)
    prev, nxt = np.where(prev < 0, nxt, prev), np.where(nxt >= n_frames, prev, nxt)
    prev, nxt = np.clip(prev, 0, n_frames - 1), np.clip(nxt, 0, n_frames - 1)
    before = np.take_along_axis(keypoints, prev, axis=-3)
    after = np.take_along_axis(keypoints, nxt, axis=-3)
    span = nxt - prev
    weight = np.where(span > 0, (t - prev) / np.where(span > 0, span, 1), 0.0)
    return before + weight * (after - before)


def apply_mask(
    keypoints: np.ndarray,
    mask: np.ndarray,
    mode: Literal["zero", "interpolate"] = "zero",
    *,
    fully_occluded: Literal["raise", "zero"] = "raise",
) -> np.ndarray:
    """Hide occluded 2D keypoints the way a model expects them.

    ``keypoints`` ``(..., F, J, C)`` (time on axis -3), ``mask`` ``(..., F, J)`` or
    ``(..., F, J, C)``, True = occluded. ``"zero"`` sets occluded values to 0 (for mask-aware
    models, which also receive the mask). ``"interpolate"`` replaces them by linear interpolation
    over time between the nearest visible frames of the same joint (and coordinate), holding the
    first/last visible value before/after it. A joint occluded in every frame has nothing to
    interpolate from: ``fully_occluded="raise"`` (default) raises :class:`InputError` naming it,
    ``"zero"`` fills it with 0. Non-finite values are allowed only where the mask is True.
    Returns a new float array; the input is not modified.
    """
    keypoints = np.asarray(keypoints)
    if keypoints.ndim < 3:
        raise InputError(f"apply_mask: keypoints must have shape (..., F, J, C), got {keypoints.shape}")
    dtype = keypoints.dtype if np.issubdtype(keypoints.dtype, np.floating) else np.float64
    keypoints = keypoints.astype(dtype, copy=False)
    occluded = _expand_mask(keypoints, mask)
    bad = ~np.isfinite(keypoints) & ~occluded
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"apply_mask: keypoints hold {int(bad.sum())} non-finite values that the mask marks "
            f"visible (first at index {where}); combine the mask with natural_mask() or "
            f"~np.isfinite(keypoints) first"
        )
    if mode == "zero":
        return np.where(occluded, 0.0, keypoints).astype(dtype, copy=False)
    if mode != "interpolate":
        raise InputError(f"apply_mask: mode must be 'zero' or 'interpolate', got {mode!r}")
    if fully_occluded not in ("raise", "zero"):
        raise InputError(f"apply_mask: fully_occluded must be 'raise' or 'zero', got {fully_occluded!r}")
    never_seen = occluded.all(axis=-3)
    if never_seen.any():
        if fully_occluded == "raise":
            positions = [tuple(int(i) for i in idx) for idx in np.argwhere(never_seen)[:5]]
            raise InputError(
                f"apply_mask: {int(never_seen.sum())} joint series are occluded in every frame "
                f"(index (..., joint, coordinate) {positions}...); nothing to interpolate from. "
                f"Drop the sequence or pass fully_occluded='zero'"
            )
    filled = _interpolate(np.where(occluded, 0.0, keypoints), ~occluded)
    filled = np.where(never_seen[..., None, :, :], 0.0, filled)
    return filled.astype(dtype, copy=False)
