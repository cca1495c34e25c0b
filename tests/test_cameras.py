"""Tests of posebench.cameras: rotations, transforms, distortion, projection, Camera."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posebench.cameras import (
    DISTORTION_MODELS,
    Camera,
    camera_to_world,
    distort,
    extrinsics_from_orientation_centre,
    image_coordinates,
    matrix_to_quaternion,
    normalize_screen_coordinates,
    project,
    quaternion_to_matrix,
    world_to_camera,
)
from posebench.errors import CameraError, PosebenchError

# Human3.6M camera 0 (54138969) intrinsics and subject S1 extrinsics, from the published tables.
H36M_CAM0 = dict(
    width=1000,
    height=1002,
    fx=1145.0494384765625,
    fy=1143.7811279296875,
    cx=512.54150390625,
    cy=515.4514770507812,
    k=(-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
    p=(-0.0009756988729350269, -0.00142447161488235),
)
S1_CAM0_ORIENTATION = (
    0.1407056450843811,
    -0.1500701755285263,
    -0.755240797996521,
    0.6223280429840088,
)
S1_CAM0_CENTRE = (1841.1070556640625, 4955.28466796875, 1563.4454345703125)

# Shared test point: m = (X/Z, Y/Z) = (0.1, -0.2), hand-worked distortion values below.
OPENCV_COEFFS = (0.1, 0.01, 0.001, 0.002, 0.001)  # k1, k2, p1, p2, k3
H36M_COEFFS = (0.1, 0.01, 0.001, 0.001, 0.002)  # k1, k2, k3, p1, p2 (same physical values)


def random_quaternions(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """VideoPose3D's quaternion rotation v + 2(w (u x v) + u x (u x v)), written independently."""
    w, u = q[..., :1], q[..., 1:]
    uv = np.cross(u, v)
    return v + 2 * (w * uv + np.cross(u, uv))


# ------------------------------------------------------------------------------------- rotations


def test_quaternion_about_z_axis_gives_planar_rotation() -> None:
    theta = 0.7
    q = np.array([np.cos(theta / 2), 0.0, 0.0, np.sin(theta / 2)])
    expected = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    np.testing.assert_allclose(quaternion_to_matrix(q), expected, atol=1e-15)


def test_quaternion_matrix_matches_quaternion_rotation() -> None:
    rng = np.random.default_rng(0)
    q = random_quaternions(rng, 50)
    v = rng.normal(size=(50, 3))
    R = quaternion_to_matrix(q)
    np.testing.assert_allclose((R @ v[..., None])[..., 0], qrot(q, v), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)


def test_quaternion_is_not_renormalised() -> None:
    # R = I + 2w[u]x + 2[u]x^2 with q = (2, 0, 0, 0): [u]x = 0, so R stays I; with q = (0, 2, 0, 0)
    # 2[u]x^2 = 2(uu^T - |u|^2 I) = diag(0, -8, -8): R = diag(1, -7, -7).
    np.testing.assert_array_equal(quaternion_to_matrix([2.0, 0, 0, 0]), np.eye(3))
    np.testing.assert_array_equal(quaternion_to_matrix([0.0, 2, 0, 0]), np.diag([1.0, -7, -7]))


def test_matrix_to_quaternion_round_trip_with_non_negative_w() -> None:
    rng = np.random.default_rng(1)
    q = random_quaternions(rng, 200)
    # Half-turns about each axis and near-half-turns exercise every branch of the conversion.
    half_turns = np.array(
        [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1e-9, 0.6, 0.8, 0], [0, 0, 0.6, -0.8]]
    )
    half_turns /= np.linalg.norm(half_turns, axis=-1, keepdims=True)
    q = np.concatenate([q, half_turns, [[1.0, 0, 0, 0]]])
    canonical = np.where(q[:, :1] < 0, -q, q)
    recovered = matrix_to_quaternion(quaternion_to_matrix(q))
    assert (recovered[:, 0] >= 0).all()
    # At w = 0 exactly, q and -q are both valid; compare rotations there.
    np.testing.assert_allclose(
        quaternion_to_matrix(recovered), quaternion_to_matrix(q), atol=1e-12
    )
    strict = np.abs(canonical[:, 0]) > 1e-6
    np.testing.assert_allclose(recovered[strict], canonical[strict], atol=1e-12)


