from __future__ import annotations

import numpy as np
import pytest
import torch

from posebench.errors import InputError
from posebench.trajectory import recover_trajectory

FX, FY, CX, CY = 1145.0494384765625, 1143.7811279296875, 512.54150390625, 515.4514770507812

# A Human3.6M-like 17-joint standing pose (mm, root-relative; x right, y down, z forward) in the
# h36m17 order: hip, right leg, left leg, spine, thorax, neck, head, left arm, right arm.
REST_POSE = np.array(
    [
        [0, 0, 0],
        [-130, 5, 0],
        [-135, 450, 20],
        [-140, 880, 60],
        [130, 5, 0],
        [135, 450, 20],
        [140, 880, 60],
        [0, -230, -10],
        [0, -480, -20],
        [0, -560, -60],
        [0, -680, -30],
        [170, -450, -10],
        [420, -440, 10],
        [640, -430, 40],
        [-170, -450, -10],
        [-420, -440, 10],
        [-640, -430, 40],
    ],
    dtype=np.float64,
)


def _animated_pose(n_frames: int) -> np.ndarray:
    """The rest pose turning about the vertical axis and swinging the arms."""
    t = np.arange(n_frames)
    yaw = 0.8 * np.sin(2 * np.pi * t / 180)
    cos, sin = np.cos(yaw), np.sin(yaw)
    rot = np.zeros((n_frames, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = cos, sin, 1, -sin, cos
    poses = np.repeat(REST_POSE[None], n_frames, axis=0)
    swing = 250 * np.sin(2 * np.pi * t / 60)
    poses[:, [12, 13], 2] += swing[:, None]
    poses[:, [15, 16], 2] -= swing[:, None]
    return np.einsum("fij,fkj->fki", rot, poses)


def _project(points: np.ndarray, fx=FX, fy=FY) -> np.ndarray:
    return np.stack(
        [fx * points[..., 0] / points[..., 2] + CX, fy * points[..., 1] / points[..., 2] + CY], axis=-1
    )


def _smooth_trajectory(n_frames: int) -> np.ndarray:
    """Camera-space root path between 3 and 6 m depth (50 fps, up to ~1.5 m/s)."""
    t = np.arange(n_frames)
    return np.stack(
        [
            700 * np.sin(2 * np.pi * t / 400),
            200 + 40 * np.sin(2 * np.pi * t / 250),
            4500 + 1400 * np.sin(2 * np.pi * t / 500 + 0.3),
        ],
        axis=-1,
    )


def _occlusion(n_frames: int, seed: int = 0) -> np.ndarray:
    mask = np.random.default_rng(seed).random((n_frames, 17)) < 0.3
    mask[45:49] = True  # fully occluded frames, one block straddling a window overlap
    mask[96:101] = True
    mask[230:234] = True
    return mask


def test_recovers_trajectory_within_1mm_under_occlusion():
    n_frames = 320
    relative, trajectory = _animated_pose(n_frames), _smooth_trajectory(n_frames)
    keypoints = _project(relative + trajectory[:, None])
    mask = _occlusion(n_frames)
    assert 0.3 < mask.mean() < 0.4
    estimate = recover_trajectory(relative, keypoints, mask, FX, FY, CX, CY)
    error = np.linalg.norm(estimate - trajectory, axis=-1)
    assert estimate.shape == (n_frames, 3)
    assert error.max() < 1.0
    assert error[~mask.all(axis=1)].max() < 0.05
    whole = recover_trajectory(relative, keypoints, mask, FX, FY, CX, CY, window=None)
    assert np.linalg.norm(whole - trajectory, axis=-1).max() < 1.0


def test_fully_occluded_frames_are_bridged_on_straight_motion():
    # On a constant-velocity path both smoothness terms are minimised by the straight line, so a
    # long gap is filled exactly (up to the tiny pull of the window ends).
    n_frames = 200
    t = np.arange(n_frames)[:, None]
    trajectory = np.array([-600.0, 150.0, 3200.0]) + t * np.array([6.0, 0.5, 12.0])
    relative = _animated_pose(n_frames)
    keypoints = _project(relative + trajectory[:, None])
    mask = np.zeros((n_frames, 17), dtype=bool)
    mask[60:80] = True
    keypoints[mask] = np.nan  # occluded detections may be missing altogether
    estimate = recover_trajectory(relative, keypoints, mask, FX, FY, CX, CY)
    assert np.linalg.norm(estimate - trajectory, axis=-1)[60:80].max() < 0.05
    # Without the smoothness terms nothing ties the gap to its neighbours: the same problem with
    # a gap longer than the overlap of two windows cannot be solved.
    mask[20:120] = True
    with pytest.raises(InputError, match="fewer than 2 visible joints"):
        recover_trajectory(relative, keypoints, mask, FX, FY, CX, CY, window=60)


def test_curved_gap_is_bridged_smoothly():
    n_frames = 240
    relative, trajectory = _animated_pose(n_frames), _smooth_trajectory(n_frames)
    keypoints = _project(relative + trajectory[:, None])
    mask = np.zeros((n_frames, 17), dtype=bool)
    mask[110:118] = True
    estimate = recover_trajectory(relative, keypoints, mask, FX, FY, CX, CY)
    # Independent check of the bridge: the gap minimises lambda1 |dC|^2 + lambda2 |d2C|^2 with the
    # visible neighbours fixed, a small linear least-squares problem solved here densely.
    first, second = np.diff(np.eye(12), axis=0), np.diff(np.eye(12), n=2, axis=0)
    system = first.T @ first + second.T @ second
    free = np.arange(2, 10)
    fixed = np.array([0, 1, 10, 11])
    known = trajectory[108:120][fixed]
    bridge = np.linalg.solve(system[np.ix_(free, free)], -system[np.ix_(free, fixed)] @ known)
    np.testing.assert_allclose(estimate[110:118], bridge, atol=0.05)
    # The first-order term pulls an 8-frame bridge of this curved path ~2 mm towards the chord.
    assert 1.0 < np.linalg.norm(bridge - trajectory[110:118], axis=-1).max() < 3.0


def test_per_frame_intrinsics_and_torch_input():
    n_frames = 150
    relative, trajectory = _animated_pose(n_frames), _smooth_trajectory(n_frames)
    fx = FX * (1 + 0.2 * np.arange(n_frames) / n_frames)  # zooming camera
    keypoints = _project(relative + trajectory[:, None], fx=fx[:, None])
    mask = _occlusion(n_frames, seed=4)
    estimate = recover_trajectory(
        torch.tensor(relative, dtype=torch.float32), keypoints, mask, fx, FY, CX, CY
    )
    assert isinstance(estimate, torch.Tensor) and estimate.dtype == torch.float32
    assert np.linalg.norm(estimate.numpy() - trajectory, axis=-1).max() < 1.0


def test_bad_inputs():
    relative = _animated_pose(20)
    keypoints = _project(relative + np.array([0.0, 0.0, 4000.0]))
    with pytest.raises(InputError, match="keypoints_2d must have shape"):
        recover_trajectory(relative, keypoints[:, :5], None, FX, FY, CX, CY)
    with pytest.raises(InputError, match="bool array"):
        recover_trajectory(relative, keypoints, np.zeros((20, 17)), FX, FY, CX, CY)
    broken = relative.copy()
    broken[3, 2, 1] = np.nan
    with pytest.raises(InputError, match="must be finite"):
        recover_trajectory(broken, keypoints, None, FX, FY, CX, CY)
    mask = np.zeros((20, 17), dtype=bool)
    mask[5:8] = True
    with pytest.raises(InputError, match="need lambda1 > 0 or lambda2 > 0"):
        recover_trajectory(relative, keypoints, mask, FX, FY, CX, CY, lambda1=0.0, lambda2=0.0)
    with pytest.raises(InputError, match="one value per frame"):
        recover_trajectory(relative, keypoints, None, np.ones(3), FY, CX, CY)
