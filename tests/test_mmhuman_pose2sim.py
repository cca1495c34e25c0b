"""The real Pose2Sim two-person recording through the mmhuman converter (static cameras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from converters import mmhuman
from converters.mmhuman import convert_mmhuman
from converters.mmhuman_pose2sim import find_calibration, pose2sim_layout
from posebench.cameras import project
from posebench.dataset import load
from posebench.io.openpose import read_openpose_folder
from posebench.io.trc import read_trc
from posebench.skeletons import get_mapping, get_skeleton

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).parent / "data" / "pose2sim"
TRIAL = ROOT / "S00_P01_MultiParticipants" / "S00_P01_T02_Participants1-2"
CAMERAS = ("cam_01", "cam_02", "cam_03", "cam_04")
BODY25 = get_skeleton("openpose25")
#: TRC marker name of each BODY_25 keypoint that Pose2Sim triangulates.
TRC_NAMES = {
    "nose": "Nose", "neck": "Neck", "r_shoulder": "RShoulder", "r_elbow": "RElbow", "r_wrist": "RWrist",
    "l_shoulder": "LShoulder", "l_elbow": "LElbow", "l_wrist": "LWrist", "r_hip": "RHip", "r_knee": "RKnee",
    "r_ankle": "RAnkle", "l_hip": "LHip", "l_knee": "LKnee", "l_ankle": "LAnkle", "l_big_toe": "LBigToe",
    "l_small_toe": "LSmallToe", "l_heel": "LHeel", "r_big_toe": "RBigToe", "r_small_toe": "RSmallToe", "r_heel": "RHeel",
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    raw = pose2sim_layout(TRIAL, tmp_path_factory.mktemp("p2s") / "raw")
    dataset, reports = convert_mmhuman(raw)
    return raw, dataset, reports


def _nearest_slots(camera: str) -> tuple[np.ndarray, np.ndarray]:
    """Brute force from the raw files: per frame and person (P1, P2), the OpenPose slot whose
    keypoints lie nearest (median over shared keypoints with confidence >= 0.3) to the projection
    of the person's TRC keypoints through the calibration TOML, and all distances (F, 2, slots)."""
    table = tomllib.loads((ROOT / "S00_Calibration" / "Calib_qualisys.toml").read_text())[camera]
    R = Rotation.from_rotvec(table["rotation"]).as_matrix()
    t = np.array(table["translation"]) * 1000.0
    K = np.array(table["matrix"])
    detections = read_openpose_folder(TRIAL / "pose" / f"{camera.replace('_', '')}_json")
    distances = np.full((detections.num_frames, 2, detections.keypoints.shape[1]), np.inf)
    for person, name in enumerate(("P1", "P2")):
        trc = read_trc(next((TRIAL / "pose-3d").glob(f"*_{name}_*.trc")))
        columns = [(BODY25.index(k), trc.marker_names.index(v)) for k, v in TRC_NAMES.items()]
        world = trc.points[:, [c for _, c in columns]][..., [2, 0, 1]]  # TRC (X, Y, Z) = world (Y, Z, X)
        pixels = project(world @ R.T + t, K[0, 0], K[1, 1], K[0, 2], K[1, 2], "opencv", [*table["distortions"], 0.0])
        for frame in range(detections.num_frames):
            for slot in range(detections.people_count[frame]):
                keypoints = detections.keypoints[frame, slot, [k for k, _ in columns]]
                seen = detections.confidence[frame, slot, [k for k, _ in columns]] >= 0.3
                if seen.sum() >= 3:
                    distances[frame, person, slot] = np.median(np.linalg.norm(keypoints[seen] - pixels[frame][seen], axis=-1))
    return distances.argmin(axis=-1), distances


