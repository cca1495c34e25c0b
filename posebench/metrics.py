"""3D pose error metrics (MPJPE family, PCK/AUC, velocity and acceleration errors).

Every function accepts numpy arrays or torch tensors of shape ``(..., J, 3)`` in millimetres
(temporal metrics: ``(..., T, J, 3)``, time on the third axis from the end), computes in float64
on the input's device, and returns the pooled mean as a Python float (``reduction="mean"``) or
the per-frame values with the joint axis reduced (``reduction="none"``).

Missing data: a ground-truth joint with a non-finite coordinate is left out (the mean counts
only finite joints; Procrustes and scale alignment are fitted on finite joints only). A
non-finite predicted coordinate in a frame makes that frame's value NaN, and therefore the mean
NaN: a broken model must not look good. See docs/metrics.md for the exact formulas.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal, Optional, Sequence, Union

import numpy as np

from posebench._array import (
    Array,
    as_float,
    cast_like,
    float64_pair,
    is_tensor,
    like,
    namespace,
    to_float64,
)
from posebench.errors import InputError

__all__ = [
    "AUC",
    "AUC_THRESHOLDS_MM",
    "MPJPE",
    "MPJVE",
    "NMPJPE",
    "PCK",
    "PCK_THRESHOLD_MM",
    "PMPJPE",
    "accel_error",
    "auc",
    "mpjpe",
    "mpjve",
    "n_mpjpe",
    "p_mpjpe",
    "pck",
    "procrustes_align",
    "scale_align",
]

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = tuple(float(t) for t in range(0, 151, 5))

Reduction = Literal["mean", "none"]
Joints = Optional[Sequence[int]]


# ----------------------------------------------------------------------------------------------
# Input handling


def _prepare(
    pred: object, gt: object, joints: Joints, *, min_ndim: int = 2, name: str = "metric"
) -> tuple[Array, Array, Array, Array]:
    """Validate, select joints, convert to float64.

    Returns ``(p, g, valid, pred_bad)``: ``p`` and ``g`` with non-finite values replaced by 0,
    ``valid`` (..., J) = finite ground truth, ``pred_bad`` (...,) =
    the frame holds a non-finite predicted coordinate.
    """
    p, g = float64_pair(pred, gt)
    if tuple(p.shape) != tuple(g.shape):
        raise InputError(
            f"{name}: pred and gt must have the same shape, got {tuple(p.shape)} and {tuple(g.shape)}"
        )
    if p.ndim < min_ndim or p.shape[-1] != 3:
        expected = "(..., J, 3)" if min_ndim == 2 else "(..., T, J, 3)"
        raise InputError(f"{name}: pred and gt must have shape {expected}, got {tuple(p.shape)}")
    if joints is not None:
        index = [int(j) for j in joints]
        n_joints = p.shape[-2]
        if not index or min(index) < -n_joints or max(index) >= n_joints:
            raise InputError(
                f"{name}: joints must be a non-empty list of indices into {n_joints} joints, "
                f"got {list(joints)}"
            )
        p, g = p[..., index, :], g[..., index, :]
    xp = namespace(p)
    valid = xp.isfinite(g).all(axis=-1)
    pred_bad = ~xp.isfinite(p).all(axis=-1).all(axis=-1)
    p = xp.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0)
    g = xp.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
    return p, g, valid, pred_bad


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "none"):
        raise InputError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _frame_sums(values: Array, valid: Array, pred_bad: Array) -> tuple[Array, Array]:
    """Per-frame sum of ``values`` over valid joints (NaN for bad predictions) and valid count."""
    xp = namespace(values)
    total = (values * valid).sum(axis=-1)
    total = xp.where(pred_bad, float("nan"), total)
    return total, to_float64(valid).sum(axis=-1)


def _reduce(total: Array, count: Array, reduction: str) -> Union[float, Array]:
    """Pooled mean (sum of sums / sum of counts) or per-frame ratio (NaN where count is 0)."""
    xp = namespace(total)
    if reduction == "mean":
        n = count.sum()
        if int(n) == 0:
            return float("nan")
        return as_float(total.sum() / n)
    return xp.where(count > 0, total / xp.where(count > 0, count, 1.0), float("nan"))


def _joint_errors(p: Array, g: Array) -> Array:
    d = p - g
    return ((d * d).sum(axis=-1)) ** 0.5


# ----------------------------------------------------------------------------------------------
# Alignment


def _procrustes(p: Array, g: Array, valid: Array) -> Array:
    """Similarity-align each frame of ``p`` to ``g`` using the valid joints (float64, finite p, g)."""
    xp = namespace(p)
    w = to_float64(valid)
    n = w.sum(axis=-1)[..., None, None]
    safe_n = xp.where(n > 0, n, 1.0)
    wv = w[..., None]
    mu_p = (p * wv).sum(axis=-2, keepdims=True) / safe_n
    mu_g = (g * wv).sum(axis=-2, keepdims=True) / safe_n
    y = (p - mu_p) * wv
    x = (g - mu_g) * wv
    cov = xp.einsum("...ji,...jk->...ik", y, x)
    u, sing, vh = xp.linalg.svd(cov)
    det = xp.linalg.det(u @ vh)
    signs = xp.ones_like(sing)
    signs[..., 2] = xp.where(det < 0, -1.0, 1.0)
    rot = (u * signs[..., None, :]) @ vh
    spread = (y * y).sum(axis=(-1, -2))
    trace = (sing * signs).sum(axis=-1)
    scale = xp.where(spread > 0, trace / xp.where(spread > 0, spread, 1.0), 0.0)
    return scale[..., None, None] * ((p - mu_p) @ rot) + mu_g


def _scale(p: Array, g: Array, valid: Array) -> Array:
    """Per-frame least-squares scale about the origin, fitted on the valid joints."""
    xp = namespace(p)
    w = to_float64(valid)[..., None]
    num = (p * g * w).sum(axis=(-1, -2))
    den = (p * p * w).sum(axis=(-1, -2))
    scale = xp.where(den > 0, num / xp.where(den > 0, den, 1.0), 0.0)
    return scale[..., None, None] * p


def _nan_frames(aligned: Array, pred_bad: Array) -> Array:
    xp = namespace(aligned)
    return xp.where(pred_bad[..., None, None], float("nan"), aligned)


def procrustes_align(pred: Array, gt: Array) -> Array:
    """``pred`` aligned to ``gt`` per frame by the best similarity transform.

    Rotation with det R = +1 (no reflection), one isotropic scale, translation, fitted by least
    squares on the joints whose ground truth is finite; every joint of ``pred`` is transformed.
    A frame whose prediction is non-finite comes back as NaN. Computed in float64, returned in
    ``pred``'s floating dtype and backend (device preserved).
    """
    p, g, valid, pred_bad = _prepare(pred, gt, None, name="procrustes_align")
    return cast_like(_nan_frames(_procrustes(p, g, valid), pred_bad), pred)


def scale_align(pred: Array, gt: Array) -> Array:
    """``pred`` scaled per frame about the origin: ``s = sum<p,g> / sum||p||^2`` (0 if ``p`` = 0)."""
    p, g, valid, pred_bad = _prepare(pred, gt, None, name="scale_align")
    return cast_like(_nan_frames(_scale(p, g, valid), pred_bad), pred)


# ----------------------------------------------------------------------------------------------
# Frame metrics: each returns (per-frame sum, per-frame count)


def _mpjpe_sums(p: Array, g: Array, valid: Array, pred_bad: Array) -> tuple[Array, Array]:
    return _frame_sums(_joint_errors(p, g), valid, pred_bad)


def _p_mpjpe_sums(p: Array, g: Array, valid: Array, pred_bad: Array) -> tuple[Array, Array]:
    return _frame_sums(_joint_errors(_procrustes(p, g, valid), g), valid, pred_bad)


def _n_mpjpe_sums(p: Array, g: Array, valid: Array, pred_bad: Array) -> tuple[Array, Array]:
    return _frame_sums(_joint_errors(_scale(p, g, valid), g), valid, pred_bad)


def _pck_sums(threshold: float):
    def sums(p: Array, g: Array, valid: Array, pred_bad: Array) -> tuple[Array, Array]:
        return _frame_sums(to_float64(_joint_errors(p, g) < threshold), valid, pred_bad)

    return sums


def _auc_sums(thresholds: Sequence[float]):
    def sums(p: Array, g: Array, valid: Array, pred_bad: Array) -> tuple[Array, Array]:
        t = like(thresholds, p)
        below = to_float64(_joint_errors(p, g)[..., None] < t)
        return _frame_sums(below.mean(axis=-1), valid, pred_bad)

    return sums


def _auc_thresholds(thresholds: Optional[Sequence[float]]) -> tuple[float, ...]:
    if thresholds is None:
        return AUC_THRESHOLDS_MM
    values = tuple(float(t) for t in thresholds)
    if not values or not all(np.isfinite(values)):
        raise InputError(f"auc: thresholds must be a non-empty list of finite mm values, got {thresholds}")
    return values


def mpjpe(pred: Array, gt: Array, *, joints: Joints = None, reduction: Reduction = "mean"):
    """Mean per-joint position error (mm), no alignment: mean of ``||p_j - g_j||``."""
    _check_reduction(reduction)
    return _reduce(*_mpjpe_sums(*_prepare(pred, gt, joints, name="mpjpe")), reduction)


def p_mpjpe(pred: Array, gt: Array, *, joints: Joints = None, reduction: Reduction = "mean"):
    """MPJPE after per-frame similarity Procrustes alignment (no reflections)."""
    _check_reduction(reduction)
    return _reduce(*_p_mpjpe_sums(*_prepare(pred, gt, joints, name="p_mpjpe")), reduction)


def n_mpjpe(pred: Array, gt: Array, *, joints: Joints = None, reduction: Reduction = "mean"):
    """MPJPE after per-frame least-squares scaling of the prediction about the origin."""
    _check_reduction(reduction)
    return _reduce(*_n_mpjpe_sums(*_prepare(pred, gt, joints, name="n_mpjpe")), reduction)


def pck(
    pred: Array,
    gt: Array,
    *,
    threshold: float = PCK_THRESHOLD_MM,
    joints: Joints = None,
    reduction: Reduction = "mean",
):
    """Fraction of joints with error strictly below ``threshold`` mm (0..1, no alignment)."""
    _check_reduction(reduction)
    sums = _pck_sums(float(threshold))
    return _reduce(*sums(*_prepare(pred, gt, joints, name="pck")), reduction)


def auc(
    pred: Array,
    gt: Array,
    *,
    thresholds: Optional[Sequence[float]] = None,
    joints: Joints = None,
    reduction: Reduction = "mean",
):
    """Plain mean of PCK over ``thresholds`` (default 0, 5, ..., 150 mm; a perfect score is 30/31)."""
    _check_reduction(reduction)
    sums = _auc_sums(_auc_thresholds(thresholds))
    return _reduce(*sums(*_prepare(pred, gt, joints, name="auc")), reduction)


# ----------------------------------------------------------------------------------------------
# Temporal metrics (time on axis -3)


def _temporal_sums(pred: object, gt: object, joints: Joints, order: int, name: str):
    p, g, valid, pred_bad = _prepare(pred, gt, joints, min_ndim=3, name=name)
    if p.shape[-3] <= order:
        raise InputError(
            f"{name}: needs at least {order + 1} frames on axis -3 of (..., T, J, 3), "
            f"got T = {p.shape[-3]}"
        )
    for _ in range(order):
        p = p[..., 1:, :, :] - p[..., :-1, :, :]
        g = g[..., 1:, :, :] - g[..., :-1, :, :]
        valid = valid[..., 1:, :] & valid[..., :-1, :]
        pred_bad = pred_bad[..., 1:] | pred_bad[..., :-1]
    return _frame_sums(_joint_errors(p, g), valid, pred_bad)


def mpjve(pred: Array, gt: Array, *, joints: Joints = None, reduction: Reduction = "mean"):
    """Mean per-joint velocity error (mm/frame): mean of ``||dp/dt - dg/dt||`` over (T-1)·J.

    Per-frame output has T-1 entries along time (entry t compares frames t and t+1).
    """
    _check_reduction(reduction)
    return _reduce(*_temporal_sums(pred, gt, joints, 1, "mpjve"), reduction)


def accel_error(pred: Array, gt: Array, *, joints: Joints = None, reduction: Reduction = "mean"):
    """Mean per-joint acceleration error (mm/frame^2): mean of ``||d2p - d2g||`` over (T-2)·J.

    Second differences ``x[t+1] - 2 x[t] + x[t-1]``; per-frame output has T-2 entries along time
    (entry t is centred on frame t+1).
    """
    _check_reduction(reduction)
    return _reduce(*_temporal_sums(pred, gt, joints, 2, "accel_error"), reduction)


# ----------------------------------------------------------------------------------------------
# Streaming accumulators


def _add(total, value):
    """Running float64 total; stays on the tensor's device unless backends are mixed."""
    if total is None:
        return value
    if is_tensor(total) != is_tensor(value) or (is_tensor(total) and total.device != value.device):
        return float(total) + float(value)
    return total + value


