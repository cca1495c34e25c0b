from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from posebench import metrics as M
from posebench.errors import InputError


def _poses(n_frames: int = 40, n_joints: int = 17, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(scale=300.0, size=(n_frames, n_joints, 3))


def _umeyama_loop(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Independent per-frame similarity alignment: scipy's proper-rotation fit, then the scale."""
    out = np.empty_like(pred)
    for f in range(len(pred)):
        mu_p, mu_g = pred[f].mean(0), gt[f].mean(0)
        y, x = pred[f] - mu_p, gt[f] - mu_g
        rotation, _ = Rotation.align_vectors(x, y)
        ry = rotation.apply(y)
        scale = (ry * x).sum() / (y * y).sum()
        out[f] = scale * ry + mu_g
    return out


def test_similarity_copies_score_zero():
    gt = _poses()
    rot = Rotation.random(len(gt), random_state=1).as_matrix()
    scale = np.linspace(0.5, 3.0, len(gt))[:, None, None]
    shift = np.random.default_rng(2).normal(scale=1000.0, size=(len(gt), 1, 3))
    pred = scale * np.einsum("fij,fkj->fki", rot, gt) + shift
    assert M.mpjpe(pred, gt) > 100.0
    assert M.p_mpjpe(pred, gt) < 1e-6 * np.linalg.norm(gt, axis=-1).mean()
    np.testing.assert_allclose(M.procrustes_align(pred, gt), gt, atol=1e-6)


def test_p_mpjpe_matches_independent_umeyama_on_noisy_poses():
    gt = _poses()
    rng = np.random.default_rng(3)
    rot = Rotation.random(len(gt), random_state=4).as_matrix()
    pred = 1.3 * np.einsum("fij,fkj->fki", rot, gt) + rng.normal(scale=40.0, size=gt.shape)
    expected = _umeyama_loop(pred, gt)
    np.testing.assert_allclose(M.procrustes_align(pred, gt), expected, atol=1e-8)
    per_frame = np.linalg.norm(expected - gt, axis=-1).mean(-1)
    np.testing.assert_allclose(M.p_mpjpe(pred, gt, reduction="none"), per_frame, rtol=1e-10)
    assert M.p_mpjpe(pred, gt) == pytest.approx(per_frame.mean(), rel=1e-10)


def test_mirrored_prediction_keeps_an_error():
    gt = _poses()
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    score = M.p_mpjpe(mirrored, gt)
    expected = np.linalg.norm(_umeyama_loop(mirrored, gt) - gt, axis=-1).mean()
    assert score > 50.0
    assert score == pytest.approx(expected, rel=1e-9)
    # With reflections allowed the fit would be perfect: the mirror is an orthogonal map.
    y = mirrored - mirrored.mean(1, keepdims=True)
    x = gt - gt.mean(1, keepdims=True)
    u, _, vh = np.linalg.svd(np.einsum("fji,fjk->fik", y, x))
    reflected_fit = np.einsum("fji,fik->fjk", y, u @ vh) + gt.mean(1, keepdims=True)
    assert np.abs(reflected_fit - gt).max() < 1e-8


def test_n_mpjpe_known_answers():
    gt = np.array([[[100.0, 0.0, 0.0], [0.0, 100.0, 0.0]]])
    pred = np.array([[[100.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    # s = <p,g> / |p|^2 = 10000 / 10000 = 1: errors 0 and 100.
    assert M.n_mpjpe(pred, gt) == pytest.approx(50.0)
    poses = _poses()
    assert M.n_mpjpe(2.5 * poses, poses) == pytest.approx(0.0, abs=1e-9)
    assert M.n_mpjpe(-poses, poses) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(M.scale_align(2.0 * poses, poses), poses, atol=1e-9)
    # A translated copy is not fixed by scale about the origin.
    assert M.n_mpjpe(poses + 500.0, poses) > 100.0


def test_degenerate_poses_stay_finite():
    gt = _poses(n_frames=3)
    collapsed = np.full_like(gt, 7.0)
    to_centroid = np.linalg.norm(gt - gt.mean(1, keepdims=True), axis=-1).mean()
    for backend in (np.asarray, torch.as_tensor):
        assert M.p_mpjpe(backend(collapsed), backend(gt)) == pytest.approx(to_centroid, rel=1e-12)
        assert M.p_mpjpe(backend(gt), backend(collapsed)) == pytest.approx(0.0, abs=1e-12)
        assert M.n_mpjpe(backend(np.zeros_like(gt)), backend(gt)) == pytest.approx(
            np.linalg.norm(gt, axis=-1).mean(), rel=1e-12
        )


def test_float32_and_float64_agree():
    gt = _poses()
    pred = gt + np.random.default_rng(5).normal(scale=20.0, size=gt.shape)
    for metric in (M.mpjpe, M.p_mpjpe, M.n_mpjpe):
        assert metric(pred.astype(np.float32), gt.astype(np.float32)) == pytest.approx(
            metric(pred, gt), rel=1e-5
        )
    assert M.procrustes_align(pred.astype(np.float32), gt).dtype == np.float32
    assert M.procrustes_align(torch.tensor(pred, dtype=torch.float32), gt).dtype == torch.float32


def test_numpy_and_torch_agree_on_every_metric():
    gt = _poses(n_frames=12)
    pred = gt + np.random.default_rng(6).normal(scale=60.0, size=gt.shape)
    pt, gt_t = torch.tensor(pred), torch.tensor(gt)
    for metric in (M.mpjpe, M.p_mpjpe, M.n_mpjpe, M.pck, M.auc, M.mpjve, M.accel_error):
        assert metric(pt, gt_t) == pytest.approx(metric(pred, gt), rel=1e-12)
        per_frame = metric(pt, gt_t, reduction="none")
        assert isinstance(per_frame, torch.Tensor)
        np.testing.assert_allclose(per_frame.numpy(), metric(pred, gt, reduction="none"), rtol=1e-12)


def test_mpjpe_known_value_and_per_frame_shape():
    gt = np.zeros((2, 5, 4, 3))
    pred = gt.copy()
    pred[..., 0] = 3.0
    pred[..., 1] = 4.0
    assert M.mpjpe(pred, gt) == pytest.approx(5.0)
    assert M.mpjpe(pred, gt, reduction="none").shape == (2, 5)
    assert M.mpjpe(pred[0, 0], gt[0, 0], reduction="none").shape == ()


def test_pck_threshold_is_strict():
    gt = np.round(_poses(n_frames=4))  # integer mm: gt + 150 - gt is exactly 150
    at = gt + np.array([150.0, 0.0, 0.0])
    below = gt + np.array([149.999, 0.0, 0.0])
    assert M.pck(at, gt) == 0.0
    assert M.pck(below, gt) == 1.0
    mixed = gt.copy()
    mixed[:, :5] += np.array([0.0, 0.0, 200.0])
    assert M.pck(mixed, gt) == pytest.approx(12 / 17)
    assert M.pck(at, gt, threshold=150.5) == 1.0


def test_auc_known_values():
    gt = _poses(n_frames=4)
    assert M.auc(gt, gt) == pytest.approx(30 / 31)
    # A 7.5 mm error is below 29 of the 31 thresholds (10, 15, ..., 150).
    assert M.auc(gt + np.array([0.0, 7.5, 0.0]), gt) == pytest.approx(29 / 31)
    assert len(M.AUC_THRESHOLDS_MM) == 31 and M.AUC_THRESHOLDS_MM[-1] == 150.0


def test_mpjve_constant_velocity_shift():
    gt = _poses(n_frames=30)
    velocity = np.array([3.0, -4.0, 12.0])
    pred = gt + np.arange(30)[:, None, None] * velocity
    assert M.mpjve(pred, gt) == pytest.approx(13.0)
    assert M.mpjve(pred, gt, reduction="none").shape == (29,)
    assert M.mpjve(gt + 100.0, gt) == pytest.approx(0.0, abs=1e-9)


def test_accel_error_constant_acceleration():
    gt = _poses(n_frames=30)
    t = np.arange(30)[:, None, None]
    accel = np.array([6.0, 0.0, 8.0])
    pred = gt + 0.5 * accel * t**2 + 5.0 * t
    assert M.accel_error(pred, gt) == pytest.approx(10.0)
    assert M.accel_error(pred, gt, reduction="none").shape == (28,)


def test_joint_subset():
    gt = _poses()
    pred = gt + np.random.default_rng(7).normal(scale=30.0, size=gt.shape)
    subset = [0, 3, 5, 16]
    for metric in (M.mpjpe, M.p_mpjpe, M.n_mpjpe, M.pck):
        assert metric(pred, gt, joints=subset) == pytest.approx(metric(pred[:, subset], gt[:, subset]))
    with pytest.raises(InputError, match="joints must be"):
        M.mpjpe(pred, gt, joints=[17])


def test_nan_ground_truth_joints_are_excluded():
    gt = _poses(n_frames=6)
    pred = gt + np.random.default_rng(8).normal(scale=30.0, size=gt.shape)
    holed = gt.copy()
    holed[0, 2, 1] = np.nan
    holed[3, 5:9] = np.nan
    keep = np.isfinite(holed).all(-1)
    errors = np.linalg.norm(pred - gt, axis=-1)
    assert M.mpjpe(pred, holed) == pytest.approx(errors[keep].mean())
    assert M.mpjpe(pred, holed, reduction="none")[3] == pytest.approx(errors[3][keep[3]].mean())
    expected_p = np.linalg.norm(_umeyama_loop(pred[3:4, keep[3]], gt[3:4, keep[3]]) - gt[3, keep[3]], axis=-1)
    assert M.p_mpjpe(pred, holed, reduction="none")[3] == pytest.approx(expected_p.mean(), rel=1e-9)
    all_missing = np.full_like(gt, np.nan)
    assert np.isnan(M.mpjpe(pred, all_missing))
    assert np.isnan(M.mpjpe(pred, all_missing, reduction="none")).all()


def test_nan_prediction_poisons_the_result():
    gt = _poses(n_frames=6)
    pred = gt.copy()
    pred[2, 4, 0] = np.nan
    for metric in (M.mpjpe, M.p_mpjpe, M.n_mpjpe, M.pck, M.auc):
        assert np.isnan(metric(pred, gt))
        per_frame = metric(pred, gt, reduction="none")
        assert np.isnan(per_frame[2]) and np.isfinite(np.delete(per_frame, 2)).all()
    assert np.isnan(M.procrustes_align(pred, gt)[2]).all()
    assert np.isnan(M.mpjve(pred, gt))


@pytest.mark.parametrize(
    "make, function",
    [
        (M.MPJPE, M.mpjpe),
        (M.PMPJPE, M.p_mpjpe),
        (M.NMPJPE, M.n_mpjpe),
        (lambda: M.PCK(threshold=40.0), lambda p, g: M.pck(p, g, threshold=40.0)),
        (M.AUC, M.auc),
        (lambda: M.MPJPE(joints=[1, 2, 3]), lambda p, g: M.mpjpe(p, g, joints=[1, 2, 3])),
    ],
)
def test_chunked_accumulation_equals_one_call(make, function):
    gt = _poses(n_frames=101)
    gt[10, 3] = np.nan
    pred = gt + np.random.default_rng(9).normal(scale=35.0, size=gt.shape)
    pred[10, 3] = 0.0
    accumulator = make()
    for chunk in np.array_split(np.arange(101), [7, 30, 31, 80]):
        accumulator.update(pred[chunk], gt[chunk])
    assert accumulator.compute() == pytest.approx(function(pred, gt), rel=1e-12)
    accumulator.reset()
    accumulator.update(torch.tensor(pred), torch.tensor(gt))
    assert accumulator.compute() == pytest.approx(function(pred, gt), rel=1e-12)


def test_accumulator_frame_weights():
    gt = _poses(n_frames=20)
    pred = gt + np.random.default_rng(10).normal(scale=35.0, size=gt.shape)
    pred[4, 0, 0] = np.nan
    weight = np.ones(20)
    weight[4] = 0.0
    weight[7] = 3.0
    accumulator = M.MPJPE()
    accumulator.update(pred, gt, weight=weight)
    per_frame = np.linalg.norm(pred - gt, axis=-1).mean(-1)
    keep = weight > 0
    expected = (per_frame[keep] * weight[keep]).sum() / weight[keep].sum()
    assert accumulator.compute() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(InputError, match="one weight per frame"):
        accumulator.update(pred, gt, weight=np.ones(3))


def test_mpjve_accumulator_weights_sequences_by_frame_count():
    rng = np.random.default_rng(11)
    sequences = []
    for length in (5, 17, 40):
        gt = rng.normal(scale=300.0, size=(length, 17, 3))
        sequences.append((gt + rng.normal(scale=10.0, size=gt.shape), gt))
    accumulator = M.MPJVE()
    for pred, gt in sequences:
        accumulator.update(pred, gt)
    values = np.array([M.mpjve(p, g) for p, g in sequences])
    lengths = np.array([5, 17, 40])
    assert accumulator.compute() == pytest.approx((values * lengths).sum() / lengths.sum(), rel=1e-12)
    batch = M.MPJVE()
    stacked_pred = np.stack([sequences[0][0][:5], sequences[1][0][:5]])
    stacked_gt = np.stack([sequences[0][1][:5], sequences[1][1][:5]])
    batch.update(stacked_pred, stacked_gt)
    assert batch.compute() == pytest.approx(M.mpjve(stacked_pred, stacked_gt), rel=1e-12)


def test_bad_input_errors():
    gt = _poses(n_frames=3)
    with pytest.raises(InputError, match="same shape"):
        M.mpjpe(gt[:, :5], gt)
    with pytest.raises(InputError, match=r"\(\.\.\., J, 3\)"):
        M.mpjpe(gt[..., :2], gt[..., :2])
    with pytest.raises(InputError, match="at least 2 frames"):
        M.mpjve(gt[:1], gt[:1])
    with pytest.raises(InputError, match="reduction"):
        M.mpjpe(gt, gt, reduction="sum")
    with pytest.raises(InputError, match="before any update"):
        M.PMPJPE().compute()
