"""Tests of virtual camera rigs, 2D rendering and the --cameras spec grammar."""

from __future__ import annotations

import numpy as np
import pytest
from virtual_camera_scenes import walking_scene

from posebench.cameras import Camera
from posebench.errors import CameraError, CameraSpecError, InputError, PosebenchError
from posebench.virtual_cameras import (
    DEFAULT_COEFFICIENTS,
    CameraRequest,
    handheld_camera,
    look_at,
    make_cameras,
    parse_camera_spec,
    render_keypoints,
    ring_cameras,
)

FPS = 50.0


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return walking_scene(frames=400, fps=FPS)


def centres(camera: Camera) -> np.ndarray:
    """Camera centres ``(N, 3)``: ``C = -Rᵀ t``."""
    return -np.einsum("nji,nj->ni", camera.R, camera.t)


def fraction_inside(camera: Camera, joints: np.ndarray) -> float:
    """Fraction of finite joints whose projection lies in the image ``[0, W) x [0, H)``."""
    xy = camera.project_world(joints)
    finite = np.isfinite(joints).all(-1)
    inside = (
        (xy[..., 0] >= 0) & (xy[..., 0] < camera.width) & (xy[..., 1] >= 0)
        & (xy[..., 1] < camera.height)
    )  # fmt: skip
    return float(inside[finite].mean())


def rotation_angles(R: np.ndarray) -> np.ndarray:
    """Angles (rad) of the relative rotations between consecutive matrices of ``R (N, 3, 3)``."""
    relative = np.einsum("nij,nkj->nik", R[1:], R[:-1])
    cosine = (np.trace(relative, axis1=1, axis2=2) - 1) / 2
    return np.arccos(np.clip(cosine, -1, 1))


# ------------------------------------------------------------------------------------ look_at