def _frame_weights(weight: object, frame_shape: tuple, ref: Array, name: str) -> Array:
    w = like(weight, ref)
    if tuple(w.shape) != tuple(frame_shape):
        raise InputError(
            f"{name}.update: weight must have the leading shape {tuple(frame_shape)} of pred "
            f"(one weight per frame), got {tuple(w.shape)}"
        )
    xp = namespace(w)
    if not bool(xp.isfinite(w).all()) or bool((w < 0).any()):
        raise InputError(f"{name}.update: weight must be finite and non-negative")
    return w


class _StreamingMetric(ABC):
    """Accumulates float64 sums and counts over ``update`` calls; ``compute`` gives the mean."""

    def __init__(self, joints: Joints = None) -> None:
        self.joints = None if joints is None else [int(j) for j in joints]
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._sum = None
        self._count = None

    @abstractmethod
    def _sums(self, p: Array, g: Array, valid: Array, pred_bad: Array) -> tuple[Array, Array]:
        """Per-frame (sum over valid joints, valid-joint count) of this metric."""

    def update(self, pred: Array, gt: Array, weight: Optional[Array] = None) -> None:
        """Add a batch of frames ``(..., J, 3)``; ``weight`` (shape ``(...,)``) weights frames.

        A frame of weight 0 is excluded entirely (even if its prediction is non-finite).
        """
        name = type(self).__name__
        prepared = _prepare(pred, gt, self.joints, name=name)
        total, count = self._sums(*prepared)
        if weight is not None:
            xp = namespace(total)
            w = _frame_weights(weight, tuple(total.shape), total, name)
            total = xp.where(w > 0, total * w, 0.0)
            count = count * w
        self._sum = _add(self._sum, total.sum())
        self._count = _add(self._count, count.sum())

    def compute(self) -> float:
        """The pooled mean of everything added since the last reset (NaN if nothing was valid)."""
        if self._sum is None:
            raise InputError(f"{type(self).__name__}.compute() called before any update()")
        if float(self._count) == 0.0:
            return float("nan")
        return as_float(self._sum / self._count)


