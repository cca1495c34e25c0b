from __future__ import annotations

import numpy as np
import pytest

from posebench.errors import InputError
from posebench.stratify import assign_buckets, bucket_edges, movement_range, rank_buckets


def _brute_force_mr(keypoints: np.ndarray, window: int) -> np.ndarray:
    """Gather every window with clipped (edge-replicated) indices and average the distances."""
    n_frames = len(keypoints)
    offsets = np.arange(-(window // 2), window - window // 2)
    index = np.clip(np.arange(n_frames)[:, None] + offsets[None, :], 0, n_frames - 1)
    return np.linalg.norm(keypoints[index] - keypoints[:, None], axis=-1).mean(axis=(1, 2))


def test_known_value_for_linear_motion():
    # Every joint moves 0.01 per frame along x: inside the sequence the window of T = 2c+1 frames
    # gives (1/T) sum_{o=-c..c} 0.01 |o| = 0.01 c (c + 1) / T.
    frames = np.arange(400, dtype=np.float64)
    keypoints = np.zeros((400, 3, 2))
    keypoints[..., 0] = 0.01 * frames[:, None]
    keypoints[:, 1, 1] = 0.5  # a constant offset does not change the range
    mr = movement_range(keypoints, window=27)
    c = 13
    np.testing.assert_allclose(mr[c:-c], 0.01 * c * (c + 1) / 27, rtol=1e-12)
    # Frame 0: the 13 frames before it are replicated copies of frame 0 (distance 0).
    assert mr[0] == pytest.approx(0.01 * c * (c + 1) / 2 / 27, rel=1e-12)
    assert mr[-1] == pytest.approx(mr[0], rel=1e-12)
    # Frame 5 sees 8 replicated copies of frame 0, each 0.05 away.
    expected_5 = (0.01 * (5 * 6 / 2 + c * (c + 1) / 2) + 8 * 0.05) / 27
    assert mr[5] == pytest.approx(expected_5, rel=1e-12)


@pytest.mark.parametrize("window, chunk", [(27, 7), (8, 5), (243, 50), (1, 3), (9, 1000)])
def test_matches_brute_force(window, chunk):
    keypoints = np.random.default_rng(window).normal(size=(120, 5, 2)).cumsum(axis=0)
    np.testing.assert_allclose(
        movement_range(keypoints, window, chunk_frames=chunk), _brute_force_mr(keypoints, window), rtol=1e-12
    )


def test_even_window_centre_is_index_half():
    # Window 4 covers f-2 .. f+1; a single step between frames 5 and 6 shows the asymmetry.
    keypoints = np.zeros((12, 1, 2))
    keypoints[6:, 0, 0] = 1.0
    mr = movement_range(keypoints, window=4)
    # f = 5 sees frame 6 (after); f = 7 sees frames 5 (two before): one unit each, f = 8 none.
    assert mr[5] == pytest.approx(0.25) and mr[7] == pytest.approx(0.25) and mr[8] == 0.0
    assert mr[4] == 0.0  # window 2..5 lies entirely before the step


def test_ten_equal_buckets_with_ties():
    rng = np.random.default_rng(0)
    values = np.concatenate([np.zeros(333), rng.integers(0, 20, size=1000).astype(float)])
    buckets, edges = rank_buckets(values, 10)
    sizes = np.bincount(buckets, minlength=10)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == values.size
    assert edges.shape == (11,) and edges[0] == -np.inf and edges[-1] == np.inf
    # Buckets are ordered: every value of bucket b is <= every value of bucket b + 1.
    for b in range(9):
        assert values[buckets == b].max() <= values[buckets == b + 1].min()
    again, edges_again = rank_buckets(values.copy(), 10)
    assert np.array_equal(again, buckets) and np.array_equal(edges_again, edges)
    assert np.array_equal(bucket_edges(values, 10), edges)


def test_stored_edges_reproduce_rank_buckets_without_ties():
    values = np.random.default_rng(1).random(1003)
    buckets, edges = rank_buckets(values)
    assert np.array_equal(assign_buckets(values, edges), buckets)
    sizes = np.bincount(buckets)
    assert sizes.max() - sizes.min() <= 1
    # New values are placed by value: below the lowest edge, between, above the highest.
    assert assign_buckets(np.array([-1.0, edges[5], 2.0]), edges).tolist() == [0, 5, 9]


def test_assign_buckets_puts_tied_values_in_one_bucket():
    values = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0])
    buckets, edges = rank_buckets(values, 3)
    assert buckets.tolist() == [0, 0, 1, 1, 2, 2]
    assert edges.tolist() == [-np.inf, 0.0, 1.0, np.inf]
    assert assign_buckets(values, edges).tolist() == [1, 1, 1, 1, 2, 2]


def test_errors():
    with pytest.raises(InputError, match=r"\(F, J, 2\)"):
        movement_range(np.zeros((10, 3)))
    with pytest.raises(InputError, match="window"):
        movement_range(np.zeros((10, 3, 2)), window=0)
    with pytest.raises(InputError, match="NaN"):
        rank_buckets(np.array([0.0, np.nan, 1.0]), 2)
    with pytest.raises(InputError, match="cannot fill"):
        rank_buckets(np.arange(5.0), 10)
    with pytest.raises(InputError, match="edges must be"):
        assign_buckets(np.arange(5.0), np.array([0.0, 1.0]))
