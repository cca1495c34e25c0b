from __future__ import annotations

from fractions import Fraction
from math import comb, factorial, floor

import numpy as np
import pytest

from posebench.errors import InputError
from posebench.occlusion import (
    apply_mask,
    irwin_hall_cdf,
    masks_for_sequences,
    natural_mask,
    occlusion_threshold,
    synthetic_mask,
)


def _exact_cdf(x: float, n: int) -> float:
    """Irwin-Hall CDF from the alternating-sum formula in exact rational arithmetic."""
    if x <= 0:
        return 0.0
    if x >= n:
        return 1.0
    q = Fraction(x)
    total = sum((-1) ** k * comb(n, k) * (q - k) ** n for k in range(floor(q) + 1))
    return float(total / factorial(n))


def _exact_sf(x: float, n: int) -> float:
    return _exact_cdf(n - x, n)  # symmetry of the sum of uniforms about n / 2


@pytest.mark.parametrize("n, points", [(1, 41), (2, 41), (5, 41), (27, 41), (81, 21), (300, 9)])
def test_irwin_hall_cdf_matches_exact_rational_formula(n, points):
    x = np.linspace(-0.5, n + 0.5, points)
    expected = np.array([_exact_cdf(v, n) for v in x])
    np.testing.assert_allclose(irwin_hall_cdf(x, n), expected, rtol=1e-12, atol=1e-15)


def test_irwin_hall_cdf_keeps_relative_precision_in_the_tail():
    # P(S_n <= 1) = 1 / n! exactly.
    assert irwin_hall_cdf(1.0, 20) == pytest.approx(1.0 / 2432902008176640000, rel=1e-12)


@pytest.mark.parametrize("kernel", [1, 5, 27, 243])
@pytest.mark.parametrize("ratio", [0.01, 0.25, 0.5, 0.9])
def test_threshold_is_the_bates_quantile(kernel, ratio):
    theta = occlusion_threshold(ratio, kernel)
    assert _exact_sf(theta * kernel, kernel) == pytest.approx(ratio, rel=1e-9)
    assert (
        _exact_sf(theta * kernel * (1 - 1e-6), kernel)
        > ratio
        > _exact_sf(theta * kernel * (1 + 1e-6), kernel)
    )


@pytest.mark.parametrize("kernel", [1, 5, 27])
@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_realised_ratio(kernel, ratio):
    mask = synthetic_mask(60_000, 17, ratio, kernel, seed=kernel)
    assert mask.shape == (60_000, 17) and mask.dtype == bool
    assert abs(mask.mean() - ratio) < 0.01


def test_per_coordinate_mask():
    mask = synthetic_mask(20_000, 17, 0.25, 5, seed=1, per_coordinate=True)
    assert mask.shape == (20_000, 17, 2)
    assert abs(mask.mean() - 0.25) < 0.01
    # x and y series are independent, so they disagree about as often as 2 r (1 - r).
    assert abs((mask[..., 0] != mask[..., 1]).mean() - 2 * 0.25 * 0.75) < 0.01


def _mean_run_length(mask: np.ndarray) -> float:
    padded = np.pad(mask.T.astype(np.int8), ((0, 0), (1, 1)))
    starts = (np.diff(padded, axis=1) == 1).sum()
    return mask.sum() / starts


def test_run_length_grows_with_kernel():
    lengths = [_mean_run_length(synthetic_mask(20_000, 17, 0.5, k, seed=3)) for k in (1, 5, 27)]
    assert lengths[0] == pytest.approx(2.0, rel=0.05)  # i.i.d. runs: 1 / (1 - r)
    assert lengths[0] < lengths[1] < lengths[2]
    assert lengths[2] > 5 * lengths[0]


def test_ratio_extremes():
    assert not synthetic_mask(50, 17, 0.0, 27).any()
    assert synthetic_mask(50, 17, 1.0, 27).all()


def test_seeding_is_deterministic():
    a = synthetic_mask(500, 17, 0.5, 5, seed=42)
    assert np.array_equal(a, synthetic_mask(500, 17, 0.5, 5, seed=42))
    assert not np.array_equal(a, synthetic_mask(500, 17, 0.5, 5, seed=43))
    # In "valid" mode a shorter mask is a prefix of a longer one.
    assert np.array_equal(a[:200], synthetic_mask(200, 17, 0.5, 5, seed=42))


def test_masks_do_not_depend_on_the_batch():
    lengths = [120, 300, 75]
    together = masks_for_sequences(lengths, 17, 0.5, 27, seed=7)
    alone = masks_for_sequences([300], 17, 0.5, 27, seed=7, keys=[1])
    assert np.array_equal(together[1], alone[0])
    reordered = masks_for_sequences(lengths[::-1], 17, 0.5, 27, seed=7, keys=[2, 1, 0])
    for mask, expected in zip(reordered, together[::-1]):
        assert np.array_equal(mask, expected)
    child = np.random.SeedSequence(7).spawn(3)[2]
    assert np.array_equal(together[2], synthetic_mask(75, 17, 0.5, 27, seed=child))
    assert not np.array_equal(together[0][:75], together[2])
    named = masks_for_sequences(
        [100, 100], 17, 0.5, 5, seed=7, keys=["S9/Walking 1/54138969", "S11/Eating/60457274"]
    )
    again = masks_for_sequences([100], 17, 0.5, 5, seed=7, keys=["S11/Eating/60457274"])
    assert np.array_equal(named[1], again[0]) and not np.array_equal(named[0], named[1])
    with pytest.raises(InputError, match="one key per sequence"):
        masks_for_sequences([10, 10], 17, 0.5, keys=[0])