def test_rotation_shape_errors() -> None:
    with pytest.raises(CameraError, match=r"quaternion must have shape \(\.\.\., 4\)"):
        quaternion_to_matrix(np.zeros(3))
    with pytest.raises(CameraError, match=r"\(\.\.\., 3, 3\)"):
        matrix_to_quaternion(np.eye(4))


# ------------------------------------------------------------------------------- world <-> camera


def test_extrinsics_map_camera_centre_to_origin_and_match_conjugate_rotation() -> None:
    rng = np.random.default_rng(2)
    q = random_quaternions(rng, 10)
    centre = rng.normal(scale=3000.0, size=(10, 3))
    R, t = extrinsics_from_orientation_centre(q, centre)
    np.testing.assert_allclose(
        world_to_camera(centre[:, None, :], R, t), np.zeros((10, 1, 3)), atol=1e-9
    )
    # VideoPose3D: X_cam = qrot(conjugate(q), X - centre).
    X = rng.normal(scale=1000.0, size=(10, 3))
    conjugate = q * np.array([1, -1, -1, -1])
    expected = qrot(conjugate, X - centre)
    np.testing.assert_allclose(world_to_camera(X[:, None, :], R, t)[:, 0], expected, atol=1e-9)


def test_h36m_s1_camera0_sees_the_capture_area_upright() -> None:
    R, t = extrinsics_from_orientation_centre(
        np.array(S1_CAM0_ORIENTATION), np.array(S1_CAM0_CENTRE)
    )
    # A standing subject at the centre of the capture area: pelvis height, head and feet (mm).
    world = np.array([[0.0, 0.0, 900.0], [0.0, 0.0, 1700.0], [0.0, 0.0, 0.0]])
    cam = world_to_camera(world, R, t)
    assert (cam[:, 2] > 3000).all() and (cam[:, 2] < 8000).all()
    c = H36M_CAM0
    uv = project(cam, c["fx"], c["fy"], c["cx"], c["cy"], "h36m", c["k"] + c["p"])
    assert ((uv[:, 0] > 0) & (uv[:, 0] < c["width"])).all()
    assert ((uv[:, 1] > 0) & (uv[:, 1] < c["height"])).all()
    # World z points up and image v points down: the head is above the pelvis above the feet.
    assert uv[1, 1] < uv[0, 1] < uv[2, 1]


def test_world_camera_round_trip_static_and_moving() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(scale=1000.0, size=(2, 6, 17, 3))  # persons, frames, joints, xyz
    R_all = quaternion_to_matrix(random_quaternions(rng, 6))
    t_all = rng.normal(scale=1000.0, size=(6, 3))
    for R, t in ((R_all[0], t_all[0]), (R_all[:1], t_all[:1]), (R_all, t_all)):
        cam = world_to_camera(X, R, t)
        np.testing.assert_allclose(camera_to_world(cam, R, t), X, atol=1e-9)
    moving = world_to_camera(X, R_all, t_all)
    for f in range(6):
        np.testing.assert_allclose(
            moving[:, f], np.einsum("ij,pkj->pki", R_all[f], X[:, f]) + t_all[f], atol=1e-9
        )


def test_world_to_camera_rejects_pose_count_that_does_not_fit_frames() -> None:
    R = np.repeat(np.eye(3)[None], 4, axis=0)
    with pytest.raises(CameraError, match=r"does not fit points of shape \(2, 5, 17, 3\)"):
        world_to_camera(np.zeros((2, 5, 17, 3)), R, np.zeros((4, 3)))
    with pytest.raises(CameraError, match=r"points must have shape \(\.\.\., 3\)"):
        world_to_camera(np.zeros((5, 2)), np.eye(3), np.zeros(3))


# ----------------------------------------------------------------------- distortion and projection


