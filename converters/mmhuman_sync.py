"""Video-to-mocap synchronisation: frame times, projection of subjects, offset estimation.

Video frame ``k`` is shown at mocap time ``frame0_mocap_time + clock_ratio · k / fps``. When the
offset is unknown (or ``--estimate-sync`` asks for it), candidate offsets one video frame apart
are scored by how well the projected subjects agree with the detections, then the best one is
refined on a grid ten times finer. See docs/converters/mmhuman.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converters.mmhuman_associate import pose_costs, subject_depth
from converters.mmhuman_mocap import CameraTrack, TakeMocap, sample_at
from posebench.cameras import Camera
from posebench.errors import LayoutError

#: Most video frames scored per candidate offset (evenly spread over the frames with detections).
SCORED_FRAMES = 150
#: Candidates closer than this many video frames to the best one are not "second best".
SECOND_BEST_EXCLUSION = 2
#: Points of the refinement grid on each side of the best coarse offset (step = frame / this).
REFINE_STEPS = 10
#: Fraction of (frame, subject) pairs kept by the trimmed mean (the worst are misses and outliers).
TRIMMED_FRACTION = 0.75
#: Distance-computations per chunk of candidates (memory bound).
CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class SyncEstimate:
    """An estimated offset (mocap time of video frame 0, s) and how clear the optimum is.

    ``score`` is the trimmed mean (best :data:`TRIMMED_FRACTION` of the (frame, subject) pairs) of
    each subject's cheapest detection cost, capped at the gate, in mm (0 = perfect agreement);
    ``confidence`` is ``1 - best / second best`` with the second best taken more than two video
    frames away (0: ambiguous, near 1: a sharp optimum).
    """

    offset: float
    score: float
    second_score: float
    confidence: float
    searched_from: float
    searched_to: float


def frame_times(offset: float | np.ndarray, clock_ratio: float, fps: float, frames: np.ndarray) -> np.ndarray:
    """Mocap time of video ``frames``: ``offset + clock_ratio · frames / fps`` (broadcasting)."""
    return np.asarray(offset)[..., None] + clock_ratio * np.asarray(frames) / fps


def project_subjects(joints: np.ndarray, R: np.ndarray, t: np.ndarray, lens: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame joints and pixels of ``joints (..., P, J, 3)`` seen with poses ``R (..., 3, 3)``, ``t (..., 3)``."""
    camera_points = joints @ np.swapaxes(R, -1, -2)[..., None, :, :] + t[..., None, None, :]
    return camera_points, lens.project(camera_points)


def focal_length(lens: Camera) -> float:
    """Mean focal length ``(fx + fy) / 2`` in pixels."""
    return (lens.fx + lens.fy) / 2


def _trimmed_mean(values: np.ndarray) -> np.ndarray:
    """Mean of the smallest :data:`TRIMMED_FRACTION` of the finite values of each row (inf if none)."""
    ordered = np.sort(values, axis=-1)
    kept = np.floor(TRIMMED_FRACTION * np.isfinite(values).sum(axis=-1)).astype(np.int64)
    sums = np.concatenate((np.zeros((len(values), 1)), np.cumsum(np.where(np.isfinite(ordered), ordered, 0.0), axis=-1)), axis=-1)
    total = np.take_along_axis(sums, kept[:, None], axis=-1)[:, 0]
    return np.where(kept > 0, total / np.maximum(kept, 1), np.inf)


def _scores(offsets: np.ndarray, frames: np.ndarray, mocap: TakeMocap, track: CameraTrack, lens: Camera,
            det_xy: np.ndarray, det_conf: np.ndarray, threshold: float, gate: float, clock_ratio: float,
            fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Score (trimmed mean of the capped cost) and number of in-range frames of each candidate offset."""
    by_time = mocap.joints.transpose(1, 0, 2, 3)
    per_candidate = max(1, CHUNK_ELEMENTS // max(1, frames.size * det_xy.shape[1] * mocap.joints.shape[0] * mocap.joints.shape[2]))
    scores, counts = [], []
    for start in range(0, len(offsets), per_candidate):
        times = frame_times(offsets[start:start + per_candidate], clock_ratio, fps, frames)
        joints = sample_at(by_time, mocap.times, times)
        R, t = track.poses(np.broadcast_to(frames, times.shape), times)
        camera_points, pixels = project_subjects(joints, R, t, lens)
        cost = pose_costs(pixels, subject_depth(camera_points), focal_length(lens), det_xy[None], det_conf[None], threshold)
        in_range = np.isfinite(joints).all(axis=-1).any(axis=-1)
        capped = np.where(in_range, np.minimum(cost.min(axis=-1, initial=np.inf), gate), np.inf)
        scores.append(_trimmed_mean(capped.reshape(len(capped), -1)))
        counts.append(in_range.any(axis=-1).sum(axis=-1))
    return np.concatenate(scores), np.concatenate(counts)


def estimate_offset(mocap: TakeMocap, track: CameraTrack, lens: Camera, det_xy: np.ndarray, det_conf: np.ndarray,
                    *, fps: float, clock_ratio: float, threshold: float, gate: float, recorded: float | None,
                    window: float, where: str) -> SyncEstimate:
    """Estimate the mocap time of video frame 0 from detections ``(F, D, 17, 2)`` and confidences.

    Candidates span ``recorded ± window`` seconds, or every offset at which the video overlaps the
    mocap when nothing is recorded, one video frame apart; candidates whose overlap is less than
    half the best overlap are not considered.
    """
    n_frames = det_xy.shape[0]
    step = clock_ratio / fps
    detected = np.flatnonzero((det_conf >= threshold).any(axis=(1, 2)))
    if detected.size == 0:
        raise LayoutError(f"{where}: no detection with confidence >= {threshold}; the sync offset cannot be estimated")
    chosen = detected[np.unique(np.linspace(0, detected.size - 1, min(SCORED_FRAMES, detected.size)).astype(int))]
    if recorded is not None:
        low, high = recorded - window, recorded + window
    else:
        low, high = mocap.times[0] - step * (n_frames - 1), mocap.times[-1]
    coarse = low + step * np.arange(int(np.floor((high - low) / step + 1e-9)) + 1)
    args = (mocap, track, lens, det_xy[chosen], det_conf[chosen], threshold, gate, clock_ratio, fps)
    scores, counts = _scores(coarse, chosen, *args)
    scores = np.where(counts >= max(1, counts.max() / 2), scores, np.inf)
    if not np.isfinite(scores).any():
        raise LayoutError(f"{where}: no candidate offset overlaps the mocap; check the recording and the sync block")
    best = int(np.argmin(scores))
    far = np.abs(np.arange(len(coarse)) - best) > SECOND_BEST_EXCLUSION
    second = float(scores[far].min()) if far.any() else float("inf")
    fine = coarse[best] + step * np.arange(-REFINE_STEPS, REFINE_STEPS + 1) / REFINE_STEPS
    fine_scores, fine_counts = _scores(fine, chosen, *args)
    fine_scores = np.where(fine_counts >= max(1, counts.max() / 2), fine_scores, np.inf)
    refined = int(np.argmin(fine_scores))
    score = float(fine_scores[refined])
    confidence = 1.0 - score / second if np.isfinite(second) and second > 0 else 0.0
    return SyncEstimate(float(fine[refined]), score, second, float(np.clip(confidence, 0.0, 1.0)), float(low), float(high))
