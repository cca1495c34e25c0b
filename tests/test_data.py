"""Training data: normalisation, targets, NaN handling, windows, flips, occlusion, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_factory import make_dataset

from posebench.data import WindowSampler, model_inputs, prepare_split
from posebench.errors import PosebenchError
from posebench.skeletons import flip_joints_3d, flip_keypoints_2d, get_skeleton


@pytest.fixture(scope="module")
def dataset():
    return make_dataset(seed=3, n_frames=40)


@pytest.fixture(scope="module")
def split(dataset):
    return prepare_split(dataset, None, "gt")


def test_tracks_are_the_persons_of_sequences_with_a_camera(split):
    assert split.sequence_ids == ["take1/phone", "take1/phone", "take2/cam0"]
    assert split.person_ids == [10, 11, 10]
    assert split.track_starts.tolist() == [0, 40, 80, 120]
    assert split.camera_sizes.tolist() == [[1920, 1080], [1920, 1080], [1000, 1002]]


def test_normalisation_uses_each_tracks_camera_size(dataset, split):
    for track, (sequence_id, person, (w, h)) in enumerate([("take1/phone", 1, (1920, 1080)), ("take2/cam0", 0, (1000, 1002))]):
        raw = dataset[sequence_id].keypoints["gt"].xy[person].astype(np.float64)
        rows = split.track(track + 1)
        expected = np.stack([raw[..., 0] / w * 2 - 1, raw[..., 1] / w * 2 - h / w], axis=-1)
        finite = np.isfinite(raw).all(axis=-1)
        np.testing.assert_allclose(split.keypoints[rows][finite], expected[finite], rtol=1e-6, atol=1e-6)


def test_targets_are_root_relative_camera_millimetres(dataset, split):
    joints = dataset["take2/cam0"].joints_cam[0].astype(np.float64)
    targets = split.targets[split.track(2)]
    np.testing.assert_allclose(targets, joints - joints[:, :1], atol=1e-3)
    assert np.all(targets[:, 0] == 0.0)


def test_missing_2d_is_interpolated_and_missing_3d_is_invalid(dataset, split):
    # make_dataset: person 11 of take1/phone lacks joint 3 in frames 5..8; person 10 lacks frame 20.
    rows = split.track(1)
    assert split.missing[rows][:, 3].nonzero()[0].tolist() == [5, 6, 7, 8]
    keypoints = split.keypoints[rows]
    for frame in range(5, 9):
        weight = (frame - 4) / 5
        np.testing.assert_allclose(keypoints[frame, 3], (1 - weight) * keypoints[4, 3] + weight * keypoints[9, 3], atol=1e-5)
    assert np.isfinite(split.keypoints).all()
    assert np.flatnonzero(~split.valid).tolist() == [20, 45, 46, 47, 48]
    assert np.isnan(split.targets[20]).all()


def test_windows_never_cross_tracks_and_replicate_edges(split):
    sampler = WindowSampler(split, 6, 6)
    assert len(sampler) == int(split.valid.sum())
    inputs = model_inputs(split, uses_mask=False)
    batch = sampler.batch(inputs, np.arange(len(sampler)))
    for window, anchor in enumerate(sampler.anchors):
        track = int(np.searchsorted(split.track_starts, anchor, side="right") - 1)
        rows = split.track(track)
        frame = anchor - rows.start
        padded = np.pad(split.keypoints[rows], ((6, 6), (0, 0), (0, 0)), mode="edge")
        np.testing.assert_array_equal(batch.keypoints[window], padded[frame : frame + 13])
        padded_targets = np.pad(split.targets[rows], ((6, 6), (0, 0), (0, 0)), mode="edge")
        np.testing.assert_array_equal(batch.targets[window], padded_targets[frame : frame + 13])
        assert np.all((batch.rows[window] >= rows.start) & (batch.rows[window] < rows.stop))


def test_causal_windows_end_at_the_output_frame(split):
    sampler = WindowSampler(split, 8, 0)
    rows = sampler.window_rows(np.arange(len(sampler)))
    assert np.array_equal(rows[:, -1], sampler.anchors)
    assert rows[0].tolist() == [0] * 9  # frame 0 of the first track: all context replicated from it


def test_chunks_follow_videopose3d_bounds(split):
    sampler = WindowSampler(split, 1, 1, chunk=7)
    # 40 frames in chunks of 7: 6 chunks, offset (42 - 40) // 2 = 1, so starts -1, 6, ..., 34 in each track.
    starts = [-1, 6, 13, 20, 27, 34]
    expected = [start + base for base in (0, 40, 80) for start in starts]
    assert sampler.anchors.tolist() == expected
    assert sampler.window_length == 9
    assert sampler.window_rows(np.array([0]))[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6]


def test_flip_is_exactly_the_skeleton_flip_functions(split):
    skeleton = get_skeleton("h36m17")
    sampler = WindowSampler(split, 2, 2)
    inputs = model_inputs(split, uses_mask=True, occlusion_ratio=0.3, seed=1)
    windows = np.arange(0, 60, 6)
    flags = np.arange(len(windows)) % 3 == 0
    plain = sampler.batch(inputs, windows)
    flipped = sampler.batch(inputs, windows, flags)
    np.testing.assert_array_equal(flipped.keypoints[flags], flip_keypoints_2d(plain.keypoints[flags], skeleton))
    np.testing.assert_array_equal(flipped.targets[flags], flip_joints_3d(plain.targets[flags], skeleton))
    np.testing.assert_array_equal(flipped.mask[flags], plain.mask[flags][..., skeleton.flip_permutation])
    np.testing.assert_array_equal(flipped.keypoints[~flags], plain.keypoints[~flags])
    assert flipped.flipped.tolist() == flags.tolist()


def test_epochs_are_deterministic_and_flip_half_of_each_batch(split):
    sampler = WindowSampler(split, 2, 2)
    inputs = model_inputs(split, uses_mask=False)

    def run(seed):
        return list(sampler.epoch(inputs, 16, np.random.default_rng(seed)))

    first, again, other = run(5), run(5), run(6)
    assert [len(b.rows) for b in first] == [16] * 7 + [3]
    assert all(int(b.flipped.sum()) == len(b.rows) // 2 for b in first)
    assert all(np.array_equal(a.keypoints, b.keypoints) and np.array_equal(a.flipped, b.flipped) for a, b in zip(first, again))
    assert not np.array_equal(first[0].rows, other[0].rows)
    covered = np.sort(np.concatenate([b.rows[:, 2] for b in first]))
    assert np.array_equal(covered, sampler.anchors)


def test_no_batch_holds_a_single_window(split):
    sampler = WindowSampler(split, 0, 0)
    sizes = [len(b.rows) for b in sampler.epoch(model_inputs(split, uses_mask=False), len(sampler) - 1, np.random.default_rng(0))]
    assert sizes == [len(sampler)]


def test_occlusion_for_mask_aware_and_other_models(split):
    masked = model_inputs(split, uses_mask=True, occlusion_ratio=0.4, occlusion_kernel=3, seed=9)
    assert masked.mask.shape == split.missing.shape
    assert 0.3 < masked.mask.mean() < 0.5
    assert np.all(masked.mask[split.missing])
    assert np.all(masked.keypoints[masked.mask] == 0.0)
    np.testing.assert_array_equal(masked.keypoints[~masked.mask], split.keypoints[~masked.mask])
    filled = model_inputs(split, uses_mask=False, occlusion_ratio=0.4, occlusion_kernel=3, seed=9)
    assert filled.mask is None and np.isfinite(filled.keypoints).all()
    np.testing.assert_array_equal(filled.keypoints[~masked.mask], split.keypoints[~masked.mask])
    # An occluded run inside a track is the straight line between its visible neighbours.
    joint_mask = masked.mask[:40, 0]
    run = np.flatnonzero(joint_mask[1:-1]) + 1
    t = int(run[0])
    before = t - 1
    after = t + int(np.argmax(~joint_mask[t:]))
    weight = (t - before) / (after - before)
    np.testing.assert_allclose(filled.keypoints[t, 0], (1 - weight) * split.keypoints[before, 0] + weight * split.keypoints[after, 0], atol=1e-5)
    zeroed = model_inputs(split, uses_mask=False, occlusion_ratio=0.4, occlusion_kernel=3, seed=9, fill="zero")
    assert np.all(zeroed.keypoints[masked.mask] == 0.0)
    again = model_inputs(split, uses_mask=True, occlusion_ratio=0.4, occlusion_kernel=3, seed=9)
    np.testing.assert_array_equal(again.mask, masked.mask)
    assert not np.array_equal(model_inputs(split, uses_mask=True, occlusion_ratio=0.4, occlusion_kernel=3, seed=10).mask, masked.mask)


def test_without_occlusion_plain_models_get_the_prepared_keypoints(split):
    inputs = model_inputs(split, uses_mask=False)
    assert inputs.mask is None and inputs.keypoints is split.keypoints
    aware = model_inputs(split, uses_mask=True)
    np.testing.assert_array_equal(aware.mask, split.missing)


def test_unknown_source_is_a_clear_error(dataset):
    with pytest.raises(PosebenchError, match="no 2D source 'cpn'"):
        prepare_split(dataset, "test", "cpn")


def test_2d_layouts_are_mapped_to_the_3d_skeleton(dataset):
    prepared = prepare_split(dataset, None, "openpose")
    assert prepared.keypoints.shape == (120, 17, 2)
    assert np.isfinite(prepared.keypoints).all()


def test_natural_occlusion_uses_the_protocol_confidence_threshold():
    from dataset_factory import make_dataset

    from posebench.data import model_inputs, prepare_split

    dataset = make_dataset()
    split = prepare_split(dataset, "train", "openpose")
    assert split.confidence.shape == split.missing.shape
    loose = model_inputs(split, uses_mask=True, natural_occlusion=True, confidence_threshold=0.3).mask
    strict = model_inputs(split, uses_mask=True, natural_occlusion=True, confidence_threshold=0.9).mask
    assert strict.sum() > loose.sum()
    np.testing.assert_array_equal(strict, split.missing | split.occluded | (split.confidence < 0.9))
