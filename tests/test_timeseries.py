"""Gap filling and resampling of trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from posebench.errors import PosebenchError
from posebench.timeseries import fill_gaps, resample


def _cubic_track(n_frames: int) -> np.ndarray:
    t = np.arange(n_frames, dtype=np.float64)
    return np.stack([0.01 * t**3 - t**2 + 3 * t, 2 * t + 5, np.full_like(t, 900.0)], axis=-1)[:, None, :]


def test_short_interior_gap_is_filled_exactly_for_a_cubic():
    track = _cubic_track(40)
    holed = track.copy()
    holed[10:15] = np.nan
    filled, mask = fill_gaps(holed, max_gap=10)
    np.testing.assert_allclose(filled, track, atol=1e-6)
    assert mask[:, 0].tolist() == [10 <= i < 15 for i in range(40)]


def test_long_and_edge_gaps_stay_nan():
    track = _cubic_track(60)
    holed = track.copy()
    holed[0:3] = np.nan
    holed[20:32] = np.nan  # 12 frames > max_gap
    holed[40:42] = np.nan
    filled, mask = fill_gaps(holed, max_gap=10)
    assert np.isnan(filled[0:3]).all() and np.isnan(filled[20:32]).all()
    assert np.isfinite(filled[40:42]).all() and mask[40:42].all()
    assert not mask[0:3].any() and not mask[20:32].any()


def test_tracks_are_independent_and_shape_is_kept():
    points = np.concatenate([_cubic_track(30), _cubic_track(30) + 100], axis=1).reshape(30, 2, 3)
    points[5, 1] = np.nan
    filled, mask = fill_gaps(points[:, None], max_gap=2)
    assert filled.shape == (30, 1, 2, 3) and mask.shape == (30, 1, 2)
    assert mask.sum() == 1 and mask[5, 0, 1]


def test_negative_gap_is_an_error():
    with pytest.raises(PosebenchError, match="max_gap must be >= 0"):
        fill_gaps(np.zeros((3, 1, 3)), max_gap=-1)


def test_resample_120_to_50_hz_keeps_a_smooth_signal_and_exact_times():
    times = np.arange(121) / 120.0
    signal = np.stack([np.sin(2 * np.pi * times), np.cos(2 * np.pi * times), times], -1)[:, None]
    values, new_times = resample(signal, times, 50.0)
    np.testing.assert_array_equal(new_times, np.arange(51) / 50.0)
    expected = np.stack([np.sin(2 * np.pi * new_times), np.cos(2 * np.pi * new_times), new_times], -1)[:, None]
    np.testing.assert_allclose(values, expected, atol=1e-5)


def test_resample_does_not_bridge_gaps():
    times = np.arange(100) / 100.0
    signal = np.stack([times, times, times], -1)[:, None].copy()
    signal[40:45] = np.nan
    values, new_times = resample(signal, times, 30.0)
    inside = (new_times > times[39]) & (new_times < times[45])
    assert np.isnan(values[inside]).all()
    assert np.isfinite(values[~inside]).all()
    np.testing.assert_allclose(values[~inside, 0, 0], new_times[~inside], atol=1e-9)


def test_resample_rejects_bad_input():
    with pytest.raises(PosebenchError, match="target frame rate must be positive"):
        resample(np.zeros((3, 1, 3)), np.arange(3.0), 0)
    with pytest.raises(PosebenchError, match="strictly increasing"):
        resample(np.zeros((3, 1, 3)), np.array([0.0, 0.0, 1.0]), 10)