def test_look_at_known_pose():
    # Looking from 5 m in front (-y) horizontally: camera x = world x, y = -z, z = +y.
    R, t = look_at((0.0, -5000.0, 1000.0), (0.0, 0.0, 1000.0))
    np.testing.assert_allclose(R, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(t, [0.0, 1000.0, 5000.0], atol=1e-9)


def test_look_at_centre_target_and_no_roll():
    rng = np.random.default_rng(4)
    eye = rng.uniform(-4000, 4000, (50, 3)) + [0, 0, 2000]
    target = rng.uniform(-1000, 1000, (50, 3))
    R, t = look_at(eye, target)
    assert R.shape == (50, 3, 3) and t.shape == (50, 3)
    np.testing.assert_allclose(
        R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    # The camera centre maps to the origin of the camera frame.
    np.testing.assert_allclose(np.einsum("fij,fj->fi", R, eye) + t, 0.0, atol=1e-8)
    # The target lies on the optical axis, in front, and projects to the principal point.
    target_cam = np.einsum("fij,fj->fi", R, target) + t
    np.testing.assert_allclose(target_cam[:, :2], 0.0, atol=1e-8)
    np.testing.assert_allclose(target_cam[:, 2], np.linalg.norm(target - eye, axis=1))
    camera = Camera("c", 1000, 1000, 1145.0, 1145.0, 512.0, 515.0, R=R, t=t)
    uv = camera.project_world(target[None, :, None, :])
    np.testing.assert_allclose(uv[0, :, 0], np.tile([512.0, 515.0], (50, 1)), atol=1e-6)
    # Camera x is horizontal (no roll) and camera y points downwards.
    np.testing.assert_allclose(R[:, 0, 2], 0.0, atol=1e-12)
    assert (R[:, 1, 2] < 0).all()
    # Vectorised result equals the per-frame result.
    R3, t3 = look_at(eye[3], target[3])
    np.testing.assert_allclose(R3, R[3])
    np.testing.assert_allclose(t3, t[3])


def test_look_at_rejects_degenerate_directions():
    with pytest.raises(CameraError, match="coincide"):
        look_at((1.0, 2.0, 3.0), (1.0, 2.0, 3.0))
    with pytest.raises(CameraError, match="parallel to the up vector"):
        look_at((0.0, 0.0, 5000.0), (0.0, 0.0, 0.0))


# ------------------------------------------------------------------------------------ ring


def test_ring_cameras_static_evenly_spaced_and_see_everything(scene):
    cameras = ring_cameras(scene)
    assert [camera.camera_id for camera in cameras] == ["ring_0", "ring_1", "ring_2", "ring_3"]
    finite = scene[np.isfinite(scene).all(-1)]
    centre = np.median(finite[:, :2], axis=0)
    look_height = np.median(finite[:, 2])
    positions = np.array([centres(camera)[0] for camera in cameras])
    for camera in cameras:
        assert not camera.is_moving and camera.n_poses == 1
        assert (camera.width, camera.height, camera.fx, camera.fy) == (1000, 1000, 1145.0, 1145.0)
        assert (camera.cx, camera.cy, camera.distortion) == (500.0, 500.0, "none")
        assert fraction_inside(camera, scene) == 1.0
        # It looks at the centre of the capture volume.
        aim = camera.project_world(np.array([[[*centre, look_height]]]))
        np.testing.assert_allclose(aim[0, 0], [500.0, 500.0], atol=1e-6)
    np.testing.assert_allclose(positions[:, 2], 1600.0)
    offsets = positions[:, :2] - centre
    distance = np.linalg.norm(offsets, axis=1)
    np.testing.assert_allclose(distance, distance[0])
    azimuth = np.degrees(np.arctan2(offsets[:, 1], offsets[:, 0]))
    np.testing.assert_allclose(np.diff(azimuth) % 360.0, 90.0, atol=1e-9)
    np.testing.assert_allclose(azimuth[0], 45.0, atol=1e-9)
    # The camera stands outside every joint's horizontal reach.
    assert distance[0] > np.linalg.norm(finite[:, :2] - centre, axis=1).max()


def test_ring_cameras_height_count_distortion_and_determinism(scene):
    cameras = ring_cameras(scene, n=8, height_mm=1500.0, distortion="h36m", id_prefix="wide")
    assert [camera.camera_id for camera in cameras] == [f"wide_{k}" for k in range(8)]
    np.testing.assert_allclose([centres(camera)[0, 2] for camera in cameras], 1500.0)
    assert all(camera.coefficients == DEFAULT_COEFFICIENTS["h36m"] for camera in cameras)
    assert DEFAULT_COEFFICIENTS["h36m"] == (-0.207, 0.248, -0.003, -0.001, -0.0014)
    assert DEFAULT_COEFFICIENTS["opencv"] == (-0.1, 0.02, 0.0, 0.0, 0.0)
    assert all(fraction_inside(camera, scene) == 1.0 for camera in cameras)
    again = ring_cameras(scene, n=8, height_mm=1500.0, distortion="h36m", id_prefix="wide")
    assert all(a == b for a, b in zip(cameras, again))
    custom = ring_cameras(scene, distortion="opencv", coefficients=(-0.05, 0.0, 0.0, 0.0, 0.0))
    assert custom[0].coefficients == (-0.05, 0.0, 0.0, 0.0, 0.0)


def test_ring_distance_grows_with_the_capture_volume(scene):
    near = ring_cameras(scene)[0]
    spread = scene.copy()
    spread[..., :2] *= 2.0
    far = ring_cameras(spread)[0]
    centre_near = np.median(scene[..., :2].reshape(-1, 2), axis=0)
    centre_far = np.median(spread[..., :2].reshape(-1, 2), axis=0)
    d_near = np.linalg.norm(centres(near)[0, :2] - centre_near)
    d_far = np.linalg.norm(centres(far)[0, :2] - centre_far)
    assert d_far > 1.5 * d_near
    assert fraction_inside(far, spread) == 1.0


def test_ring_cameras_reject_bad_input(scene):
    with pytest.raises(CameraError, match="positive integer number of cameras"):
        ring_cameras(scene, n=0)
    with pytest.raises(InputError, match="no finite joint"):
        ring_cameras(np.full((1, 3, 17, 3), np.nan))
    with pytest.raises(InputError, match=r"shape \(persons, frames, joints, 3\)"):
        ring_cameras(scene[0])
    with pytest.raises(CameraError, match="unknown distortion model 'fisheye'"):
        ring_cameras(scene, distortion="fisheye")


# ------------------------------------------------------------------------------------ handheld


def test_handheld_camera_moves_smoothly_and_keeps_subjects_in_view(scene):
    camera = handheld_camera(scene, seed=7, fps=FPS)
    n_frames = scene.shape[1]
    assert camera.is_moving and camera.n_poses == n_frames
    assert (camera.width, camera.height, camera.fx, camera.camera_id) == (
        1920,
        1080,
        1500.0,
        "handheld",
    )
    in_view = fraction_inside(camera, scene)
    assert in_view >= 0.95
    centre = centres(camera)
    # Hand-held height and bounded frame-to-frame motion at 50 fps.
    assert (centre[:, 2] >= 1500.0 - 1e-9).all() and (centre[:, 2] <= 1700.0 + 1e-9).all()
    assert np.linalg.norm(np.diff(centre, axis=0), axis=1).max() < 40.0
    assert np.degrees(rotation_angles(camera.R)).max() < 1.0
    # It actually moves around the subjects.
    assert np.linalg.norm(centre[-1] - centre[0]) > 500.0


def test_handheld_camera_is_seeded(scene):
    first = handheld_camera(scene, seed=3)
    assert first == handheld_camera(scene, seed=3)
    other = handheld_camera(scene, seed=4)
    assert not np.allclose(first.R, other.R)


def test_handheld_camera_bridges_frames_without_subjects(scene):
    gappy = scene.copy()
    gappy[:, 150:200] = np.nan
    camera = handheld_camera(gappy, seed=1)
    assert np.isfinite(camera.R).all() and np.isfinite(camera.t).all()
    assert np.linalg.norm(np.diff(centres(camera), axis=0), axis=1).max() < 40.0
    assert np.degrees(rotation_angles(camera.R)).max() < 1.0
    assert fraction_inside(camera, gappy) >= 0.95


def test_handheld_camera_with_given_distance(scene):
    camera = handheld_camera(scene, seed=2, distance=6000.0, focal=1000.0)
    finite = np.isfinite(scene).all(-1)
    weights = finite.sum(axis=(0, 2))
    centroid = np.where(finite[..., None], scene, 0).sum(axis=(0, 2)) / weights[:, None]
    # The camera keeps between 1 and 1.15 times the distance from the (smoothed) centroid.
    gap = np.linalg.norm(centres(camera)[:, :2] - centroid[:, :2], axis=1)
    assert 5700.0 < gap.min() and gap.max() < 6000.0 * 1.15 + 300.0
    with pytest.raises(CameraError, match="distance must be a positive number"):
        handheld_camera(scene, distance=-1.0)


def test_handheld_camera_single_frame_and_bad_arguments(scene):
    single = handheld_camera(scene[:, :1], seed=0)
    assert single.n_poses == 1 and fraction_inside(single, scene[:, :1]) == 1.0
    with pytest.raises(CameraError, match="seed must be a non-negative integer, got None"):
        handheld_camera(scene, seed=None)
    with pytest.raises(CameraError, match="image width must be a positive whole number"):
        handheld_camera(scene, width="1920")
    with pytest.raises(CameraError, match="focal must be a positive number of pixels"):
        handheld_camera(scene, focal=0.0)
    with pytest.raises(CameraError, match="fps must be a positive number"):
        handheld_camera(scene, fps=0.0)


# ------------------------------------------------------------------------------------ rendering


def reference_pixels(X, R, t, fx, fy, cx, cy, k=(0, 0, 0), p=(0, 0)):
    """Pinhole + Human3.6M distortion (VideoPose3D's formula), written independently."""
    X_cam = np.einsum("...ij,...kj->...ki", R, X) + t[..., None, :]
    m = X_cam[..., :2] / X_cam[..., 2:]
    r2 = (m**2).sum(-1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tangential = (np.array(p) * m).sum(-1, keepdims=True)
    m = m * (radial + tangential) + np.array(p) * r2
    return m * [fx, fy] + [cx, cy]


def test_render_keypoints_matches_independent_projection(scene):
    ring = ring_cameras(scene, distortion="h36m")[1]
    xy, occluded = render_keypoints(scene, ring)
    assert xy.dtype == np.float32 and xy.shape == scene.shape[:3] + (2,)
    assert occluded.dtype == bool and occluded.shape == scene.shape[:3]
    k1, k2, k3, p1, p2 = DEFAULT_COEFFICIENTS["h36m"]
    expected = reference_pixels(
        scene, ring.R[0], ring.t[0], 1145.0, 1145.0, 500.0, 500.0, (k1, k2, k3), (p1, p2)
    )
    np.testing.assert_allclose(xy, expected, atol=2e-3)

    moving = handheld_camera(scene, seed=5)
    xy, _ = render_keypoints(scene, moving)
    expected = reference_pixels(scene, moving.R, moving.t, 1500.0, 1500.0, 960.0, 540.0)
    np.testing.assert_allclose(xy, expected, atol=2e-3)


def test_render_keypoints_missing_joints_are_nan_and_occluded(scene):
    gappy = scene[:, :20].copy()
    gappy[0, 5, 3] = np.nan
    gappy[1, 7:9] = np.nan
    xy, occluded = render_keypoints(gappy, ring_cameras(scene)[0])
    assert np.isnan(xy[0, 5, 3]).all() and occluded[0, 5, 3]
    assert np.isnan(xy[1, 7:9]).all() and occluded[1, 7:9].all()
    assert np.isfinite(xy[0, 6]).all()


# ------------------------------------------------------------------------------------ spec


def test_parse_camera_spec_defaults_and_options():
    assert parse_camera_spec("ring4") == [
        CameraRequest("ring", 4, 1145.0, 1000, 1000, "none", "ring")
    ]
    assert parse_camera_spec("ring4:focal=1145,size=1000x1000,distortion=h36m") == [
        CameraRequest("ring", 4, 1145.0, 1000, 1000, "h36m", "ring")
    ]
    assert parse_camera_spec("handheld:seed=3,focal=1500,size=1920x1080") == [
        CameraRequest("handheld", 1, 1500.0, 1920, 1080, "none", "handheld", seed=3)
    ]
    assert parse_camera_spec(
        " ring8:height=1500 , id=wide + handheld:distance=4000.5,size=1280x720"
    ) == [
        CameraRequest("ring", 8, 1145.0, 1000, 1000, "none", "wide", camera_height_mm=1500.0),
        CameraRequest("handheld", 1, 1500.0, 1280, 720, "none", "handheld", distance_mm=4000.5),
    ]


def test_make_cameras_builds_what_the_spec_asks_for(scene):
    cameras = make_cameras("ring4+handheld", scene, seed=11)
    assert [camera.camera_id for camera in cameras] == [
        "ring_0", "ring_1", "ring_2", "ring_3", "handheld",
    ]  # fmt: skip
    assert all(a == b for a, b in zip(cameras[:4], ring_cameras(scene)))
    assert cameras[4] == handheld_camera(scene, seed=11)

    distorted = make_cameras("ring4:distortion=opencv,focal=1000,size=800x600", scene)
    assert distorted == ring_cameras(
        scene, focal=1000.0, width=800, height=600, distortion="opencv"
    )
    assert distorted[0].coefficients == (-0.1, 0.02, 0.0, 0.0, 0.0)

    slower = make_cameras("handheld", scene, seed=2, fps=25.0)
    assert slower == [handheld_camera(scene, seed=2, fps=25.0)]
    assert slower[0] != handheld_camera(scene, seed=2, fps=50.0)

    explicit = make_cameras("handheld:seed=3,id=cam_a+handheld:seed=4,id=cam_b", scene, seed=99)
    assert explicit[0] == handheld_camera(scene, seed=3, camera_id="cam_a")
    assert explicit[1] == handheld_camera(scene, seed=4, camera_id="cam_b")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty camera spec"),
        ("ring", "'ring' needs a camera count, e.g. ring4 (in part 'ring')"),
        ("ring0", "a ring has 1 to 64 cameras, got 0"),
        ("ring65", "a ring has 1 to 64 cameras, got 65"),
        ("cube3", "unknown camera kind 'cube3'; use ringN or handheld"),
        ("ring4:", "':' must be followed by options"),
        ("ring4:focal", "option 'focal' is not KEY=VALUE (in part 'ring4:focal')"),
        ("ring4:focal=-1", "focal must be a positive number of pixels, got '-1'"),
        ("ring4:focal=nan", "focal must be a positive number of pixels, got 'nan'"),
        ("ring4:size=100", "size must be WIDTHxHEIGHT in positive whole pixels, got '100'"),
        ("ring4:size=0x10", "size must be WIDTHxHEIGHT"),
        ("ring4:distortion=fisheye", "distortion must be one of none, opencv, h36m, got 'fisheye'"),
        ("ring4:seed=3", "unknown option 'seed' for ring; its options are focal, size"),
        ("handheld:distortion=h36m", "unknown option 'distortion' for handheld"),
        ("ring4:focal=1,focal=2", "option 'focal' given twice"),
        ("ring4++handheld", "empty part between '+' signs"),
        ("handheld:seed=-1", "seed must be a non-negative integer, got '-1'"),
        ("handheld:id=a b", "id must use letters, digits"),
        (
            "ring4+handheld:distance=0",
            "distance must be a positive number of mm, got '0' (in part 'handheld:distance=0')",
        ),
    ],
)
def test_parse_camera_spec_rejects_invalid_specs(spec, message):
    with pytest.raises(CameraSpecError) as caught:
        parse_camera_spec(spec)
    text = str(caught.value)
    assert message in text
    assert "camera spec grammar:" in text and 'SPEC    := REQUEST ( "+" REQUEST )*' in text
    assert isinstance(caught.value, PosebenchError)


def test_make_cameras_rejects_repeated_ids(scene):
    with pytest.raises(CameraSpecError, match=r"camera ids \['handheld'\] occur more than once"):
        make_cameras("handheld+handheld:seed=2", scene)
