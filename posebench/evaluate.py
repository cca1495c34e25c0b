"""Protocol-driven evaluation: predictions for a test split, metrics, strata, result rows.

The flow for one model and one occlusion setting:

1. inputs: the protocol's 2D source, normalised, with synthetic or natural occlusion
   (:func:`posebench.data.model_inputs`: mask-aware models get zeros plus the mask, others get
   masked joints filled by linear interpolation over time);
2. predictions: every track (one person of one sequence) whole, edge-padded, on the device;
   averaged with the un-mirrored prediction of the mirrored input when the protocol says so;
3. scoring: per-frame metric values on the scored frames (protocol exclusions, actions, stride,
   valid ground truth), then means per stratum (overall, action, subject, movement-range bucket,
   joint, occluded vs visible joints), frame-weighted within a stratum and, for the headline
   ``action_mean``, averaged without weights over action groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from posebench import metrics
from posebench.data import PreparedSplit, model_inputs, prepare_split, root_index
from posebench.dataset import Dataset
from posebench.errors import PosebenchError
from posebench.models import LiftingModel
from posebench.protocols import Protocol
from posebench.results import METRIC_UNITS
from posebench.skeletons import flip_joints_3d, flip_keypoints_2d
from posebench.stratify import movement_range, rank_buckets
from posebench.trajectory import recover_trajectory

PER_FRAME_METRICS: dict[str, Callable] = {
    "mpjpe": metrics.mpjpe,
    "p_mpjpe": metrics.p_mpjpe,
    "n_mpjpe": metrics.n_mpjpe,
    "pck": metrics.pck,
    "auc": metrics.auc,
    "mpjpe_abs": metrics.mpjpe,
    "n_mpjpe_abs": metrics.n_mpjpe,
}
TEMPORAL_METRICS: dict[str, Callable] = {"mpjve": metrics.mpjve, "accel_error": metrics.accel_error}
JOINT_ALIGNMENT = {"mpjpe": None, "p_mpjpe": metrics.procrustes_align, "n_mpjpe": metrics.scale_align}
PERCENT_METRICS = ("pck", "auc")
METRIC_CHUNK_FRAMES = 16_384
"""Frames per metric call: bounds the temporaries of alignment and AUC (a threshold axis) at any split size."""


@dataclass
class TestSet:
    """A protocol's test split prepared once and shared by every model and occlusion setting."""

    split: PreparedSplit
    dataset: Dataset
    protocol: Protocol
    scored: np.ndarray
    actions: np.ndarray
    subjects: np.ndarray
    mr_bucket: np.ndarray
    mr_edges: np.ndarray
    joint_indices: np.ndarray
    root: int
    track_of_row: np.ndarray = field(repr=False)

    @property
    def n_scored(self) -> int:
        return int(self.scored.sum())


