"""The mmhuman layout: simulator → converter round trips (CMU two-person take) and unit checks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from converters import mmhuman
from converters.mmhuman import Options, convert_mmhuman
from converters.mmhuman_associate import associate, map_detections
from converters.mmhuman_mocap import fit_rigid_body, sample_at
from converters.mocap import convert_mocap
from posebench.dataset import load
from posebench.io.openpose import read_openpose_json
import converters.mmhuman_simulator as simulate
from converters.mmhuman_simulator import SimulationSettings, body25_from_h36m17, simulate_mmhuman
from posebench.skeletons import get_mapping, get_skeleton

DATA = Path(__file__).parent / "data"
BVH = [DATA / "bvh" / "18_01.bvh", DATA / "bvh" / "19_01.bvh"]
SUBJECTS = ["cmu18", "cmu19"]
FPS = 30.0
MOCAP_RATE = 120.0
#: CMU's BVH files are y-up; the converter turns y into z by this rotation (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@pytest.fixture(scope="module")
def mocap_world() -> np.ndarray:
    """The take's joints (P, T, 17, 3) at 120 Hz, z-up, as the mocap converter gives them."""
    return convert_mocap(BVH, take="18_01")["18_01"].joints_world.astype(np.float64)


def _simulate(tmp_path: Path, split: str = "", **settings) -> tuple[Path, dict]:
    raw = tmp_path / "raw"
    truth = simulate_mmhuman(BVH, raw, take="18_01", subjects=SUBJECTS, split=split, settings=SimulationSettings(**settings))
    return raw, truth


