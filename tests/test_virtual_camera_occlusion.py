"""Tests of the capsule occlusion model of posebench.virtual_cameras."""

from __future__ import annotations

import numpy as np
import pytest
from virtual_camera_scenes import SKELETON, joint, standing_pose

from posebench.cameras import Camera
from posebench.errors import CameraError, InputError, UnknownNameError
from posebench.virtual_cameras import (
    H36M17_CAPSULES,
    capsule_body,
    look_at,
    occlusion_flags,
    render_keypoints,
)
from posebench.virtual_cameras_occlusion import capsule_entry, segment_distance_squared

TORSO = [joint(name) for name in ("pelvis", "spine", "thorax")]


def camera_at(eye, target, camera_id="test") -> Camera:
    """A 1920x1080 pinhole camera (focal 1000 px) at ``eye`` looking at ``target`` (mm)."""
    R, t = look_at(np.asarray(eye, float), np.asarray(target, float))
    return Camera(camera_id, 1920, 1080, 1000.0, 1000.0, 960.0, 540.0, R=R, t=t)


FRONT = camera_at((0.0, -5000.0, 1300.0), (0.0, 0.0, 1000.0))


def scene(*poses: np.ndarray) -> np.ndarray:
    """Persons ``(P, 1, 17, 3)`` of one frame from poses ``(17, 3)``."""
    return np.stack(poses)[:, None]


# ------------------------------------------------------------------------------ geometry kernels


def test_segment_distance_squared_matches_dense_search():
    rng = np.random.default_rng(0)
    p0, p1, q0, q1 = rng.normal(size=(4, 120, 3)) * 100.0
    q1[:20] = q0[:20]  # point against segment
    p1[20:40] = p0[20:40]  # segment against point
    q1[40:60] = q0[40:60] + 2.0 * (p1[40:60] - p0[40:60])  # parallel segments
    grid = np.linspace(0.0, 1.0, 201)
    on_p = p0[:, None] + grid[None, :, None] * (p1 - p0)[:, None]
    on_q = q0[:, None] + grid[None, :, None] * (q1 - q0)[:, None]
    dense = ((on_p[:, :, None] - on_q[:, None, :]) ** 2).sum(-1).min(axis=(1, 2))
    exact = segment_distance_squared(p0, p1, q0, q1)
    # The exact minimum is never above any sampled distance and close to the best sample.
    assert (exact <= dense + 1e-6).all()
    np.testing.assert_allclose(np.sqrt(exact), np.sqrt(dense), atol=2.0)
    assert np.isnan(segment_distance_squared(p0[0], p1[0] * np.nan, q0[0], q1[0]))


def test_capsule_entry_matches_ray_marching():
    rng = np.random.default_rng(1)
    start = rng.normal(size=(300, 3)) * 300 + [0, 0, 2000]
    end = start + rng.normal(size=(300, 3)) * 300
    # Rays aimed near the capsules, so that about half of them hit.
    direction = start + rng.normal(size=(300, 3)) * 150
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    end[:30] = start[:30]  # balls
    start[30:40] = direction[30:40] * 100.0  # the ray starts inside
    radius = 150.0
    entry = capsule_entry(direction, start, end, radius)
    steps = np.linspace(0.0, 5000.0, 10001)
    points = steps[None, :, None] * direction[:, None, :]
    axis = end - start
    length2 = np.maximum((axis**2).sum(-1), 1e-12)[:, None]
    along = np.clip(((points - start[:, None]) * axis[:, None]).sum(-1) / length2, 0.0, 1.0)
    gap = np.linalg.norm(points - start[:, None] - along[..., None] * axis[:, None], axis=-1)
    inside = gap <= radius
    marched = np.where(inside.any(1), steps[np.argmax(inside, axis=1)], np.inf)
    hit = np.isfinite(marched)
    assert hit.sum() > 100 and (~hit).sum() > 50
    np.testing.assert_array_equal(np.isfinite(entry), hit)
    np.testing.assert_allclose(entry[hit], marched[hit], atol=0.6)
    np.testing.assert_array_equal(entry[30:40], 0.0)