class MPJPE(_StreamingMetric):
    """Streaming :func:`mpjpe`."""

    def _sums(self, p, g, valid, pred_bad):
        return _mpjpe_sums(p, g, valid, pred_bad)


class PMPJPE(_StreamingMetric):
    """Streaming :func:`p_mpjpe`."""

    def _sums(self, p, g, valid, pred_bad):
        return _p_mpjpe_sums(p, g, valid, pred_bad)


class NMPJPE(_StreamingMetric):
    """Streaming :func:`n_mpjpe`."""

    def _sums(self, p, g, valid, pred_bad):
        return _n_mpjpe_sums(p, g, valid, pred_bad)


class PCK(_StreamingMetric):
    """Streaming :func:`pck` at ``threshold`` mm (strict ``<``)."""

    def __init__(self, threshold: float = PCK_THRESHOLD_MM, joints: Joints = None) -> None:
        self.threshold = float(threshold)
        super().__init__(joints)

    def _sums(self, p, g, valid, pred_bad):
        return _pck_sums(self.threshold)(p, g, valid, pred_bad)


class AUC(_StreamingMetric):
    """Streaming :func:`auc` (mean PCK over ``thresholds``, default 0..150 mm step 5)."""

    def __init__(self, thresholds: Optional[Sequence[float]] = None, joints: Joints = None) -> None:
        self.thresholds = _auc_thresholds(thresholds)
        super().__init__(joints)

    def _sums(self, p, g, valid, pred_bad):
        return _auc_sums(self.thresholds)(p, g, valid, pred_bad)


