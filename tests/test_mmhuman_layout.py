"""The mmhuman raw layout: errors on bad input, and camera poses from a tracked rigid body."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from converters.mmhuman import convert_mmhuman
from posebench.errors import LayoutError, OpenPoseError
from posebench.io.trc import read_trc
from converters.mmhuman_simulator import SimulationSettings, simulate_mmhuman

DATA = Path(__file__).parent / "data"
BVH = [DATA / "bvh" / "18_01.bvh", DATA / "bvh" / "19_01.bvh"]
P2_TRC = DATA / "pose2sim" / "S00_P01_MultiParticipants" / "S00_P01_T02_Participants1-2" / "pose-3d" / "S00_P01_T02_Participants1-2_P2_0-100.trc"
#: The converter turns Pose2Sim's y-up TRC axes to z-up with (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("layout") / "raw"
    simulate_mmhuman(BVH, raw, take="18_01", subjects=["cmu18", "cmu19"], settings=SimulationSettings(exact=True))
    return raw


@pytest.fixture
def raw(pristine, tmp_path) -> Path:
    copy = tmp_path / "raw"
    shutil.copytree(pristine, copy)
    return copy


VIDEO = Path("videos") / "18_01" / "phone1"


def test_missing_takes_csv(raw):
    (raw / "takes.csv").unlink()
    with pytest.raises(LayoutError, match=r"takes\.csv: missing; every raw folder needs takes\.csv"):
        convert_mmhuman(raw)


def test_missing_camera_json(raw):
    (raw / VIDEO / "camera.json").unlink()
    with pytest.raises(LayoutError, match=r"phone1/camera\.json: missing; every video folder needs a camera\.json"):
        convert_mmhuman(raw)


def test_camera_json_without_intrinsics(raw):
    path = raw / VIDEO / "camera.json"
    document = json.loads(path.read_text())
    del document["intrinsics"]
    path.write_text(json.dumps(document))
    with pytest.raises(LayoutError, match=r"camera\.json: field 'intrinsics' missing; add \"intrinsics\""):
        convert_mmhuman(raw)


def test_camera_json_with_incomplete_intrinsics(raw):
    path = raw / VIDEO / "camera.json"
    document = json.loads(path.read_text())
    del document["intrinsics"]["cy"]
    path.write_text(json.dumps(document))
    with pytest.raises(LayoutError, match=r"field 'cy' missing; 'intrinsics' needs fx, fy, cx, cy"):
        convert_mmhuman(raw)


def test_mismatched_frame_counts(raw):
    files = sorted((raw / VIDEO / "openpose").glob("*.json"))
    files[-1].unlink()
    with pytest.raises(LayoutError, match=rf"trajectory\.csv: {len(files)} poses but .*openpose has {len(files) - 1} frame files"):
        convert_mmhuman(raw)


def test_gap_in_openpose_frames(raw):
    sorted((raw / VIDEO / "openpose").glob("*.json"))[3].unlink()
    with pytest.raises(LayoutError, match=r"numbered 0\.\.F-1 without gaps \(missing e\.g\. \[3\]\)"):
        convert_mmhuman(raw)


def test_json_that_is_not_openpose_output(raw):
    path = sorted((raw / VIDEO / "openpose").glob("*.json"))[5]
    path.write_text(json.dumps({"detections": [[1, 2, 3]]}))
    with pytest.raises(OpenPoseError, match=rf"{path.name}: field 'people' missing; expected an OpenPose JSON object"):
        convert_mmhuman(raw)


def test_missing_trajectory_and_mocap(raw):
    (raw / VIDEO / "trajectory.csv").unlink()
    with pytest.raises(LayoutError, match=r"trajectory\.csv: missing; camera\.json names it as the camera trajectory"):
        convert_mmhuman(raw)
    shutil.rmtree(raw / "mocap" / "18_01")
    with pytest.raises(LayoutError, match=r"no mocap for take '18_01'; expected mocap/18_01\.c3d"):
        convert_mmhuman(raw)


def test_subject_missing_from_mocap(raw):
    (raw / "takes.csv").write_text("take,action,subjects,split\n18_01,shake,cmu18;nobody,\n")
    with pytest.raises(LayoutError, match=r"take '18_01' lists \['nobody'\] .* the mocap holds only \['cmu18', 'cmu19'\]"):
        convert_mmhuman(raw)


def test_bad_trajectory_header(raw):
    (raw / VIDEO / "trajectory.csv").write_text("frame,a,b\n0,1,2\n")
    with pytest.raises(LayoutError, match=r"lacks rotation columns; use r00\.\.r22 \(row-major\) or qw,qx,qy,qz"):
        convert_mmhuman(raw)


def _write_trc(path: Path, names: list[str], points_m: np.ndarray, rate: float) -> None:
    frames, markers, _ = points_m.shape
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:g}\t{rate:g}\t{frames}\t{markers}\tm\t{rate:g}\t1\t{frames}",
        "Frame#\tTime\t" + "\t".join(f"{n}\t\t" for n in names),
        "\t\t" + "\t".join(f"X{i + 1}\tY{i + 1}\tZ{i + 1}" for i in range(markers)),
    ]
    for frame in range(frames):
        values = "\t".join(repr(float(v)) for v in points_m[frame].ravel())
        lines.append(f"{frame + 1}\t{(frame + 1) / rate!r}\t{values}")
    path.write_text("\n".join(lines) + "\n")


def test_camera_carried_as_a_mocap_rigid_body(tmp_path):
    """A phone with three markers, tracked by the mocap: the converter fits the rigid body per frame."""
    person = read_trc(P2_TRC)
    frames = person.num_frames
    reference = np.array([[0.0, 0.0, 0.0], [120.0, 0.0, 0.0], [0.0, 70.0, 0.0]])
    angle = 0.004 * np.arange(frames)
    body_R = np.zeros((frames, 3, 3))
    body_R[:, 0, 0] = body_R[:, 2, 2] = np.cos(angle)
    body_R[:, 0, 2], body_R[:, 2, 0] = np.sin(angle), -np.sin(angle)
    body_R[:, 1, 1] = 1.0
    body_t = np.array([0.0, 1500.0, 2500.0]) + np.outer(np.arange(frames), [2.0, 0.0, -1.0])
    markers = reference @ np.swapaxes(body_R, -1, -2) + body_t[:, None, :]  # TRC (y-up) axes, mm
    names = [f"P2:{n}" for n in person.marker_names] + ["phone:A", "phone:B", "phone:C"]
    raw = tmp_path / "raw"
    (raw / "mocap").mkdir(parents=True)
    _write_trc(raw / "mocap" / "t1.trc", names, np.concatenate((person.points, markers), axis=1) / 1000.0, person.rate)
    (raw / "takes.csv").write_text("take,action,subjects,split\nt1,walk,P2,test\n")
    video = raw / "videos" / "t1" / "phone"
    (video / "openpose").mkdir(parents=True)
    detection = {"people": [{"person_id": [-1], "pose_keypoints_2d": [500.0, 400.0, 0.9] * 25}]}
    for frame in range(frames):
        (video / "openpose" / f"f_{frame:04d}.json").write_text(json.dumps(detection))
    mc_R = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    mc_t = np.array([10.0, -20.0, 5.0])
    camera = {
        "resolution": [1920, 1080], "fps": person.rate, "intrinsics": {"fx": 1400, "fy": 1400, "cx": 960, "cy": 540},
        "sync": {"frame0_mocap_time": 1.0 / person.rate},
        "trajectory": {"rigid_body": "phone", "markers": {n: p.tolist() for n, p in zip("ABC", reference)},
                       "marker_to_camera": {"R": mc_R.tolist(), "t": mc_t.tolist()}},
    }
    (video / "camera.json").write_text(json.dumps(camera))
    dataset, reports = convert_mmhuman(raw)
    sequence = dataset["t1/phone"]
    # X_cam = mc_R · body_Rᵀ · (X_trc - body_t) + mc_t, and X_trc = Y_UP_TO_Z_UPᵀ · X_world
    expected_R = mc_R @ np.swapaxes(body_R, -1, -2) @ Y_UP_TO_Z_UP.T
    expected_t = mc_t - (mc_R @ np.swapaxes(body_R, -1, -2) @ body_t[..., None])[..., 0]
    assert sequence.camera.n_poses == frames
    np.testing.assert_allclose(sequence.camera.R, expected_R, atol=1e-9)
    np.testing.assert_allclose(sequence.camera.t, expected_t, atol=1e-6)
    assert dataset.splits == {"test": ["t1/phone"]} and sequence.action == "walk"
    # the one detection is nowhere near the subject: discarded, subject never matched
    assert reports[0].matched == {"P2": 0.0} and reports[0].discarded == frames