def test_distortion_models_table() -> None:
    assert DISTORTION_MODELS == {
        "none": (),
        "opencv": ("k1", "k2", "p1", "p2", "k3"),
        "h36m": ("k1", "k2", "k3", "p1", "p2"),
    }


def test_opencv_distortion_hand_computed() -> None:
    # x = 0.1, y = -0.2: r2 = 0.05, r4 = 0.0025, r6 = 0.000125
    # radial = 1 + 0.1*0.05 + 0.01*0.0025 + 0.001*0.000125 = 1.005025125
    # x' = 0.1*radial + 2*0.001*0.1*(-0.2) + 0.002*(0.05 + 2*0.01)
    #    = 0.1005025125 - 0.00004 + 0.00014 = 0.1006025125
    # y' = -0.2*radial + 0.001*(0.05 + 2*0.04) + 2*0.002*0.1*(-0.2)
    #    = -0.201005025 + 0.00013 - 0.00008 = -0.200955025
    out = distort(np.array([0.1, -0.2]), "opencv", OPENCV_COEFFS)
    np.testing.assert_allclose(out, [0.1006025125, -0.200955025], rtol=0, atol=1e-15)


def test_h36m_distortion_hand_computed() -> None:
    # Same point and physical coefficients: radial = 1.005025125 (as above)
    # tan = p1*x + p2*y = 0.001*0.1 + 0.002*(-0.2) = -0.0003
    # x' = 0.1*(radial + tan) + p1*r2 = 0.1004725125 + 0.00005 = 0.1005225125
    # y' = -0.2*(radial + tan) + p2*r2 = -0.200945025 + 0.0001 = -0.200845025
    out = distort(np.array([0.1, -0.2]), "h36m", H36M_COEFFS)
    np.testing.assert_allclose(out, [0.1005225125, -0.200845025], rtol=0, atol=1e-15)


def test_opencv_and_h36m_agree_without_tangential_terms_only() -> None:
    rng = np.random.default_rng(4)
    m = rng.uniform(-0.5, 0.5, size=(100, 2))
    k1, k2, k3 = -0.2, 0.25, -0.003
    radial_only_cv = distort(m, "opencv", (k1, k2, 0.0, 0.0, k3))
    radial_only_h36m = distort(m, "h36m", (k1, k2, k3, 0.0, 0.0))
    np.testing.assert_allclose(radial_only_cv, radial_only_h36m, rtol=0, atol=1e-15)
    with_tangential_cv = distort(m, "opencv", (k1, k2, 0.01, 0.02, k3))
    with_tangential_h36m = distort(m, "h36m", (k1, k2, k3, 0.01, 0.02))
    assert np.abs(with_tangential_cv - with_tangential_h36m).min() > 0
    assert np.abs(with_tangential_cv - with_tangential_h36m).max() > 1e-3


def test_opencv_distortion_matches_independent_formula() -> None:
    rng = np.random.default_rng(5)
    m = rng.uniform(-0.8, 0.8, size=(64, 2))
    k1, k2, p1, p2, k3 = -0.3, 0.1, 0.004, -0.002, 0.02
    x, y = m[:, 0], m[:, 1]
    r2 = x**2 + y**2
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    expected = np.stack(
        [
            x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x**2),
            y * radial + p1 * (r2 + 2 * y**2) + 2 * p2 * x * y,
        ],
        axis=-1,
    )
    np.testing.assert_allclose(distort(m, "opencv", (k1, k2, p1, p2, k3)), expected, atol=1e-15)


def test_distortion_errors_name_model_and_coefficients() -> None:
    with pytest.raises(CameraError, match=r"unknown distortion model 'fisheye'.*opencv \(k1, k2"):
        distort(np.zeros(2), "fisheye", ())
    with pytest.raises(
        CameraError, match=r"'h36m' takes 5 coefficients \(k1, k2, k3, p1, p2\), got 4"
    ):
        distort(np.zeros(2), "h36m", (0.1, 0.2, 0.3, 0.4))
    with pytest.raises(ValueError, match=r"'none' takes 0 coefficients"):
        distort(np.zeros(2), "none", (0.1,))