def prepare_test_set(dataset: Dataset, protocol: Protocol) -> TestSet:
    """Select, prepare and stratify the protocol's test split (independent of any model)."""
    if protocol.test_split not in dataset.splits:
        raise PosebenchError(
            f"dataset {dataset.name!r} has no split {protocol.test_split!r} (protocol {protocol.name!r}); its splits are {sorted(dataset.splits)}"
        )
    split = prepare_split(dataset, protocol.test_split, protocol.source)
    lengths = split.track_lengths
    track_of_row = np.repeat(np.arange(split.n_tracks), lengths)
    frame_in_track = np.arange(len(track_of_row)) - np.repeat(split.track_starts[:-1], lengths)
    sequences = [dataset[s] for s in split.sequence_ids]
    track_actions = np.array([protocol.action_group(s.action) for s in sequences], dtype=object)
    track_subjects = np.array([s.subjects[s.person_ids.index(p)] for s, p in zip(sequences, split.person_ids)], dtype=object)
    keep_track = np.array([not protocol.excludes(s.sequence_id) for s in sequences])
    if protocol.actions:
        keep_track &= np.isin(track_actions, list(protocol.actions))
    scored = keep_track[track_of_row] & split.valid & (frame_in_track % protocol.frame_stride == 0)
    if not scored.any():
        raise PosebenchError(
            f"protocol {protocol.name!r} scores no frame of dataset {dataset.name!r}: check its exclusions, actions and the split {protocol.test_split!r}"
        )
    window = protocol.movement_range.window
    movement = np.concatenate([movement_range(split.keypoints[split.track(i)], window=window) for i in range(split.n_tracks)])
    buckets = np.full(len(movement), -1)
    scored_buckets, edges = rank_buckets(movement[scored], protocol.movement_range.buckets)
    buckets[scored] = scored_buckets
    skeleton = dataset.skeleton
    try:
        joint_indices = np.array([skeleton.index(j) for j in protocol.joints] if protocol.joints else range(skeleton.n_joints))
        root = skeleton.index(protocol.root_joint)
    except KeyError as exc:
        raise PosebenchError(f"protocol {protocol.name!r} names a joint that skeleton {skeleton.name!r} lacks: {exc}") from None
    return TestSet(
        split=split,
        dataset=dataset,
        protocol=protocol,
        scored=scored,
        actions=track_actions[track_of_row],
        subjects=track_subjects[track_of_row],
        mr_bucket=buckets,
        mr_edges=edges,
        joint_indices=joint_indices,
        root=root,
        track_of_row=track_of_row,
    )