@pytest.mark.parametrize("camera", CAMERAS)
def test_association_matches_the_trc_projection(converted, camera):
    raw, dataset, reports = converted
    sequence = dataset[f"S00_P01_T02_Participants1-2/{camera}"]
    detections = read_openpose_folder(raw / "videos" / "S00_P01_T02_Participants1-2" / camera / "openpose")
    mapped = get_mapping("openpose25").apply(detections.keypoints.astype(np.float64))
    nearest, distances = _nearest_slots(camera)
    got = sequence.keypoints["openpose"].xy
    for person in range(2):
        matched = np.flatnonzero(~np.isnan(got[person]).all(axis=(1, 2)))
        assert len(matched) >= 0.95 * sequence.n_frames
        same = np.isclose(got[person, matched][..., None, :, :], mapped[matched], atol=1e-3, equal_nan=True).all(axis=(-1, -2))
        assert (same.sum(axis=1) == 1).all()
        chosen = same.argmax(axis=1)
        differs = chosen != nearest[matched, person]
        # at most one frame per camera may differ: camera 1's frame 37, where OpenPose split P2 into
        # an upper-body and a legs-only detection; the chosen one must still be nearer to this
        # person than to the other one
        assert differs.sum() <= 1
        frames, slots = matched[differs], chosen[differs]
        assert (distances[frames, person, slots] < distances[frames, 1 - person, slots]).all()
    assert sequence.subjects == ["P1", "P2"]


def test_known_slots_of_frame_10():
    # read off the per-keypoint distances by hand: (P1 slot, P2 slot) in frame 10 of each camera
    known = {"cam_01": (2, 0), "cam_02": (1, 0), "cam_03": (0, 1), "cam_04": (1, 0)}
    for camera, slots in known.items():
        assert tuple(_nearest_slots(camera)[0][10]) == slots


def test_static_cameras_and_axes_follow_the_calibration(converted):
    _, dataset, reports = converted
    calibration = tomllib.loads((ROOT / "S00_Calibration" / "Calib_qualisys.toml").read_text())
    trc = read_trc(next((TRIAL / "pose-3d").glob("*_P2_*.trc")))
    rhip_world = trc.points[:50, trc.marker_names.index("RHip")][:, [2, 0, 1]]
    for camera in CAMERAS:
        sequence = dataset[f"S00_P01_T02_Participants1-2/{camera}"]
        assert not sequence.camera.is_moving
        table = calibration[camera]
        R = Rotation.from_rotvec(table["rotation"]).as_matrix()
        expected = rhip_world @ R.T + np.array(table["translation"]) * 1000.0
        np.testing.assert_allclose(sequence.joints_cam[1, :, get_skeleton("h36m17").index("r_hip")], expected, atol=0.01)
        assert (sequence.camera.width, sequence.camera.height) == (1088, 1920)
        assert sequence.camera.distortion == "opencv" and sequence.camera.coefficients[-1] == 0.0
    # the world is turned z-up: P2's head is above its hips
    world = dataset["S00_P01_T02_Participants1-2/cam_01"].joints_world[1]
    h36m = get_skeleton("h36m17")
    assert (world[:, h36m.index("head_top"), 2] > world[:, h36m.index("pelvis"), 2] + 300).all()
    assert all(r.sync_source == "camera.json" and r.offset == pytest.approx(1 / 60) for r in reports)


def test_spurious_detections_are_discarded(converted):
    _, _, reports = converted
    by_camera = {r.sequence_id.split("/")[1]: r for r in reports}
    # cameras 1 and 2 see a third person in (almost) every frame; cameras 3 and 4 only the two subjects
    assert by_camera["cam_01"].discarded >= 49 and by_camera["cam_02"].discarded == 50
    assert by_camera["cam_03"].discarded == 0 and by_camera["cam_04"].discarded == 0


def test_calibration_is_found_beside_the_trial():
    assert find_calibration(TRIAL) == ROOT / "S00_Calibration" / "Calib_qualisys.toml"


def test_cli_pose2sim(tmp_path):
    result = CliRunner().invoke(mmhuman.command, [str(TRIAL), "--pose2sim", "-o", str(tmp_path / "p2s.parquet")])
    assert result.exit_code == 0, result.output
    assert "S00_P01_T02_Participants1-2/cam_03: 50 frames (0 dropped)" in result.output
    assert len(load(tmp_path / "p2s.parquet")) == 4
