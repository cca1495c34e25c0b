"""Movement-range strata (RIE, Shan et al. 2021, eq. 15).

Every frame gets the movement range of the input window centred on it; frames are then split
into equal-size buckets by rank. Buckets depend only on the clean 2D input and the window, so
every model evaluated on the same dataset is scored on the same frames per bucket.
"""

from __future__ import annotations

import numpy as np

from posebench.errors import InputError

__all__ = ["assign_buckets", "bucket_edges", "movement_range", "rank_buckets"]

DEFAULT_WINDOW = 243
DEFAULT_BUCKETS = 10


def movement_range(
    keypoints_2d: np.ndarray, window: int = DEFAULT_WINDOW, chunk_frames: int = 65536
) -> np.ndarray:
    """Per-frame movement range: ``MR_f = 1/(T J) sum_t sum_j ||k_t^j - k_f^j||``.

    ``keypoints_2d`` ``(F, J, 2)`` (normalised screen coordinates). The window of frame f holds
    frames ``f - T//2 .. f + (T-1)//2`` (T = ``window``): for odd T (27/81/243) frame f is the
    window's centre ``T//2`` as in RIE; for even T it is the later of the two middle frames,
    again at index ``T//2``. Frames outside the sequence are edge-replicated (first/last frame),
    matching the padding of the evaluation windows. Output ``(F,)`` float64; NaN input gives NaN.

    Each distance ``||k_t - k_f||`` is computed once and credited to both frames it serves; cost
    O(F T J / 2) in blocks of ``chunk_frames`` frames, extra memory O(F + chunk_frames J) (no
    F x T x J array is built).
    """
    k = np.asarray(keypoints_2d, dtype=np.float64)
    if k.ndim != 3 or k.shape[-1] != 2 or k.shape[0] == 0 or k.shape[1] == 0:
        raise InputError(
            f"movement_range: keypoints_2d must have shape (F, J, 2) with F, J > 0, got {k.shape}"
        )
    if int(window) != window or window < 1:
        raise InputError(f"movement_range: window must be a positive integer, got {window}")
    if int(chunk_frames) != chunk_frames or chunk_frames < 1:
        raise InputError(f"movement_range: chunk_frames must be a positive integer, got {chunk_frames}")
    n_frames, n_joints = k.shape[:2]
    before, after = window // 2, (window - 1) // 2
    points = k[..., 0] + 1j * k[..., 1]
    total = np.zeros(n_frames)
    for start in range(0, n_frames, chunk_frames):
        stop = min(start + chunk_frames, n_frames)
        for offset in range(1, max(before, after) + 1):
            last = min(stop, n_frames - offset)
            if last <= start:
                break
            pair_distance = np.abs(points[start + offset : last + offset] - points[start:last]).sum(axis=1)
            if offset <= after:
                total[start:last] += pair_distance
            if offset <= before:
                total[start + offset : last + offset] += pair_distance
    frames = np.arange(n_frames)
    total += np.maximum(before - frames, 0) * np.abs(points - points[:1]).sum(axis=1)
    total += np.maximum(frames + after - (n_frames - 1), 0) * np.abs(points - points[-1:]).sum(axis=1)
    return total / (window * n_joints)


def _check_finite_1d(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise InputError(f"{name}: values must be one-dimensional (one per frame), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise InputError(f"{name}: values hold NaN or inf; compute movement ranges on the clean 2D input")
    return values


def _check_values(values: np.ndarray, n_buckets: int, name: str) -> np.ndarray:
    values = _check_finite_1d(values, name)
    if int(n_buckets) != n_buckets or n_buckets < 1:
        raise InputError(f"{name}: n_buckets must be a positive integer, got {n_buckets}")
    if values.size < n_buckets:
        raise InputError(f"{name}: {values.size} values cannot fill {n_buckets} buckets")
    return values


def rank_buckets(values: np.ndarray, n_buckets: int = DEFAULT_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """Equal-size buckets by rank, and the edges that reproduce them on new values.

    Frames are ordered by ``(value, frame index)`` (stable sort) and the i-th of N goes to bucket
    ``i * n_buckets // N``, so bucket sizes differ by at most one frame even with ties. Edges:
    ``edges[0] = -inf``, ``edges[n_buckets] = +inf`` and ``edges[b]`` = the smallest value in
    bucket b; :func:`assign_buckets` with these edges gives the same buckets wherever no run of
    tied values straddles a bucket boundary. Returns ``(bucket per frame (int64), edges)``.
    """
    values = _check_values(values, n_buckets, "rank_buckets")
    n_buckets = int(n_buckets)
    order = np.argsort(values, kind="stable")
    buckets = np.empty(values.size, dtype=np.int64)
    buckets[order] = np.arange(values.size) * n_buckets // values.size
    firsts = -(-np.arange(1, n_buckets) * values.size // n_buckets)
    edges = np.concatenate([[-np.inf], values[order[firsts]], [np.inf]])
    return buckets, edges


def bucket_edges(values: np.ndarray, n_buckets: int = DEFAULT_BUCKETS) -> np.ndarray:
    """Quantile edges ``(n_buckets + 1,)`` of :func:`rank_buckets`, outer edges -inf and +inf."""
    return rank_buckets(values, n_buckets)[1]


def assign_buckets(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bucket b of each value such that ``edges[b] <= value < edges[b + 1]`` (int64)."""
    edges = np.asarray(edges, dtype=np.float64)
    if (
        edges.ndim != 1
        or edges.size < 2
        or np.any(np.diff(edges) < 0)
        or edges[0] != -np.inf
        or edges[-1] != np.inf
    ):
        raise InputError(
            "assign_buckets: edges must be a non-decreasing 1-D array starting at -inf and ending "
            "at +inf, as returned by bucket_edges()"
        )
    values = _check_finite_1d(values, "assign_buckets")
    return np.searchsorted(edges, values, side="right").astype(np.int64) - 1