@torch.no_grad()
def predict_split(
    model: LiftingModel, test: TestSet, *, occlusion_ratio: float, occlusion_kernel: int, seed: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative predictions (N, J, 3) in mm for every row of the split, and the input mask (N, J)."""
    protocol = test.protocol
    natural = protocol.occlusion.mode == "natural"
    boundary = protocol.occlusion.boundary
    inputs = model_inputs(
        test.split, uses_mask=model.uses_mask, occlusion_ratio=occlusion_ratio, occlusion_kernel=occlusion_kernel,
        seed=seed, natural_occlusion=natural, confidence_threshold=protocol.occlusion.confidence_threshold, boundary=boundary,
    )
    mask = inputs.mask if inputs.mask is not None else _input_mask(test, occlusion_ratio, occlusion_kernel, seed, natural)
    skeleton = test.dataset.skeleton
    model = model.to(device).eval()
    predictions = np.empty(test.split.targets.shape, dtype=np.float64)
    root = root_index(skeleton)
    for track in range(test.split.n_tracks):
        rows = test.split.track(track)
        keypoints = torch.as_tensor(inputs.keypoints[rows], dtype=torch.float32, device=device)[None]
        track_mask = None if inputs.mask is None else torch.as_tensor(inputs.mask[rows], device=device)[None]
        prediction = model.predict(keypoints, track_mask).double()
        if protocol.flip_test:
            mirrored_mask = None if track_mask is None else track_mask[..., skeleton.flip_permutation]
            mirrored = model.predict(flip_keypoints_2d(keypoints, skeleton), mirrored_mask).double()
            prediction = (prediction + flip_joints_3d(mirrored, skeleton)) / 2
        prediction = prediction - prediction[..., root : root + 1, :]
        predictions[rows] = prediction[0].cpu().numpy()
    return predictions, mask


def _input_mask(test: TestSet, ratio: float, kernel: int, seed: int, natural: bool) -> np.ndarray:
    """The occlusion mask a mask-unaware model's inputs were built with (for strata)."""
    occlusion = test.protocol.occlusion
    return model_inputs(
        test.split, uses_mask=True, occlusion_ratio=ratio, occlusion_kernel=kernel, seed=seed, natural_occlusion=natural,
        confidence_threshold=occlusion.confidence_threshold, boundary=occlusion.boundary,
    ).mask


def absolute_predictions(test: TestSet, predictions: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera-space predictions with the recovered global trajectory (MMHuman eq. 9) and the ground truth."""
    trajectory = test.protocol.trajectory
    arrays = test.dataset.arrays(test.protocol.test_split, test.protocol.source)
    pixels = arrays.keypoints.astype(np.float64)
    absolute = np.empty_like(predictions)
    for track in range(test.split.n_tracks):
        rows = test.split.track(track)
        camera = test.dataset[test.split.sequence_ids[track]].camera
        visible_mask = mask[rows] | ~np.isfinite(pixels[rows]).all(axis=-1)
        roots = recover_trajectory(
            predictions[rows], pixels[rows], visible_mask, camera.fx, camera.fy, camera.cx, camera.cy,
            lambda1=trajectory.lambda1, lambda2=trajectory.lambda2, window=trajectory.window,
        )
        absolute[rows] = predictions[rows] + roots[:, None, :]
    return absolute, arrays.joints_cam.astype(np.float64)


def _mean_rows(values: np.ndarray, weights: np.ndarray, groups: np.ndarray) -> dict[str, tuple[float, int]]:
    """Weighted mean and total weight of ``values`` per group label."""
    out = {}
    for label in sorted(set(groups.tolist()), key=str):
        select = groups == label
        total = weights[select].sum()
        if total > 0:
            out[str(label)] = (float(np.sum(values[select] * weights[select]) / total), int(total))
    return out


def score(test: TestSet, predictions: np.ndarray, mask: np.ndarray) -> list[dict]:
    """Result rows (metric, unit, stratum_kind, stratum, value, frames) for one prediction set."""
    protocol = test.protocol
    joints = test.joint_indices
    scored = test.scored
    scored_rows = np.flatnonzero(scored)
    targets = test.split.targets
    rows: list[dict] = []
    absolute = None
    for metric in protocol.metrics:
        if metric in TEMPORAL_METRICS:
            values, weights = _temporal_values(test, predictions, targets, metric)
            frame_groups = {"action": test.actions, "subject": test.subjects}
        else:
            if metric in ("mpjpe_abs", "n_mpjpe_abs"):
                if absolute is None:
                    absolute = absolute_predictions(test, predictions, mask)
                values = _per_frame_values(metric, absolute[0], absolute[1], scored_rows, joints, root=None)
            else:
                values = _per_frame_values(metric, predictions, targets, scored_rows, joints, test.root)
            weights = np.ones(len(values))
            frame_groups = {"action": test.actions[scored], "subject": test.subjects[scored], "mr_bucket": test.mr_bucket[scored]}
        if metric in PERCENT_METRICS:
            values = values * 100.0
        rows.extend(_stratified_rows(metric, values, weights, frame_groups, protocol))
        if metric in JOINT_ALIGNMENT:
            rows.extend(_joint_rows(metric, predictions, targets, scored_rows, mask[scored][:, joints], test))
    return rows


def _frames(array: np.ndarray, rows: np.ndarray, joints: np.ndarray, root: int | None) -> np.ndarray:
    """Rows of a (N, J, 3) array, relative to the root joint unless ``root`` is None (absolute metrics), restricted to the scored joints."""
    frames = array[rows].astype(np.float64)
    if root is not None:
        frames = frames - frames[:, root : root + 1]
    return frames[:, joints]


def _per_frame_values(metric: str, predictions: np.ndarray, targets: np.ndarray, rows: np.ndarray, joints: np.ndarray, root: int | None) -> np.ndarray:
    """A per-frame metric on ``rows``, computed :data:`METRIC_CHUNK_FRAMES` rows at a time in float64."""
    values = np.empty(len(rows))
    for start in range(0, len(rows), METRIC_CHUNK_FRAMES):
        chunk = rows[start : start + METRIC_CHUNK_FRAMES]
        values[start : start + len(chunk)] = np.asarray(
            PER_FRAME_METRICS[metric](_frames(predictions, chunk, joints, root), _frames(targets, chunk, joints, root), reduction="none"), dtype=np.float64
        )
    return values


def _stratified_rows(metric: str, values: np.ndarray, weights: np.ndarray, groups: dict[str, np.ndarray], protocol: Protocol) -> list[dict]:
    unit = METRIC_UNITS[metric]
    rows = []
    per_action = _mean_rows(values, weights, groups["action"])
    action_mean = float(np.mean([v for v, _ in per_action.values()]))
    total = int(weights.sum())
    if "action_mean" in protocol.averaging:
        rows.append(_row(metric, unit, "overall", "action_mean", action_mean, total))
    if "frame_mean" in protocol.averaging:
        rows.append(_row(metric, unit, "overall", "frame_mean", float(np.sum(values * weights) / weights.sum()), total))
    rows.extend(_row(metric, unit, "action", label, value, n) for label, (value, n) in per_action.items())
    for subject in sorted(set(groups["subject"].tolist())):
        select = groups["subject"] == subject
        subject_actions = _mean_rows(values[select], weights[select], groups["action"][select])
        value = float(np.mean([v for v, _ in subject_actions.values()]))
        rows.append(_row(metric, unit, "subject", str(subject), value, int(weights[select].sum())))
        if protocol.by_subject:
            rows.extend(_row(metric, unit, "subject_action", f"{subject}/{label}", v, n) for label, (v, n) in subject_actions.items())
    if "mr_bucket" in groups:
        rows.extend(
            _row(metric, unit, "mr_bucket", f"{int(label):02d}", value, n)
            for label, (value, n) in _mean_rows(values, weights, groups["mr_bucket"]).items()
        )
    return rows


def _joint_rows(metric: str, predictions: np.ndarray, targets: np.ndarray, scored_rows: np.ndarray, mask: np.ndarray, test: TestSet) -> list[dict]:
    """Per-joint errors (after the metric's alignment) and errors on occluded vs visible joints."""
    align = JOINT_ALIGNMENT[metric]
    errors = np.empty(mask.shape)
    for start in range(0, len(scored_rows), METRIC_CHUNK_FRAMES):
        chunk = scored_rows[start : start + METRIC_CHUNK_FRAMES]
        pred, gt = _frames(predictions, chunk, test.joint_indices, test.root), _frames(targets, chunk, test.joint_indices, test.root)
        aligned = pred if align is None else np.asarray(align(pred, gt), dtype=np.float64)
        errors[start : start + len(chunk)] = np.linalg.norm(aligned - gt, axis=-1)
    finite = np.isfinite(errors)
    names = test.dataset.skeleton.joints
    unit = METRIC_UNITS[metric]
    rows = [
        _row(metric, unit, "joint", names[j], float(errors[finite[:, k], k].mean()), int(finite[:, k].sum()))
        for k, j in enumerate(test.joint_indices)
        if finite[:, k].any()
    ]
    for label, select in (("occluded_joints", mask & finite), ("visible_joints", ~mask & finite)):
        if select.any():
            rows.append(_row(metric, unit, "occlusion", label, float(errors[select].mean()), int(select.sum())))
    return rows


def _temporal_values(test: TestSet, predictions: np.ndarray, targets: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-row values of a temporal metric: each scored track's value, weighted by its frame count T.

    Temporal metrics are computed on whole tracks at the native rate (before frame striding), as
    VideoPose3D does; excluded tracks and tracks with missing ground truth are left out.
    """
    joints = test.joint_indices
    values = np.zeros(len(targets))
    weights = np.zeros(len(targets))
    function = TEMPORAL_METRICS[metric]
    for track in range(test.split.n_tracks):
        rows = test.split.track(track)
        if not test.scored[rows].any() or not test.split.valid[rows].all():
            continue
        minimum = 3 if metric == "accel_error" else 2
        if rows.stop - rows.start < minimum:
            continue
        track_rows = np.arange(rows.start, rows.stop)
        value = function(_frames(predictions, track_rows, joints, test.root), _frames(targets, track_rows, joints, test.root))
        first = rows.start
        values[first] = value
        weights[first] = rows.stop - rows.start
    return values, weights


def _row(metric: str, unit: str, kind: str, stratum: str, value: float, frames: int) -> dict:
    return {"metric": metric, "unit": unit, "stratum_kind": kind, "stratum": stratum, "value": value, "frames": frames}