def test_capsule_table_and_radius_overrides():
    body = capsule_body()
    assert body.names == tuple(row[0] for row in H36M17_CAPSULES)
    radii = dict(zip(body.names, body.radii))
    assert radii["abdomen"] == 150.0 and radii["head"] == 100.0 and radii["r_thigh"] == 80.0
    assert radii["l_shin"] == 55.0 and radii["r_upper_arm"] == 50.0 and radii["l_forearm"] == 40.0
    # Every bone of the skeleton is covered by a capsule.
    bones = {frozenset(bone) for bone in SKELETON.bones}
    assert bones <= {frozenset(map(int, ends)) for ends in body.ends}
    assert dict(zip(body.names, capsule_body(radii={"abdomen": 120.0}).radii))["abdomen"] == 120.0
    with pytest.raises(InputError, match=r"unknown capsule names \['belly'\]"):
        capsule_body(radii={"belly": 100.0})
    with pytest.raises(InputError, match="'head' needs a positive radius"):
        capsule_body(radii={"head": 0.0})
    with pytest.raises(UnknownNameError, match="no capsule body for skeleton 'coco17'"):
        capsule_body("coco17")


def test_capsule_inset_stops_short_of_the_joint():
    pose = standing_pose()[None]
    body = capsule_body()
    starts, ends = body.axes(pose)
    chest = body.names.index("chest")
    # The chest axis stops 100 mm below the thorax, so its rounded top ends 50 mm above it.
    np.testing.assert_allclose(ends[0, chest], pose[0, joint("thorax")] - [0, 0, 100.0])
    np.testing.assert_allclose(starts[0, chest], pose[0, joint("spine")])


# ------------------------------------------------------------------------------ two-person scene


def test_person_in_front_hides_the_person_behind():
    front, behind = standing_pose(0.0, 0.0), standing_pose(0.0, 1000.0)
    flags = occlusion_flags(scene(front, behind), FRONT)
    assert flags.shape == (2, 1, 17) and flags.dtype == bool
    assert not flags[0].any()
    assert flags[1, 0, TORSO].all()
    # Same scene, the person behind moved 2 m sideways: nothing is occluded.
    aside = standing_pose(2000.0, 1000.0)
    assert not occlusion_flags(scene(front, aside), FRONT).any()


def test_moving_camera_uses_one_pose_per_frame():
    front, behind = standing_pose(0.0, 0.0), standing_pose(0.0, 1000.0)
    side = camera_at((5000.0, 500.0, 1300.0), (0.0, 500.0, 1000.0))
    moving = Camera(
        "moving", 1920, 1080, 1000.0, 1000.0, 960.0, 540.0,
        R=np.concatenate((FRONT.R, side.R)), t=np.concatenate((FRONT.t, side.t)),
    )  # fmt: skip
    joints = np.stack((np.stack((front, front)), np.stack((behind, behind))))
    flags = occlusion_flags(joints, moving)
    np.testing.assert_array_equal(flags[:, 0], occlusion_flags(joints[:, :1], FRONT)[:, 0])
    np.testing.assert_array_equal(flags[:, 1], occlusion_flags(joints[:, 1:], side)[:, 0])
    assert flags[1, 0, joint("thorax")] and not flags[1, 1, joint("thorax")]
    with pytest.raises(CameraError, match="moving with 2 poses"):
        occlusion_flags(joints[:, :1], moving)


def test_own_torso_hides_a_wrist_behind_the_back():
    pose = standing_pose()
    pose[joint("l_elbow")] = (200.0, 120.0, 1150.0)
    pose[joint("l_wrist")] = (0.0, 250.0, 1100.0)
    flags = occlusion_flags(scene(pose), FRONT)
    assert flags[0, 0, joint("l_wrist")]
    assert not flags[0, 0, joint("r_wrist")] and not flags[0, 0, TORSO].any()
    # The same hand in front of the belly is visible.
    pose[joint("l_elbow")] = (200.0, -120.0, 1150.0)
    pose[joint("l_wrist")] = (0.0, -250.0, 1100.0)
    assert not occlusion_flags(scene(pose), FRONT)[0, 0, joint("l_wrist")]


def test_joints_outside_the_image_or_behind_the_camera_are_flagged():
    visible = standing_pose(0.0, 0.0)
    far_aside = standing_pose(6000.0, 0.0)  # beyond the half field of view (4.8 m at 5 m)
    behind_camera = standing_pose(0.0, -7000.0)
    xy, flags = render_keypoints(scene(visible, far_aside, behind_camera), FRONT)
    assert not flags[0].any()
    assert flags[1].all() and (xy[1, ..., 0] > 1920).all()
    assert flags[2].all() and np.isnan(xy[2]).all()
    # One arm reaching out of the image on the left.
    reaching = standing_pose(-4600.0, 0.0)
    flags = occlusion_flags(scene(reaching), FRONT)
    assert flags[0, 0, joint("r_wrist")] and not flags[0, 0, joint("l_wrist")]


