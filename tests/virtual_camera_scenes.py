"""Synthetic h36m17 scenes for the virtual-camera tests (mm, world z up, floor at z = 0)."""

from __future__ import annotations

import numpy as np

from posebench.skeletons import get_skeleton

SKELETON = get_skeleton("h36m17")

#: A person standing upright at the origin, facing -y (left side towards +x), arms hanging
#: slightly away from the body.
STANDING_POSE_MM = {
    "pelvis": (0.0, 0.0, 900.0),
    "r_hip": (-130.0, 0.0, 890.0),
    "r_knee": (-130.0, 0.0, 480.0),
    "r_ankle": (-130.0, 0.0, 80.0),
    "l_hip": (130.0, 0.0, 890.0),
    "l_knee": (130.0, 0.0, 480.0),
    "l_ankle": (130.0, 0.0, 80.0),
    "spine": (0.0, 0.0, 1150.0),
    "thorax": (0.0, 0.0, 1420.0),
    "neck_nose": (0.0, 0.0, 1530.0),
    "head_top": (0.0, 0.0, 1650.0),
    "l_shoulder": (180.0, 0.0, 1400.0),
    "l_elbow": (240.0, 0.0, 1130.0),
    "l_wrist": (270.0, 0.0, 880.0),
    "r_shoulder": (-180.0, 0.0, 1400.0),
    "r_elbow": (-240.0, 0.0, 1130.0),
    "r_wrist": (-270.0, 0.0, 880.0),
}


def joint(name: str) -> int:
    """Index of an h36m17 joint."""
    return SKELETON.index(name)


def standing_pose(x: float = 0.0, y: float = 0.0, heading_deg: float = -90.0) -> np.ndarray:
    """The standing pose ``(17, 3)`` moved to ``(x, y)`` and turned to face ``heading_deg``.

    The heading is measured from world +x towards +y; the base pose faces -90 degrees.
    """
    pose = np.array([STANDING_POSE_MM[name] for name in SKELETON.joints])
    angle = np.radians(heading_deg + 90.0)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1]]
    )
    return pose @ rotation.T + np.array([x, y, 0.0])


def walking_person(
    start_xy: tuple[float, float],
    velocity_xy: tuple[float, float],
    frames: int,
    fps: float = 50.0,
    phase: float = 0.0,
) -> np.ndarray:
    """A person ``(F, 17, 3)`` walking in a straight line with swinging legs and arms (1 Hz)."""
    time = np.arange(frames) / fps
    velocity = np.array(velocity_xy, dtype=float)
    heading = np.degrees(np.arctan2(velocity[1], velocity[0]))
    forward = np.array([np.cos(np.radians(heading)), np.sin(np.radians(heading)), 0.0])
    pose = standing_pose(heading_deg=heading)
    swing = 250.0 * np.sin(2 * np.pi * time + phase)
    offsets = np.zeros((frames, SKELETON.n_joints, 3))
    for name, sign in (("r_knee", 0.5), ("r_ankle", 1.0), ("l_knee", -0.5), ("l_ankle", -1.0)):
        offsets[:, joint(name)] = sign * swing[:, None] * forward
    for name, sign in (("r_elbow", -0.2), ("r_wrist", -0.5), ("l_elbow", 0.2), ("l_wrist", 0.5)):
        offsets[:, joint(name)] = sign * swing[:, None] * forward
    bob = 20.0 * np.abs(np.cos(2 * np.pi * time + phase))
    offsets[..., 2] += bob[:, None]
    path = np.array([start_xy[0], start_xy[1], 0.0]) + time[:, None] * np.append(velocity, 0.0)
    return pose[None] + offsets + path[:, None, :]


def walking_scene(frames: int = 400, fps: float = 50.0) -> np.ndarray:
    """Two people ``(2, F, 17, 3)`` walking past each other for ``frames`` frames."""
    first = walking_person((-2000.0, -500.0), (800.0, 100.0), frames, fps)
    second = walking_person((1500.0, 1200.0), (-500.0, -300.0), frames, fps, phase=1.0)
    return np.stack((first, second))