def test_boundary_modes():
    kernel, ratio = 27, 0.5
    valid = synthetic_mask(200, 20_000, ratio, kernel, seed=5)
    same = synthetic_mask(200, 20_000, ratio, kernel, seed=5, boundary="same")
    per_frame_valid = valid.mean(axis=1)
    per_frame_same = same.mean(axis=1)
    assert np.abs(per_frame_valid - ratio).max() < 0.02
    # "same": frame t < 13 averages 14 + t real samples and 13 - t zeros (window t-13 .. t+13),
    # so its occlusion probability is P(IrwinHall(14 + t) > 27 theta); the ends mirror the start.
    theta = occlusion_threshold(ratio, kernel)
    expected = np.array([1 - _exact_cdf(kernel * theta, 14 + t) for t in range(13)])
    assert np.abs(per_frame_same[:13] - expected).max() < 0.015
    assert np.abs(per_frame_same[::-1][:13] - expected).max() < 0.015
    assert per_frame_same[0] < 0.001
    assert abs(per_frame_same[13:187].mean() - ratio) < 0.01


def test_natural_mask():
    confidence = np.array([[0.9, 0.3, 0.29999, np.nan, 0.0]])
    assert natural_mask(confidence).tolist() == [[False, False, True, True, True]]
    assert natural_mask(confidence, threshold=0.95).all()


def test_apply_mask_zero():
    keypoints = np.random.default_rng(0).normal(size=(10, 4, 2))
    mask = np.zeros((10, 4), dtype=bool)
    mask[3, 1] = True
    mask[5:8, 2] = True
    out = apply_mask(keypoints, mask, "zero")
    assert np.all(out[mask] == 0.0)
    assert np.array_equal(out[~mask], keypoints[~mask])
    assert keypoints[3, 1, 0] != 0.0  # input untouched


def test_interpolation_is_exact_on_linear_trajectories():
    frames = np.arange(60, dtype=np.float64)
    start = np.random.default_rng(1).normal(size=(17, 2))
    velocity = np.random.default_rng(2).normal(size=(17, 2))
    keypoints = start + frames[:, None, None] * velocity
    mask = synthetic_mask(60, 17, 0.5, 5, seed=3)
    mask[:, 0] = False
    mask[10:20, 0] = True
    hidden = np.where(mask[..., None], np.nan, keypoints)
    filled = apply_mask(hidden, mask, "interpolate")
    first_visible = np.argmax(~mask, axis=0)
    last_visible = 59 - np.argmax(~mask[::-1], axis=0)
    for joint in range(17):
        inside = slice(first_visible[joint], last_visible[joint] + 1)
        np.testing.assert_allclose(filled[inside, joint], keypoints[inside, joint], rtol=0, atol=1e-12)
        # Before the first and after the last visible frame the edge value is held.
        assert np.all(filled[: first_visible[joint], joint] == keypoints[first_visible[joint], joint])
        assert np.all(filled[last_visible[joint] + 1 :, joint] == keypoints[last_visible[joint], joint])


def test_interpolation_per_coordinate_and_batched():
    frames = np.arange(30, dtype=np.float64)
    keypoints = np.stack([frames * 2.0, 100.0 - frames], axis=-1)[None, :, None, :].repeat(3, axis=0)
    mask = np.zeros(keypoints.shape, dtype=bool)
    mask[0, 5:9, 0, 0] = True
    mask[2, 10:25, 0, 1] = True
    filled = apply_mask(np.where(mask, -1.0, keypoints), mask, "interpolate")
    np.testing.assert_allclose(filled, keypoints, atol=1e-12)


def test_fully_occluded_joint():
    keypoints = np.ones((8, 3, 2))
    mask = np.zeros((8, 3), dtype=bool)
    mask[:, 2] = True
    with pytest.raises(InputError, match="occluded in every frame"):
        apply_mask(keypoints, mask, "interpolate")
    filled = apply_mask(keypoints, mask, "interpolate", fully_occluded="zero")
    assert np.all(filled[:, 2] == 0.0) and np.all(filled[:, :2] == 1.0)


def test_apply_mask_rejects_unmasked_nan_and_bad_shapes():
    keypoints = np.ones((8, 3, 2))
    keypoints[2, 1, 0] = np.nan
    with pytest.raises(InputError, match="non-finite values that the mask marks visible"):
        apply_mask(keypoints, np.zeros((8, 3), dtype=bool))
    with pytest.raises(InputError, match="fits neither"):
        apply_mask(np.ones((8, 3, 2)), np.zeros((8, 4), dtype=bool))
    with pytest.raises(InputError, match="must be boolean"):
        apply_mask(np.ones((8, 3, 2)), np.zeros((8, 3)))
    with pytest.raises(InputError, match="ratio must lie"):
        synthetic_mask(10, 3, 1.5)
    with pytest.raises(InputError, match="kernel length"):
        synthetic_mask(10, 3, 0.5, kernel=0)
