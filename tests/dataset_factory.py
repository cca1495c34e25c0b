"""Synthetic datasets in the unified schema for tests: several persons, moving and static
cameras, NaN gaps and two 2D keypoint sources."""

from __future__ import annotations

import numpy as np

from posebench.cameras import Camera
from posebench.dataset import Dataset, Keypoints2D, Sequence, make_provenance

# A standing h36m17 pose in millimetres, z up, facing +y (pelvis at 900 mm height).
STANDING_POSE_MM = np.array(
    [
        [0, 0, 900], [-130, 0, 900], [-130, 0, 480], [-130, 0, 80],
        [130, 0, 900], [130, 0, 480], [130, 0, 80], [0, 0, 1150],
        [0, 0, 1400], [0, 20, 1500], [0, 0, 1650], [180, 0, 1400],
        [200, 0, 1120], [210, 0, 880], [-180, 0, 1400], [-200, 0, 1120], [-210, 0, 880],
    ],
    dtype=np.float64,
)


def look_at(eye: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World->camera (R, t) of an OpenCV camera at ``eye`` looking at ``target`` (world z up)."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ eye


def walking_persons(n_persons: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(P, F, 17, 3) poses walking along x with a little noise."""
    t = np.arange(n_frames)[:, None, None]
    offsets = np.array([[0.0, 600.0 * p, 0.0] for p in range(n_persons)])
    poses = STANDING_POSE_MM[None, None] + offsets[:, None, None] + np.concatenate(
        [12.0 * t, np.zeros_like(t), np.zeros_like(t)], axis=-1
    )[None]
    return poses + rng.normal(0, 5, poses.shape)


def static_camera(camera_id: str = "cam0") -> Camera:
    R, t = look_at(np.array([1000.0, -4500.0, 1500.0]), np.array([500.0, 300.0, 1000.0]))
    return Camera(camera_id, 1000, 1002, 1145.0, 1144.0, 512.5, 515.4, "h36m", (-0.2, 0.24, -0.003, -0.001, -0.0014), R, t)


def moving_camera(camera_id: str, n_frames: int) -> Camera:
    angles = np.linspace(0.0, 0.6, n_frames)
    poses = [look_at(np.array([4000 * np.sin(a), -4000 * np.cos(a), 1600.0]), np.array([400.0, 300.0, 1000.0])) for a in angles]
    R = np.stack([p[0] for p in poses])
    t = np.stack([p[1] for p in poses])
    return Camera(camera_id, 1920, 1080, 1500.0, 1500.0, 960.0, 540.0, "opencv", (0.01, -0.02, 0.001, 0.0005, 0.0), R, t)


def make_dataset(seed: int = 0, n_frames: int = 40) -> Dataset:
    """Three sequences: two persons with a moving camera and NaN gaps, one static-camera
    sequence, one mocap-only sequence; 2D sources ``gt`` (h36m17) and ``openpose`` (openpose25)."""
    rng = np.random.default_rng(seed)
    sequences = []
    specs = [
        ("take1/phone", ["alice", "bob"], moving_camera("phone_take1", n_frames), "ShakeHand"),
        ("take2/cam0", ["alice"], static_camera("cam0"), "Walking"),
        ("take3", ["carol", "dave"], None, "Walking"),
    ]
    for index, (sequence_id, subjects, camera, action) in enumerate(specs):
        world = walking_persons(len(subjects), n_frames, rng)
        if index == 0:
            world[1, 5:9, 3] = np.nan
            world[0, 20] = np.nan
        keypoints = {}
        if camera is not None:
            cam = camera.world_to_camera(world)
            xy = camera.project(cam)
            confidence = rng.uniform(0.2, 1.0, xy.shape[:-1])
            keypoints["gt"] = Keypoints2D.create(xy, np.where(np.isnan(xy[..., 0]), 0.0, 1.0))
            openpose = rng.normal(500, 200, world.shape[:2] + (25, 2))
            openpose[0, 3, 7] = np.nan
            op_conf = np.where(np.isnan(openpose[..., 0]), 0.0, confidence[..., :1].repeat(25, -1))
            keypoints["openpose"] = Keypoints2D.create(openpose, op_conf, op_conf < 0.3)
        sequences.append(
            Sequence.create(
                sequence_id,
                subjects,
                world,
                fps=30.0 if camera is not None and camera.is_moving else 50.0,
                action=action,
                take=sequence_id.split("/")[0],
                camera=camera,
                keypoints=keypoints,
                person_ids=[10 + p for p in range(len(subjects))],
                attributes={"subaction": str(index)},
            )
        )
    return Dataset(
        "synthetic",
        sequences,
        "h36m17",
        keypoint_sources={"gt": {"skeleton": "h36m17"}, "openpose": {"skeleton": "openpose25", "description": "BODY_25 detections"}},
        splits={"train": ["take1/phone", "take3"], "test": ["take2/cam0"]},
        provenance=make_provenance("synthetic", "1", command="tests"),
        description="synthetic dataset for tests",
    )