class MPJVE:
    """Streaming :func:`mpjve` over whole sequences.

    Each ``update`` receives one or more **complete** sequences ``(..., T, J, 3)``; every
    sequence's MPJVE (mean over its (T-1)·J velocity errors) enters the result weighted by
    ``weight`` (shape ``(...,)``, one per sequence), by default its frame count T as VP3D does.
    Splitting a sequence across updates loses the velocity across the split and changes the
    weights, so time chunks are not equivalent to the whole sequence; batches of sequences are.
    Sequences without any finite ground-truth velocity are skipped.
    """

    def __init__(self, joints: Joints = None) -> None:
        self.joints = None if joints is None else [int(j) for j in joints]
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._sum = None
        self._weight = None

    def update(self, pred: Array, gt: Array, weight: Optional[Array] = None) -> None:
        """Add whole sequences ``(..., T, J, 3)``; ``weight`` defaults to T per sequence."""
        total, count = _temporal_sums(pred, gt, self.joints, 1, "MPJVE")
        xp = namespace(total)
        seq_sum, seq_count = total.sum(axis=-1), count.sum(axis=-1)
        if weight is None:
            w = xp.ones_like(seq_sum) * (total.shape[-1] + 1)
        else:
            w = _frame_weights(weight, tuple(seq_sum.shape), seq_sum, "MPJVE")
        scored = (seq_count > 0) | xp.isnan(seq_sum)
        w = xp.where(scored, w, 0.0)
        value = xp.where(scored, seq_sum / xp.where(seq_count > 0, seq_count, 1.0), 0.0)
        self._sum = _add(self._sum, xp.where(w > 0, value * w, 0.0).sum())
        self._weight = _add(self._weight, w.sum())

    def compute(self) -> float:
        """Weighted mean of the per-sequence MPJVE values added since the last reset."""
        if self._sum is None:
            raise InputError("MPJVE.compute() called before any update()")
        if float(self._weight) == 0.0:
            return float("nan")
        return as_float(self._sum / self._weight)