def test_distortion_clip_is_opt_in() -> None:
    m = np.array([2.0, -0.5])
    np.testing.assert_array_equal(distort(m, "none", ()), m)
    np.testing.assert_array_equal(distort(m, "none", (), clip=True), [1.0, -0.5])


def test_project_hand_computed_pixels() -> None:
    X = np.array([100.0, -200.0, 1000.0])  # m = (0.1, -0.2)
    fx, fy, cx, cy = 1000.0, 1100.0, 500.0, 400.0
    # none: u = 1000*0.1 + 500 = 600, v = 1100*(-0.2) + 400 = 180
    np.testing.assert_allclose(project(X, fx, fy, cx, cy), [600.0, 180.0], atol=1e-12)
    # opencv: u = 1000*0.1006025125 + 500, v = 1100*(-0.200955025) + 400
    np.testing.assert_allclose(
        project(X, fx, fy, cx, cy, "opencv", OPENCV_COEFFS),
        [600.6025125, 178.9494725],
        atol=1e-10,
    )
    # h36m: u = 1000*0.1005225125 + 500, v = 1100*(-0.200845025) + 400
    np.testing.assert_allclose(
        project(X, fx, fy, cx, cy, "h36m", H36M_COEFFS), [600.5225125, 179.0704725], atol=1e-10
    )


def test_points_behind_camera_project_to_nan() -> None:
    X = np.array([[1.0, 2.0, 10.0], [1.0, 2.0, 0.0], [1.0, 2.0, -5.0], [np.nan, 0.0, 10.0]])
    with np.errstate(all="raise"):
        uv = project(X, 1000.0, 1000.0, 500.0, 500.0, "opencv", OPENCV_COEFFS)
    assert np.isfinite(uv[0]).all()
    assert np.isnan(uv[1:]).all()


def test_project_matches_videopose3d_normalised_pipeline() -> None:
    """Pixel projection = image_coordinates(VP3D project_to_2d with normalised intrinsics)."""
    rng = np.random.default_rng(6)
    c = H36M_CAM0
    w, h = c["width"], c["height"]
    X = np.column_stack(
        [rng.uniform(-1500, 1500, 40), rng.uniform(-1000, 1000, 40), rng.uniform(3000, 6000, 40)]
    )
    f_norm = np.array([c["fx"], c["fy"]]) / w * 2
    c_norm = np.array([c["cx"], c["cy"]]) / w * 2 - np.array([1, h / w])
    k, p = np.array(c["k"]), np.array(c["p"])
    m = np.clip(X[:, :2] / X[:, 2:], -1, 1)
    r2 = np.sum(m**2, axis=1, keepdims=True)
    radial = 1 + np.sum(k * np.concatenate([r2, r2**2, r2**3], axis=1), axis=1, keepdims=True)
    tan = np.sum(p * m, axis=1, keepdims=True)
    vp3d = f_norm * (m * (radial + tan) + p * r2) + c_norm
    ours = project(X, c["fx"], c["fy"], c["cx"], c["cy"], "h36m", c["k"] + c["p"], clip=True)
    np.testing.assert_allclose(ours, (vp3d + np.array([1, h / w])) * w / 2, atol=1e-9)


def test_normalize_and_image_coordinates_are_inverse_with_aspect_preserved() -> None:
    corners = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]])
    normalised = normalize_screen_coordinates(corners, 1000, 1002)
    np.testing.assert_allclose(normalised, [[-1, -1.002], [1, 1.002], [0, 0]], atol=1e-15)
    rng = np.random.default_rng(7)
    pixels = rng.uniform(0, 1000, size=(3, 11, 2))
    back = image_coordinates(normalize_screen_coordinates(pixels, 1000, 1002), 1000, 1002)
    np.testing.assert_allclose(back, pixels, rtol=0, atol=1e-12)
    with pytest.raises(CameraError, match=r"\(\.\.\., 2\)"):
        normalize_screen_coordinates(np.zeros((4, 3)), 1000, 1000)


# --------------------------------------------------------------------------- numpy / torch