def _trajectory(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    R = np.array([[float(row[f"r{i}{j}"]) for i in range(3) for j in range(3)] for row in rows]).reshape(-1, 3, 3)
    t = np.array([[float(row[k]) for k in ("tx", "ty", "tz")] for row in rows])
    return R, t


def _expected_keypoints(folder: Path, slots: list[list[int]], frames: range, subject: int) -> np.ndarray:
    """The detection the simulator wrote for ``subject`` in each frame, mapped to h36m17 (NaN if absent)."""
    expected = np.full((len(frames), 17, 2), np.nan)
    for row, frame in enumerate(frames):
        if subject in slots[frame]:
            person = read_openpose_json(sorted(folder.glob("*.json"))[frame])[slots[frame].index(subject)]
            mapping = get_mapping(person.layout)
            expected[row] = mapping.apply(person.keypoints.astype(np.float64))
    return expected


def _check_assignment(raw: Path, sequence, truth: dict) -> tuple[int, int]:
    """Assert no subject got another person's detection; return (matched, present) counts."""
    video = sequence.attributes["video"]
    start, stop = (int(v) for v in sequence.attributes["video_frames"].split(":"))
    slots = truth["videos"][video]["slots"]
    got = sequence.keypoints["openpose"].xy
    matched = present = 0
    for subject in range(len(SUBJECTS)):
        expected = _expected_keypoints(raw / "videos" / "18_01" / video / "openpose", slots, range(start, stop), subject)
        has = ~np.isnan(got[subject]).all(axis=(1, 2))
        should = ~np.isnan(expected).all(axis=(1, 2))
        assert not (has & ~should).any(), f"{video}: subject {subject} matched where it was not detected"
        np.testing.assert_allclose(got[subject][has], expected[has], atol=1e-3)
        matched += int(has.sum())
        present += int(should.sum())
    return matched, present


def test_exact_round_trip_recovers_camera_joints_and_assignment(tmp_path, mocap_world):
    raw, truth = _simulate(tmp_path, exact=True, sync_offset=0.25, seed=1)
    dataset, reports = convert_mmhuman(raw)
    (sequence,) = list(dataset)
    assert sequence.subjects == SUBJECTS and sequence.sequence_id == "18_01/phone1"
    start, stop = (int(v) for v in sequence.attributes["video_frames"].split(":"))
    assert (start, stop) == (0, truth["videos"]["phone1"]["frames"]) and reports[0].dropped == 0
    # independent truth: video frame k shows mocap sample (0.25 + k / 30) * 120, seen with the
    # trajectory CSV's pose, which is expressed in the BVH file's own y-up axes
    samples = np.round((0.25 + np.arange(start, stop) / FPS) * MOCAP_RATE).astype(int)
    file_axes = mocap_world[:, samples] @ Y_UP_TO_Z_UP
    R, t = _trajectory(raw / "videos" / "18_01" / "phone1" / "trajectory.csv")
    camera_joints = file_axes @ np.swapaxes(R, -1, -2)[None] + t[None, :, None, :]
    assert np.abs(sequence.joints_cam - camera_joints).max() < 1.0
    # the BVH frame period is 0.0083333 s, not 1/120 s: frame times fall up to 10 µs off a sample
    np.testing.assert_allclose(sequence.joints_world, mocap_world[:, samples], atol=0.1)
    matched, present = _check_assignment(raw, sequence, truth)
    assert matched == present == 2 * (stop - start)
    assert reports[0].matched == {"cmu18": 1.0, "cmu19": 1.0}
    assert sequence.camera.is_moving and sequence.camera.n_poses == stop - start


def test_noisy_blind_sync_estimate_within_one_frame_and_out_of_range_frames_dropped(tmp_path):
    raw, truth = _simulate(tmp_path, sync_offset=-0.3, seed=3, record_sync=False, videos=2)
    dataset, reports = convert_mmhuman(raw)
    for sequence, report in zip(dataset, reports):
        video = truth["videos"][sequence.attributes["video"]]
        assert report.sync_source == "estimated" and report.estimate is not None
        assert abs(report.offset - video["frame0_mocap_time"]) < 1.0 / FPS
        assert report.estimate.confidence > 0.1
        # the video starts 0.3 s before the mocap: frames 0..8 show no mocap and are dropped
        assert report.dropped == 9 and sequence.attributes["video_frames"].startswith("9:")
        matched, present = _check_assignment(raw, sequence, truth)
        assert matched >= 0.9 * present
    videos = dataset.provenance["videos"]
    assert videos["18_01/phone1"]["sync"]["source"] == "estimated"
    assert 0 < videos["18_01/phone1"]["sync"]["confidence"] <= 1


def test_estimate_sync_corrects_a_wrong_recorded_offset(tmp_path):
    raw, truth = _simulate(tmp_path, sync_offset=0.5, seed=5)
    camera_json = raw / "videos" / "18_01" / "phone1" / "camera.json"
    document = json.loads(camera_json.read_text())
    document["sync"]["frame0_mocap_time"] += 0.4
    camera_json.write_text(json.dumps(document))
    recorded, _ = convert_mmhuman(raw)
    assert recorded.provenance["videos"]["18_01/phone1"]["sync"]["frame0_mocap_time"] == pytest.approx(0.9)
    _, reports = convert_mmhuman(raw, options=Options(estimate_sync=True, sync_window=1.0))
    assert abs(reports[0].offset - 0.5) < 1.0 / FPS
    assert reports[0].estimate.searched_from == pytest.approx(-0.1) and reports[0].estimate.searched_to == pytest.approx(1.9)


def test_coco18_detections_with_tracker_ids(tmp_path):
    raw, truth = _simulate(tmp_path, seed=7, layout="openpose18", tracker_ids=True, miss_rate=0.2, spurious_rate=0.5)
    first = read_openpose_json(sorted((raw / "videos" / "18_01" / "phone1" / "openpose").glob("*.json"))[0])
    assert first[0].layout == "openpose18" and {p.person_id for p in first} <= {100, 101, 200}
    dataset, reports = convert_mmhuman(raw)
    matched, present = _check_assignment(raw, dataset["18_01/phone1"], truth)
    assert matched >= 0.95 * present
    assert reports[0].discarded >= 1


def test_openpose_source_confidence_and_occlusion(tmp_path):
    raw, _ = _simulate(tmp_path, exact=True, seed=2)
    dataset, _ = convert_mmhuman(raw, options=Options(conf_threshold=0.5))
    source = dataset["18_01/phone1"].keypoints["openpose"]
    # exact simulation: visible keypoints 0.9, hidden 0.1; a mapped joint takes the smallest
    assert set(np.unique(source.confidence)) <= {0.0, np.float32(0.1), np.float32(0.9)}
    np.testing.assert_array_equal(source.occluded, source.confidence < 0.5)
    assert (source.confidence == np.float32(0.1)).any() and (source.confidence == np.float32(0.9)).any()
    assert dataset.keypoint_sources["openpose"]["skeleton"] == "h36m17"
    gt = dataset["18_01/phone1"].keypoints["gt"]
    assert np.isfinite(gt.xy).all() and (gt.confidence == 1).all()


def test_unmatched_subject_has_nan_keypoints_and_all_occluded(tmp_path):
    raw, truth = _simulate(tmp_path, seed=11, miss_rate=0.3, spurious_rate=0.0)
    dataset, reports = convert_mmhuman(raw)
    source = dataset["18_01/phone1"].keypoints["openpose"]
    missing = np.isnan(source.xy).all(axis=(2, 3))
    assert missing.any()
    assert source.occluded[missing].all() and (source.confidence[missing] == 0).all()
    slots = truth["videos"]["phone1"]["slots"]
    for subject, name in enumerate(SUBJECTS):
        detected = np.mean([subject in frame for frame in slots])
        assert reports[0].matched[name] <= detected + 1e-9


def test_dataset_saves_validates_and_loads(tmp_path):
    raw, _ = _simulate(tmp_path, seed=4, videos=2, split="test")
    dataset, _ = convert_mmhuman(raw)
    dataset.save(tmp_path / "out.h5", format="hdf5")
    loaded = load(tmp_path / "out.h5")
    assert [s.sequence_id for s in loaded] == ["18_01/phone1", "18_01/phone2"]
    assert loaded.splits == {"test": ["18_01/phone1", "18_01/phone2"]}
    assert loaded.provenance["converter"] == "mmhuman"
    np.testing.assert_array_equal(loaded["18_01/phone2"].keypoints["openpose"].xy, dataset["18_01/phone2"].keypoints["openpose"].xy)


def test_cli_simulate_then_convert(tmp_path):
    runner = CliRunner()
    raw = tmp_path / "raw"
    result = runner.invoke(simulate.command, [*map(str, BVH), "--take", "18_01", "--subjects", "cmu18,cmu19", "-o", str(raw), "--seed", "2", "--no-noise"])
    assert result.exit_code == 0, result.output
    assert "phone1: 69 frames, frame 0 at mocap 0.2500 s" in result.output
    assert sorted(p.name for p in (raw / "mocap" / "18_01").iterdir()) == ["cmu18.bvh", "cmu19.bvh"]
    assert (raw / "takes.csv").read_text().splitlines()[1] == "18_01,18_01,cmu18;cmu19,"
    result = runner.invoke(mmhuman.command, [str(raw), "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 0, result.output
    assert "18_01/phone1: 69 frames (0 dropped), frame 0 at mocap 0.2500 s (camera.json); matched: cmu18 100%, cmu19 100%" in result.output
    assert len(load(tmp_path / "out.parquet")) == 1


def test_simulator_is_deterministic(tmp_path):
    first = simulate_mmhuman(BVH, tmp_path / "a", take="18_01", settings=SimulationSettings(seed=9))
    second = simulate_mmhuman(BVH, tmp_path / "b", take="18_01", settings=SimulationSettings(seed=9))
    assert first == second
    folder = Path("videos") / "18_01" / "phone1" / "openpose"
    names = sorted(p.name for p in (tmp_path / "a" / folder).iterdir())
    assert names[0] == "phone1_000000000000_keypoints.json"
    for name in names[::10]:
        assert (tmp_path / "a" / folder / name).read_bytes() == (tmp_path / "b" / folder / name).read_bytes()


def test_body25_head_top_round_trip():
    joints = convert_mocap(BVH[:1])["18_01"].joints_world[0, :5].astype(np.float64)
    body25 = body25_from_h36m17(joints)
    back = get_mapping("openpose25").apply(body25)
    # in 3D the mapping is exact for every joint except spine (the mean of pelvis and thorax)
    exact = [j for j in get_skeleton("h36m17").joints if j != "spine"]
    index = [get_skeleton("h36m17").index(j) for j in exact]
    np.testing.assert_allclose(back[:, index], joints[:, index], atol=1e-9)


def test_map_detections_confidence_is_min_of_formula_keypoints():
    skeleton = get_skeleton("openpose18")
    confidence = np.linspace(0.05, 0.95, skeleton.n_joints)[None]
    keypoints = np.random.default_rng(0).uniform(0, 500, (1, skeleton.n_joints, 2))
    _, mapped = map_detections(keypoints, confidence, "openpose18")
    h36m = get_skeleton("h36m17")
    c = {name: confidence[0, skeleton.index(name)] for name in skeleton.joints}
    assert mapped[0, h36m.index("pelvis")] == pytest.approx(min(c["l_hip"], c["r_hip"]))
    assert mapped[0, h36m.index("head_top")] == pytest.approx(min(c["l_ear"], c["r_ear"], c["neck"]))
    assert mapped[0, h36m.index("l_wrist")] == pytest.approx(c["l_wrist"])


def test_sample_at_exact_at_samples_cubic_between_and_never_bridges_gaps():
    times = 2.0 + np.arange(10) / 120.0
    values = (times ** 3)[:, None]
    np.testing.assert_allclose(sample_at(values, times, times)[:, 0], times ** 3)
    middle = times[3] + 0.5 / 120
    # Catmull-Rom reproduces quadratics exactly; for a cubic its error is small and known
    quadratic = (times ** 2)[:, None]
    assert sample_at(quadratic, times, np.array([middle]))[0, 0] == pytest.approx(middle ** 2, abs=1e-12)
    gapped = values.copy()
    gapped[5] = np.nan
    result = sample_at(gapped, times, np.array([times[4] + 0.001, times[5], times[6] + 0.001, times[0] - 0.01]))[:, 0]
    assert np.isnan(result[:2]).all() and np.isnan(result[3])
    assert result[2] == pytest.approx((times[6] + 0.001) ** 3, rel=1e-4)


def test_fit_rigid_body_recovers_pose_and_marks_lost_frames():
    reference = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 60.0, 0.0], [0.0, 0.0, 40.0]])
    angle = 0.7
    R = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    t = np.array([1000.0, -200.0, 1500.0])
    observed = np.stack([reference @ R.T + t] * 3)
    observed[1, 0] = np.nan
    observed[2, :2] = np.nan
    fitted_R, fitted_t = fit_rigid_body(reference, observed)
    np.testing.assert_allclose(fitted_R[:2], np.stack([R, R]), atol=1e-12)
    np.testing.assert_allclose(fitted_t[:2], np.stack([t, t]), atol=1e-9)
    assert np.isnan(fitted_R[2]).all() and np.isnan(fitted_t[2]).all()


def test_track_keeps_subject_through_short_flip_and_follows_long_one():
    frames, hold = 20, 5
    cost = np.full((frames, 2, 2), 300.0)
    cost[:, 0, 0] = cost[:, 1, 1] = 100.0
    cost[8:10, 0, 0] = cost[8:10, 1, 1] = 350.0  # evidence swaps for 2 frames
    cost[14:, 0, 0] = cost[14:, 1, 1] = 350.0  # and for the last 6 frames
    present = np.ones((frames, 2), dtype=bool)
    tracks = np.tile([0, 1], (frames, 1))
    association = associate(cost, present, tracks, gate=600.0, hold=hold)
    expected = np.tile([0, 1], (frames, 1))
    expected[14:] = [1, 0]
    np.testing.assert_array_equal(association.match, expected)
    gated = associate(cost, present, tracks, gate=200.0, hold=hold)
    assert (gated.match[8:10] == -1).all() and (gated.match[:8] == [0, 1]).all()
