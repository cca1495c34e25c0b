"""Association of detected people with mocap subjects, frame by frame and along tracks.

Detections (OpenPose people of one video, already mapped to h36m17) are compared with the
projection of every subject. The cost of a (subject, detection) pair is the median, over the
joints present in both (detection confidence at or above the threshold), of the pixel distance,
scaled to millimetres at the subject's depth (``pixels · depth / focal``); a pair with fewer than :data:`MIN_COMMON_JOINTS` common
joints cannot match. Each frame is an assignment problem (Hungarian method) with a gate: a pair
costlier than the subject's gate is no match, so people who are not subjects are discarded; the
gate adapts to how well each subject's detections agree with its projection (:func:`subject_gates`). Tracks (the
tracker's ``person_id`` when present, otherwise detections linked between consecutive frames)
then keep their subject unless the per-frame evidence names another one for ``hold`` frames in a
row or names it decisively (:data:`DECISIVE_RATIO` times cheaper). See docs/converters/mmhuman.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from posebench.skeletons import get_mapping

#: Fewest joints a subject and a detection must share for their cost to be defined.
MIN_COMMON_JOINTS = 3
#: Cost standing in for "impossible" in the assignment solver.
UNMATCHABLE = 1e6
#: Gate of the frame-to-frame linking of untracked detections (median joint motion / size).
LINK_GATE = 0.25
#: A subject's gate shrinks to this many times its median matched cost, but not below MIN_GATE_MM.
ADAPTIVE_GATE_FACTOR = 5.0
MIN_GATE_MM = 100.0
#: Per-frame evidence this many times cheaper than the track's held subject overrides the track.
DECISIVE_RATIO = 3.0


def map_detections(keypoints: np.ndarray, confidence: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """OpenPose people ``(..., K, 2)``, ``(..., K)`` in ``layout`` mapped to h36m17.

    Coordinates follow the registered mapping (``posebench.skeletons.get_mapping(layout)``); the
    confidence of a mapped joint is the smallest confidence among the keypoints its formula uses.
    """
    mapping = get_mapping(layout, "h36m17")
    xy = mapping.apply(keypoints.astype(np.float64))
    uses = mapping.weights != 0
    conf = np.where(uses, confidence[..., None, :], np.inf).min(axis=-1)
    return xy, np.where(np.isfinite(conf), conf, 0.0)


def _nan_median(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over the last axis ignoring NaN, and the count of finite values (no warnings)."""
    count = np.isfinite(values).sum(axis=-1)
    ordered = np.sort(np.where(np.isfinite(values), values, np.inf), axis=-1)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, (low + high) / 2, np.inf), count


def projected_size(projected: np.ndarray) -> np.ndarray:
    """Largest side of the bounding box of projected joints ``(..., J, 2)``; NaN when unknown."""
    finite = np.isfinite(projected).all(axis=-1, keepdims=True)
    low = np.where(finite, projected, np.inf).min(axis=-2)
    high = np.where(finite, projected, -np.inf).max(axis=-2)
    size = (high - low).max(axis=-1)
    return np.where(np.isfinite(size) & (size > 0), size, np.nan)


def pose_costs(projected: np.ndarray, depth: np.ndarray, focal: float, det_xy: np.ndarray, det_conf: np.ndarray,
               threshold: float) -> np.ndarray:
    """Costs ``(..., P, D)`` in mm between subjects ``(..., P, J, 2)`` and detections ``(..., D, J, 2)``.

    The median pixel distance over the joints the detection has with confidence >= ``threshold``
    and the projection has, scaled to millimetres at the subject's depth: ``median · depth /
    focal`` with ``depth (..., P)`` the subject's median camera-frame depth (mm). ``inf`` where
    fewer than :data:`MIN_COMMON_JOINTS` joints are shared or the depth is unknown.
    """
    distance = np.linalg.norm(projected[..., :, None, :, :] - det_xy[..., None, :, :, :], axis=-1)
    seen = (det_conf >= threshold) & np.isfinite(det_xy).all(axis=-1)
    distance = np.where(seen[..., None, :, :], distance, np.nan)
    median, count = _nan_median(distance)
    cost = median * (depth / focal)[..., :, None]
    return np.where((count >= MIN_COMMON_JOINTS) & np.isfinite(cost), cost, np.inf)