def test_torch_and_numpy_agree_in_float64() -> None:
    rng = np.random.default_rng(8)
    q = random_quaternions(rng, 5)
    centre = rng.normal(scale=2000.0, size=(5, 3))
    X = rng.normal(scale=500.0, size=(3, 5, 17, 3)) + np.array([0, 0, 5000.0])
    R, t = extrinsics_from_orientation_centre(q, centre)
    Rt, tt = extrinsics_from_orientation_centre(torch.from_numpy(q), torch.from_numpy(centre))
    assert isinstance(Rt, torch.Tensor) and Rt.dtype == torch.float64
    np.testing.assert_allclose(Rt.numpy(), R, atol=1e-12)
    np.testing.assert_allclose(matrix_to_quaternion(Rt).numpy(), matrix_to_quaternion(R))
    cam = world_to_camera(X, R, t)
    cam_t = world_to_camera(torch.from_numpy(X), Rt, tt)
    np.testing.assert_allclose(cam_t.numpy(), cam, atol=1e-9)
    np.testing.assert_allclose(camera_to_world(cam_t, Rt, tt).numpy(), X, atol=1e-9)
    c = H36M_CAM0
    args = (c["fx"], c["fy"], c["cx"], c["cy"])
    for model, coeffs in (("opencv", OPENCV_COEFFS), ("h36m", H36M_COEFFS)):
        uv = project(cam, *args, model, coeffs, clip=True)
        np.testing.assert_allclose(project(cam_t, *args, model, coeffs, True).numpy(), uv)
    screen = normalize_screen_coordinates(uv, 1000, 1002)
    np.testing.assert_allclose(
        normalize_screen_coordinates(torch.from_numpy(uv), 1000, 1002).numpy(), screen
    )
    np.testing.assert_allclose(image_coordinates(torch.from_numpy(screen), 1000, 1002), uv)


def test_float32_is_preserved_for_numpy_and_torch() -> None:
    X = np.array([[[100.0, -50.0, 3000.0]]], dtype=np.float32)
    R = np.eye(3)  # float64 parameters do not promote float32 points
    for points in (X, torch.from_numpy(X)):
        cam = world_to_camera(points, R, np.zeros(3))
        assert cam.dtype == points.dtype
        assert camera_to_world(cam, R, np.zeros(3)).dtype == points.dtype
        uv = project(cam, 1000.0, 1000.0, 500.0, 500.0, "h36m", H36M_COEFFS)
        assert uv.dtype == points.dtype
        assert normalize_screen_coordinates(uv, 1000, 1000).dtype == points.dtype
    q32 = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float32)
    assert quaternion_to_matrix(q32).dtype == torch.float32


# ------------------------------------------------------------------------------------ Camera


def make_camera(**overrides: object) -> Camera:
    R, t = extrinsics_from_orientation_centre(
        np.array(S1_CAM0_ORIENTATION), np.array(S1_CAM0_CENTRE)
    )
    c = H36M_CAM0
    fields = dict(
        camera_id="54138969",
        width=c["width"],
        height=c["height"],
        fx=c["fx"],
        fy=c["fy"],
        cx=c["cx"],
        cy=c["cy"],
        distortion="h36m",
        coefficients=c["k"] + c["p"],
        R=R,
        t=t,
    )
    fields.update(overrides)
    return Camera(**fields)


def test_static_camera_stores_one_pose_and_intrinsic_matrix() -> None:
    camera = make_camera()
    assert camera.R.shape == (1, 3, 3) and camera.t.shape == (1, 3)
    assert camera.R.dtype == np.float64 and not camera.R.flags.writeable
    assert camera.n_poses == 1 and not camera.is_moving
    np.testing.assert_array_equal(
        camera.K,
        [[camera.fx, 0, camera.cx], [0, camera.fy, camera.cy], [0, 0, 1]],
    )
    default = Camera("c", 640, 480, 500.0, 500.0, 320.0, 240.0)
    np.testing.assert_array_equal(default.R, np.eye(3)[None])
    np.testing.assert_array_equal(default.t, np.zeros((1, 3)))


