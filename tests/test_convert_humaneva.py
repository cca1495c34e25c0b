"""HumanEva-I converter: VideoPose3D npz files (with and without .cal cameras) and the original release."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from c3d_builder import C3DSpec, build_c3d
from click.testing import CliRunner
from h36m_fixtures import (
    HE_EXTRINSICS_S1,
    HE_INTRINSICS,
    make_motion,
    project_opencv_ref,
    world_to_camera_ref,
    write_cal,
    write_npz,
    write_ofs,
)

from converters.humaneva import JOINT_LABELS, command, contiguous_chunks, convert_humaneva
from converters.humaneva_files import read_cal, read_ofs
from posebench.dataset import load
from posebench.errors import FormatError, PosebenchError

CAMERAS = ("C1", "C2", "C3")
COCO_SYMMETRY = [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]
HE_SYMMETRY = [[2, 3, 4, 8, 9, 10], [5, 6, 7, 11, 12, 13]]


def _vp3d_files(root: Path) -> dict:
    worlds = {
        "Train/S1": {"Walking 1 chunk0": make_motion(30, 15, 1) / 1000},
        "Validate/S1": {"Walking 1 chunk0": make_motion(25, 15, 2) / 1000, "Jog 1 chunk2": make_motion(20, 15, 3) / 1000},
    }
    worlds = {s: {a: w.astype(np.float32) for a, w in seqs.items()} for s, seqs in worlds.items()}
    write_npz(root / "data_3d_humaneva15.npz", positions_3d=worlds)
    rng = np.random.default_rng(4)
    gt = {s: {a: [rng.uniform(0, 640, size=(len(w), 15, 2)).astype(np.float32) for _ in CAMERAS] for a, w in seqs.items()} for s, seqs in worlds.items()}
    write_npz(root / "data_2d_humaneva15_gt.npz", positions_2d=gt, metadata={"layout_name": "humaneva15", "num_joints": 15, "keypoints_symmetry": HE_SYMMETRY})
    coco = {s: {a: [rng.uniform(0, 640, size=(len(w) + 2, 17, 2)).astype(np.float32) for _ in CAMERAS] for a, w in seqs.items()} for s, seqs in worlds.items()}
    coco["Unlabeled/Train/S1"] = {"Walking 1 chunk1": [rng.uniform(0, 640, size=(9, 17, 2)).astype(np.float32)] * 3}
    write_npz(root / "data_2d_humaneva15_detectron_pt_coco.npz", positions_2d=coco, metadata={"layout_name": "coco", "num_joints": 17, "keypoints_symmetry": COCO_SYMMETRY})
    return {"world": worlds, "gt": gt, "coco": coco}


def test_videopose3d_layout_without_calibration(tmp_path: Path) -> None:
    files = _vp3d_files(tmp_path)
    dataset = convert_humaneva(tmp_path)
    assert len(dataset) == 9
    assert sorted(dataset.splits["train"]) == [f"Train/S1/Walking 1 chunk0/{c}" for c in CAMERAS]
    assert len(dataset.splits["test"]) == 6 and "Validate/S1/Jog 1 chunk2/C3" in dataset.splits["test"]
    for subject, sequences in files["world"].items():
        for name, world in sequences.items():
            for index, camera in enumerate(CAMERAS):
                sequence = dataset[f"{subject}/{name}/{camera}"]
                assert sequence.camera is None and sequence.joints_cam is None and sequence.fps == 60
                np.testing.assert_allclose(sequence.joints_world[0], world.astype(np.float64) * 1000, rtol=1e-6)
                np.testing.assert_array_equal(sequence.keypoints["gt"].xy[0], files["gt"][subject][name][index])
                np.testing.assert_array_equal(sequence.keypoints["detectron_pt_coco"].xy[0], files["coco"][subject][name][index][: len(world)])
                assert sequence.subjects == ["S1"] and sequence.action == name.rsplit(" ", 1)[0]
    jog = dataset["Validate/S1/Jog 1 chunk2/C1"]
    assert jog.attributes == {"trial": "1", "chunk": "2", "videopose3d_subject": "Validate/S1"} and jog.take == "Validate/S1/Jog 1 chunk2"
    assert dataset.keypoint_sources["detectron_pt_coco"]["skeleton"] == "coco17"
    notes = dataset.provenance["notes"]
    assert any("1 Unlabeled/ subjects have no 3D" in n for n in notes)
    assert any("sequences have no camera" in n for n in notes)
    output = tmp_path / "he.h5"
    result = CliRunner().invoke(command, [str(tmp_path), "-o", str(output), "--format", "hdf5"])
    assert result.exit_code == 0, result.output
    assert len(load(output)) == 9


def test_videopose3d_layout_with_cal_cameras(tmp_path: Path) -> None:
    worlds = {"Train/S1": {"Box 1 chunk0": (make_motion(20, 15, 8) / 1000).astype(np.float32)}}
    write_npz(tmp_path / "data_3d_humaneva15.npz", positions_3d=worlds)
    for camera in CAMERAS:
        write_cal(tmp_path / "S1" / "Calibration_Data" / f"{camera}.cal", camera)
    dataset = convert_humaneva(tmp_path)
    world = worlds["Train/S1"]["Box 1 chunk0"].astype(np.float64) * 1000
    for camera in CAMERAS:
        sequence = dataset[f"Train/S1/Box 1 chunk0/{camera}"]
        expected_cam = world_to_camera_ref(world, *HE_EXTRINSICS_S1[camera])
        np.testing.assert_allclose(sequence.joints_cam[0], expected_cam, atol=2e-3, rtol=0)
        np.testing.assert_allclose(sequence.keypoints["gt"].xy[0], project_opencv_ref(expected_cam, camera), atol=2e-3, rtol=0)
        fc, cc, kc = HE_INTRINSICS[camera]
        assert (sequence.camera.fx, sequence.camera.fy, sequence.camera.cx, sequence.camera.cy) == (*fc, *cc)
        assert sequence.camera.distortion == "opencv" and sequence.camera.coefficients == kc
        assert (sequence.camera.width, sequence.camera.height) == (640, 480)


def test_cal_and_ofs_readers_reject_bad_files(tmp_path: Path) -> None:
    Rc, Tc = write_cal(tmp_path / "C2.cal", "C2")
    camera = read_cal(tmp_path / "C2.cal", "S1/C2")
    np.testing.assert_array_equal(camera.R[0], Rc)
    np.testing.assert_array_equal(camera.t[0], Tc)
    write_cal(tmp_path / "skew.cal", "C1", alpha=0.01)
    with pytest.raises(FormatError, match=r"skew\.cal: skew alpha_c = 0\.01"):
        read_cal(tmp_path / "skew.cal", "S1/C1")
    (tmp_path / "short.cal").write_text("1 2 3\n")
    with pytest.raises(FormatError, match=r"short\.cal: a calibration file .* must hold exactly 22 finite numbers, found 3"):
        read_cal(tmp_path / "short.cal", "S1/C1")
    write_ofs(tmp_path / "a.ofs", 82.0, 11.0, 2.0002)
    sync = read_ofs(tmp_path / "a.ofs")
    assert sync.mocap_frame(np.array([82, 83])).tolist() == [11.0, 13.0002]
    (tmp_path / "b.ofs").write_text("82 11 x\n")
    with pytest.raises(FormatError, match=r"b\.ofs: a synchronisation file .* must hold only numbers"):
        read_ofs(tmp_path / "b.ofs")


def _release(root: Path, frames: int, gap: slice, syncs: dict[str, tuple[float, float, float]], centre_shift: float = 0.0) -> np.ndarray:
    """S1/Jog_1 as C3D (joint-centre points + two extra markers), .cal and .ofs files; returns the 15 joints."""
    joints = make_motion(frames, 15, 21)
    labels = [label for joint in ("pelvis", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
                                  "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "head")
              for label in JOINT_LABELS[joint]] + ["JOINT_CENTER_THORAX", "LFHD", "RFHD"]
    index = {"pelvis": 0, "l_shoulder": 1, "l_elbow": 2, "l_wrist": 3, "r_shoulder": 4, "r_elbow": 5, "r_wrist": 6,
             "l_hip": 7, "l_knee": 8, "l_ankle": 9, "r_hip": 10, "r_knee": 11, "r_ankle": 12, "head": 13}
    order = ["pelvis", "thorax", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
             "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "head"]
    points = np.zeros((frames, len(labels), 3))
    for joint, column in index.items():
        points[:, column] = joints[:, order.index(joint)]
    thorax_point = 2 * joints[:, 1] - joints[:, 14]  # so that mean(thorax point, head) = thorax
    points[:, 14] = thorax_point
    points[:, 15:] = joints[:, 14:15] + 80.0
    residuals = np.zeros((frames, len(labels)), dtype=np.int64)
    residuals[gap, 0] = -1
    c3d = root / "S1" / "Mocap_Data" / "Jog_1.c3d"
    c3d.parent.mkdir(parents=True)
    c3d.write_bytes(build_c3d(C3DSpec(points, residual_words=residuals, rate=120.0, labels=labels)))
    (root / "S1" / "Mocap_Data" / "Jog_2.c3d").write_bytes(c3d.read_bytes())
    for camera in CAMERAS:
        write_cal(root / "S1" / "Calibration_Data" / f"{camera}.cal", camera, centre_shift=centre_shift)
        write_ofs(root / "S1" / "Sync_Data" / f"Jog_1_({camera}).ofs", *syncs[camera])
    joints = joints.copy()
    joints[gap] = np.nan
    return joints


def test_release_layout_syncs_chunks_and_projects(tmp_path: Path) -> None:
    syncs = {"C1": (51.0, 12.0, 2.0), "C2": (51.0, 12.5, 1.999), "C3": (50.0, 10.0, 2.0)}
    joints = _release(tmp_path, 1600, slice(300, 310), syncs)
    dataset = convert_humaneva(tmp_path)
    # Validate = timeline [5, 367), Train = [367, 740) for S1 Jog; the mocap gap splits Validate into
    # chunks shared by the three cameras (a frame is valid when every camera's sample is).
    timeline = np.arange(5, 367)
    expected = {}
    for camera in CAMERAS:
        im_st, mc_st, mc_sc = syncs[camera]
        mocap_index = mc_st + timeline * mc_sc - 1
        expected[camera] = np.stack([np.stack([np.interp(mocap_index, np.arange(1600), joints[:, j, d]) for d in range(3)], -1)
                                     for j in range(15)], 1)
    gap = np.any([np.isnan(e).any(axis=(1, 2)) for e in expected.values()], axis=0)
    runs = contiguous_chunks(~gap)
    assert [ok for _, _, ok in runs] == [True, False, True]
    for camera in CAMERAS:
        for number in (0, 2):
            a, b, _ = runs[number]
            sequence = dataset[f"Validate/S1/Jog 1 chunk{number}/{camera}"]
            np.testing.assert_allclose(sequence.joints_world[0], expected[camera][a:b], atol=2e-3, rtol=0)
            assert sequence.attributes["first_frame"] == str(5 + a)
            expected_cam = world_to_camera_ref(expected[camera][a:b], *HE_EXTRINSICS_S1[camera])
            np.testing.assert_allclose(sequence.keypoints["gt"].xy[0], project_opencv_ref(expected_cam, camera), atol=3e-3, rtol=0)
        assert f"Validate/S1/Jog 1 chunk1/{camera}" not in dataset.splits["test"]
        train = dataset[f"Train/S1/Jog 1 chunk0/{camera}"]
        assert train.n_frames == 740 - 367
    notes = dataset.provenance["notes"]
    assert any("Jog_2.c3d: only trial 1" in n for n in notes)
    assert any("chunk1 dropped" in n for n in notes)
    assert any(n.startswith("release mocap: joints are means of the C3D joint-centre points") for n in notes)


def test_release_layout_errors(tmp_path: Path) -> None:
    syncs = dict.fromkeys(CAMERAS, (51.0, 12.0, 2.0))
    _release(tmp_path / "shifted", 1600, slice(0, 0), syncs, centre_shift=50.0)
    with pytest.raises(FormatError, match=r"C1\.cal: camera C1 of S1 differs from the built-in extrinsics .* centre by 86.6 mm"):  # 50 mm on each axis
        convert_humaneva(tmp_path / "shifted")
    _release(tmp_path / "labels", 1600, slice(0, 0), syncs)
    labels = tmp_path / "labels.toml"
    labels.write_text("\n".join(f'{j} = ["{j.upper()}"]' for j in ("pelvis", "thorax", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder",
                                                                  "r_elbow", "r_wrist", "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "head")))
    result = CliRunner().invoke(command, [str(tmp_path / "labels"), "-o", str(tmp_path / "x.parquet"), "--joint-labels", str(labels)])
    assert isinstance(result.exception, FormatError)
    assert "points ['HEAD', 'L_ANKLE'" in str(result.exception) and "JOINT_CENTER_PELVIS" in str(result.exception)
    (tmp_path / "labels" / "S1" / "Sync_Data" / "Jog_1_(C2).ofs").unlink()
    with pytest.raises(FormatError, match=r"Jog_1_\(C2\)\.ofs: no such file"):
        convert_humaneva(tmp_path / "labels")
    with pytest.raises(PosebenchError, match=r"no HumanEva-I data found(.|\n)*data_3d_humaneva15\.npz(.|\n)*Mocap_Data"):
        convert_humaneva(tmp_path / "labels" / "S1")