def subject_depth(camera_points: np.ndarray) -> np.ndarray:
    """Median depth ``(..., P)`` (mm) of camera-frame joints ``(..., P, J, 3)`` in front of the camera; NaN if none."""
    z = camera_points[..., 2]
    median, count = _nan_median(np.where(z > 0, z, np.nan))
    return np.where(count > 0, median, np.nan)


def assign_frames(cost: np.ndarray, gates: np.ndarray) -> np.ndarray:
    """Per-frame optimal assignment of ``cost (F, P, D)``: detection index per subject ``(F, P)``, -1 for none.

    Pairs costlier than the subject's gate (``gates (P,)``) are not matched. The solver runs once
    per frame (it has no batched form); frames with no candidate pair are skipped.
    """
    frames, subjects, _ = cost.shape
    match = np.full((frames, subjects), -1, dtype=np.int64)
    allowed = cost <= np.asarray(gates)[None, :, None]
    bounded = np.where(allowed, cost, UNMATCHABLE)
    for frame in np.flatnonzero(allowed.any(axis=(1, 2))):
        rows, cols = linear_sum_assignment(bounded[frame])
        keep = allowed[frame, rows, cols]
        match[frame, rows[keep]] = cols[keep]
    return match


def subject_gates(cost: np.ndarray, gate: float) -> np.ndarray:
    """Gate of each subject ``(P,)``: ``min(gate, max(5 × median matched cost, 100 mm))``.

    The median is taken over a first per-frame assignment with ``gate``; a subject never matched
    keeps ``gate``. Where detections agree closely with the mocap, this rejects a non-subject who
    happens to stand near a missed subject in the image.
    """
    first = assign_frames(cost, np.full(cost.shape[1], gate))
    matched = np.take_along_axis(cost, np.maximum(first, 0)[..., None], axis=2)[..., 0]
    median, count = _nan_median(np.where(first >= 0, matched, np.nan).T)
    adaptive = np.maximum(ADAPTIVE_GATE_FACTOR * median, MIN_GATE_MM)
    return np.where(count > 0, np.minimum(gate, adaptive), gate)


def link_tracks(det_xy: np.ndarray, present: np.ndarray, person_ids: np.ndarray) -> np.ndarray:
    """Track id per detection slot ``(F, D)`` (-1 for empty slots).

    A tracker's ``person_id`` (>= 0) is the track id. Untracked detections are linked between
    consecutive frames by an assignment on the median joint distance divided by the detection's
    size, gated at :data:`LINK_GATE`; an unlinked detection starts a new track.
    """
    frames, slots = present.shape
    tracked = person_ids >= 0
    tracks = np.where(present & tracked, person_ids, -1)
    next_id = int(person_ids.max(initial=-1)) + 1
    untracked = present & ~tracked
    if not untracked.any():
        return tracks
    size = projected_size(det_xy)
    previous = np.zeros(slots, dtype=bool)
    for frame in range(frames):
        current = untracked[frame]
        if previous.any() and current.any():
            distance, count = _nan_median(np.linalg.norm(det_xy[frame - 1][:, None] - det_xy[frame][None], axis=-1))
            cost = distance / size[frame][None, :]
            allowed = previous[:, None] & current[None, :] & (count >= MIN_COMMON_JOINTS) & (cost <= LINK_GATE)
            rows, cols = linear_sum_assignment(np.where(allowed, cost, UNMATCHABLE))
            keep = allowed[rows, cols]
            tracks[frame, cols[keep]] = tracks[frame - 1, rows[keep]]
        fresh = current & (tracks[frame] < 0)
        tracks[frame, fresh] = np.arange(next_id, next_id + int(fresh.sum()))
        next_id += int(fresh.sum())
        previous = current
    return tracks