def test_camera_methods_compose_the_pure_functions() -> None:
    camera = make_camera()
    rng = np.random.default_rng(9)
    X = rng.normal(scale=300.0, size=(2, 4, 17, 3)) + np.array([0, 0, 900.0])
    cam = camera.world_to_camera(X)
    np.testing.assert_allclose(cam, world_to_camera(X, camera.R[0], camera.t[0]))
    assert cam.shape == X.shape
    # The published quaternion has float32 precision, so R is orthonormal to ~1e-8 only.
    np.testing.assert_allclose(camera.camera_to_world(cam), X, atol=1e-4)
    expected = project(
        cam, camera.fx, camera.fy, camera.cx, camera.cy, "h36m", camera.coefficients
    )
    np.testing.assert_allclose(camera.project_world(X), expected)
    np.testing.assert_allclose(camera.project(cam), expected)
    single = camera.project_world(X[0, 0])
    assert single.shape == (17, 2)
    torch_uv = camera.project_world(torch.from_numpy(X).float())
    assert torch_uv.dtype == torch.float32
    np.testing.assert_allclose(torch_uv.numpy(), expected, atol=1e-2)


def test_moving_camera_uses_one_pose_per_frame() -> None:
    rng = np.random.default_rng(10)
    R = quaternion_to_matrix(random_quaternions(rng, 5))
    t = rng.normal(scale=1000.0, size=(5, 3))
    camera = make_camera(camera_id="phone-1", R=R, t=t)
    assert camera.is_moving and camera.n_poses == 5
    X = rng.normal(scale=1000.0, size=(2, 5, 25, 3))
    np.testing.assert_allclose(camera.world_to_camera(X), world_to_camera(X, R, t))
    with pytest.raises(CameraError, match=r"'phone-1' is moving with 5 poses.*have 4 frames"):
        camera.world_to_camera(X[:, :4])
    with pytest.raises(CameraError, match=r"'phone-1' is moving with 5 poses.*no frame axis"):
        camera.project_world(X[0, 0])


def test_camera_equality_is_exact_and_nan_aware() -> None:
    R = np.repeat(np.eye(3)[None], 3, axis=0)
    R[1] = np.nan  # unknown pose for frame 1
    t = np.zeros((3, 3))
    t[1] = np.nan
    a = make_camera(R=R, t=t)
    b = make_camera(R=R.copy(), t=t.copy())
    assert a == b
    assert a != make_camera(R=R, t=t, cx=a.cx + 1e-9)
    assert a != make_camera(R=R, t=t, camera_id="other")
    assert a != make_camera(R=R, t=t, coefficients=(0.0,) * 5)
    moved = t.copy()
    moved[2, 0] = 1e-6
    assert a != make_camera(R=R, t=moved)
    assert np.isnan(a.world_to_camera(np.ones((3, 17, 3)))[1]).all()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"width": 0}, r"width must be a positive integer"),
        ({"height": 480.5}, r"height must be a positive integer"),
        ({"fx": -1.0}, r"fx must be > 0"),
        ({"cy": float("nan")}, r"cy must be finite"),
        ({"distortion": "kannala"}, r"unknown distortion model 'kannala'"),
        ({"coefficients": (0.1, 0.2)}, r"'h36m' takes 5 coefficients"),
        ({"R": np.diag([1.0, 1.0, -1.0])}, r"R\[0\] is not a rotation matrix"),
        ({"R": 2 * np.eye(3)}, r"R\[0\] is not a rotation matrix"),
        ({"t": np.zeros((2, 3))}, r"t must have shape \(1, 3\)"),
        ({"R": np.zeros((2, 2))}, r"R must have shape \(3, 3\) or \(N, 3, 3\)"),
        ({"t": np.array([0.0, np.nan, 0.0])}, r"pose 0 mixes finite and non-finite"),
    ],
)
def test_invalid_camera_parameters_raise_clear_errors(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(CameraError, match=message) as info:
        make_camera(**overrides)
    assert "camera '54138969'" in str(info.value)
    assert isinstance(info.value, (PosebenchError, ValueError))