def test_missing_joints_are_flagged_and_hide_nothing():
    front, behind = standing_pose(0.0, 0.0), standing_pose(0.0, 1000.0)
    front[joint("l_elbow")] = np.nan
    joints = np.stack((np.stack((front, np.full_like(front, np.nan))), np.stack((behind, behind))))
    flags = occlusion_flags(joints, FRONT)
    assert flags[0, 0, joint("l_elbow")] and flags[0, 1].all()
    assert flags[0, 0].sum() == 1
    # Frame 1: the person in front is missing, so the person behind is fully visible.
    assert not flags[1, 1].any() and flags[1, 0, TORSO].all()


def test_occlusion_input_errors():
    with pytest.raises(InputError, match="has 16 joints per person but the skeleton has 17"):
        occlusion_flags(np.zeros((1, 2, 16, 3)) + 1000.0, FRONT)
    with pytest.raises(InputError, match="±inf"):
        occlusion_flags(np.full((1, 1, 17, 3), np.inf), FRONT)


# ------------------------------------------------------------------------------ independent check


def marched_hidden(points_cam: np.ndarray, own_margin: float, other_margin: float) -> np.ndarray:
    """The occlusion rule evaluated by marching along each sight line in 1.5 mm steps.

    The surroundings of a joint are its person's capsules ending at it and every capsule that
    contains it. A joint is hidden when a sample before the first sample inside its surroundings
    lies inside another capsule. ``own_margin`` / ``other_margin`` (mm) grow the surroundings /
    the other capsules while marching.
    """
    n_persons, n_frames, n_joints, _ = points_cam.shape
    table = H36M17_CAPSULES
    ends = np.array([(SKELETON.index(a), SKELETON.index(b)) for _, a, b, _, _ in table])
    radius = np.tile([row[3] for row in table], n_persons)
    inset = np.tile([row[4] for row in table], n_persons)[:, None]
    owner = np.repeat(np.arange(n_persons), len(table))
    hidden = np.zeros((n_persons, n_frames, n_joints), dtype=bool)

    def distances(points, start, axis):
        offset = points[:, None] - start
        along = np.clip((offset * axis).sum(-1) / (axis**2).sum(-1), 0, 1)
        return np.linalg.norm(offset - along[..., None] * axis, axis=-1)

    for frame in range(n_frames):
        start = points_cam[:, frame, ends[:, 0]].reshape(-1, 3)
        bone = points_cam[:, frame, ends[:, 1]].reshape(-1, 3) - start
        axis = bone * np.clip(1 - inset / np.linalg.norm(bone, axis=1, keepdims=True), 0, 1)
        containing = distances(points_cam[:, frame].reshape(-1, 3), start, axis) <= radius
        for person in range(n_persons):
            for j in range(n_joints):
                target = points_cam[person, frame, j]
                depth = np.linalg.norm(target)
                samples = np.arange(0.0, depth, 1.5)[:, None] * (target / depth)
                gap = distances(samples, start, axis)
                own = (owner == person) & np.tile((ends == j).any(1), n_persons)
                near = own | containing[person * n_joints + j]
                inside_near = (gap[:, near] <= radius[near] + own_margin).any(1)
                cut = np.argmax(inside_near) if inside_near.any() else len(samples)
                hidden[person, frame, j] = (gap[:cut, ~near] < radius[~near] + other_margin).any()
    return hidden


def test_occlusion_agrees_with_ray_marching_on_a_crowd():
    rng = np.random.default_rng(5)
    frames = []
    for _ in range(2):
        people = []
        for _ in range(3):
            pose = standing_pose(
                rng.uniform(-700, 700), rng.uniform(-600, 900), rng.uniform(-180, 180)
            )
            people.append(pose + rng.normal(scale=60.0, size=pose.shape))
        frames.append(people)
    joints = np.array(frames).transpose(1, 0, 2, 3)
    assert np.isfinite(FRONT.project_world(joints)).all()
    assert (np.abs(FRONT.project_world(joints) - [960, 540]) < [900, 500]).all()
    flags = occlusion_flags(joints, FRONT)
    assert flags.mean() > 0.2 and (~flags).mean() > 0.2  # a scene with plenty of both
    points_cam = FRONT.world_to_camera(joints)
    surely_hidden = marched_hidden(points_cam, own_margin=3.0, other_margin=-3.0)
    maybe_hidden = marched_hidden(points_cam, own_margin=-3.0, other_margin=3.0)
    assert (flags >= surely_hidden).all()
    assert (flags <= maybe_hidden).all()
    # The bounds are tight: most joints are surely hidden or surely visible.
    assert surely_hidden.mean() > 0.2 and (~maybe_hidden).mean() > 0.2
    assert (surely_hidden == maybe_hidden).mean() > 0.85