def _smooth_labels(labels: np.ndarray, hold: int) -> np.ndarray:
    """Hysteresis on one track's labels: a run of a new label shorter than ``hold`` takes the held label."""
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [len(labels)]))
    long_runs = np.flatnonzero(stops - starts >= hold)
    if not long_runs.size:
        values, counts = np.unique(labels, return_counts=True)
        return np.full_like(labels, values[np.argmax(counts)])
    smoothed = labels.copy()
    held = labels[starts[long_runs[0]]]
    for start, stop in zip(starts, stops):
        if stop - start >= hold:
            held = labels[start]
        smoothed[start:stop] = held
    return smoothed


@dataclass
class Association:
    """Detection slot per subject and frame ``match (F, P)`` (-1 unmatched) and what happened."""

    match: np.ndarray
    tracks: int
    discarded: int
    gates: np.ndarray

    def matched_fraction(self) -> np.ndarray:
        """Fraction of frames in which each subject has a detection ``(P,)``."""
        return (self.match >= 0).mean(axis=0) if len(self.match) else np.zeros(self.match.shape[1])


def associate(cost: np.ndarray, present: np.ndarray, track_ids: np.ndarray, gate: float, hold: int) -> Association:
    """Match detections to subjects: per-frame assignment, then hysteresis along tracks.

    ``cost (F, P, D)`` from :func:`pose_costs`, ``present (F, D)`` the occupied slots,
    ``track_ids (F, D)`` from :func:`link_tracks`; each subject's gate from :func:`subject_gates`.
    A track's label sequence (subject index or -1) is smoothed with :func:`_smooth_labels`, except in frames where the per-frame subject is
    :data:`DECISIVE_RATIO` times cheaper than the held one (the evidence is not ambiguous); a
    label stands only where its cost is within the gate, and when two detections of a frame claim
    one subject the cheaper one keeps it.
    """
    frames, subjects, slots = cost.shape
    gates = subject_gates(cost, gate)
    per_frame = assign_frames(cost, gates)
    labels = np.full((frames, slots), -1, dtype=np.int64)
    frame_index, subject_index = np.nonzero(per_frame >= 0)
    labels[frame_index, per_frame[frame_index, subject_index]] = subject_index
    smoothed = labels.copy()
    for track in np.unique(track_ids[track_ids >= 0]):
        where = np.nonzero(track_ids == track)
        order = np.argsort(where[0], kind="stable")
        rows, cols = where[0][order], where[1][order]
        smoothed[rows, cols] = _smooth_labels(labels[rows, cols], hold)
    padded = np.concatenate((cost, np.full((frames, 1, slots), np.inf)), axis=1)

    def cost_of(label: np.ndarray) -> np.ndarray:
        return np.take_along_axis(padded, np.where(label >= 0, label, subjects)[:, None, :], axis=1)[:, 0]

    decisive = (labels >= 0) & (cost_of(labels) * DECISIVE_RATIO < cost_of(smoothed))
    smoothed = np.where(decisive, labels, smoothed)
    claim_cost = cost_of(smoothed)
    label_gate = np.append(gates, -np.inf)[np.where(smoothed >= 0, smoothed, subjects)]
    valid = (smoothed >= 0) & (claim_cost <= label_gate) & present
    claim = np.where(valid[:, None, :] & (smoothed[:, None, :] == np.arange(subjects)[None, :, None]), claim_cost[:, None, :], np.inf)
    best = claim.argmin(axis=2)
    match = np.where(np.isfinite(claim.min(axis=2)), best, -1)
    used = np.zeros((frames, slots), dtype=bool)
    frame_index, subject_index = np.nonzero(match >= 0)
    used[frame_index, match[frame_index, subject_index]] = True
    return Association(match, int(np.unique(track_ids[track_ids >= 0]).size), int((present & ~used).sum()), gates)
