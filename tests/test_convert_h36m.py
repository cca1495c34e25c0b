"""Human3.6M converter: release CDF trees, h36m-fetch trees and VideoPose3D npz files, checked numerically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from converters.h36m import command, convert_h36m, normalise_action
from posebench.dataset import load
from posebench.errors import FormatError, PosebenchError
from h36m_fixtures import (
    H36M_CAMERAS,
    H36M_EXTRINSICS,
    KEPT_32,
    make_motion,
    project_h36m_ref,
    world_to_camera_ref,
    write_metadata_xml,
    write_npz,
    write_pose_cdf,
    write_release,
)

FRAMES = 40
RELEASE = ("MyPoseFeatures/D3_Positions", "MyPoseFeatures/D3_Positions_mono", "MyPoseFeatures/D2_Positions")
FETCH = ("Poses_D3_Positions", "Poses_D3_Positions_mono", "Poses_D2_Positions")
TAKES = {("S1", "Walking 1"): 1, ("S1", "TakingPhoto"): 2, ("S11", "Directions"): 3, ("S11", "Directions 1"): 4}


def _takes() -> dict[tuple[str, str], np.ndarray]:
    return {key: make_motion(FRAMES, 32, seed) for key, seed in TAKES.items()}


def _check_sequence(dataset, subject: str, action: str, world32: np.ndarray) -> None:
    """World joints = the kept 32 columns; camera joints and gt 2D = the reference formulas."""
    for camera in H36M_CAMERAS:
        sequence = dataset[f"{subject}/{action}/{camera}"]
        expected_world = world32[:, KEPT_32]
        np.testing.assert_allclose(sequence.joints_world[0], expected_world, atol=1e-3, rtol=0)
        q, centre = H36M_EXTRINSICS[subject][camera]
        expected_cam = world_to_camera_ref(expected_world, q, centre)
        np.testing.assert_allclose(sequence.joints_cam[0], expected_cam, atol=2e-3, rtol=0)
        np.testing.assert_allclose(sequence.keypoints["gt"].xy[0], project_h36m_ref(expected_cam, camera), atol=2e-3, rtol=0)
        assert sequence.camera.camera_id == f"{subject}/{camera}"
        assert sequence.fps == 50 and sequence.action == action and sequence.take == f"{subject}/{action}"


def test_release_tree_converts_with_verified_cameras(tmp_path: Path) -> None:
    takes = _takes()
    write_release(tmp_path, takes, RELEASE)
    write_release(tmp_path, {("S1", "_ALL"): make_motion(5, 32, 9)}, RELEASE, mono=False, d2=False)
    write_metadata_xml(tmp_path / "metadata.xml")
    dataset = convert_h36m(tmp_path)
    assert len(dataset) == 16
    for (subject, file_action), world in takes.items():
        _check_sequence(dataset, subject, normalise_action(file_action), world)
    photo = dataset["S1/Photo/54138969"]
    assert photo.attributes["file_action"] == "TakingPhoto" and photo.attributes["base_action"] == "Photo"
    assert float(photo.attributes["max_deviation_D2_Positions"].split()[0]) < 0.01
    assert "known_issue" in dataset["S11/Directions/60457274"].attributes
    assert "known_issue" not in dataset["S11/Directions 1/60457274"].attributes
    assert sorted(dataset.splits["train"]) == sorted(f"S1/{a}/{c}" for a in ("Walking 1", "Photo") for c in H36M_CAMERAS)
    assert sorted(dataset.splits["test"]) == sorted(f"S11/{a}/{c}" for a in ("Directions", "Directions 1") for c in H36M_CAMERAS)
    notes = dataset.provenance["notes"]
    assert any(n.startswith("metadata.xml agrees with the built-in cameras") for n in notes)
    assert any("S11/Directions: kept and flagged" in n for n in notes)
    assert not any("_ALL" in s.sequence_id for s in dataset)


def test_h36m_fetch_tree_and_detections_with_length_mismatch(tmp_path: Path) -> None:
    takes = {("S1", "WalkingDog"): make_motion(FRAMES, 32, 5)}
    write_release(tmp_path, takes, FETCH, dtype=np.float32)
    rng = np.random.default_rng(0)
    cpn = [rng.uniform(100, 900, size=(FRAMES + 3, 17, 2)).astype(np.float32) for _ in H36M_CAMERAS]
    coco = [np.concatenate([rng.uniform(100, 900, size=(FRAMES - 4, 17, 2)), rng.uniform(0, 1, size=(FRAMES - 4, 17, 1))], -1).astype(np.float32)
            for _ in H36M_CAMERAS]
    coco[2] = None
    write_npz(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d={"S1": {"WalkDog": cpn}},
              metadata={"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]})
    write_npz(tmp_path / "data_2d_h36m_detectron_pt_coco.npz", positions_2d={"S1": {"WalkDog": coco}},
              metadata={"num_joints": 17, "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]})
    dataset = convert_h36m(tmp_path, source_names={"cpn_ft_h36m_dbb": "cpn"})
    _check_sequence(dataset, "S1", "WalkDog", takes[("S1", "WalkingDog")])
    assert dataset.provenance["layout"] == "h36m-fetch"
    assert dataset.keypoint_sources["cpn"]["skeleton"] == "h36m17"
    assert dataset.keypoint_sources["detectron_pt_coco"]["skeleton"] == "coco17"
    for index, camera in enumerate(H36M_CAMERAS):
        sequence = dataset[f"S1/WalkDog/{camera}"]
        np.testing.assert_array_equal(sequence.keypoints["cpn"].xy[0], cpn[index][:FRAMES])
        assert np.all(sequence.keypoints["cpn"].confidence == 1)
        if coco[index] is None:
            assert "detectron_pt_coco" not in sequence.keypoints
            continue
        keypoints = sequence.keypoints["detectron_pt_coco"]
        np.testing.assert_array_equal(keypoints.xy[0, : FRAMES - 4], coco[index][..., :2])
        np.testing.assert_array_equal(keypoints.confidence[0, : FRAMES - 4], coco[index][..., 2])
        assert np.isnan(keypoints.xy[0, FRAMES - 4:]).all() and np.all(keypoints.confidence[0, FRAMES - 4:] == 0)
    notes = dataset.provenance["notes"]
    assert any(f"{FRAMES + 3} detection frames truncated to the mocap's {FRAMES}" in n for n in notes)
    assert any("WalkDog/58860488: no detections" in n for n in notes)
    assert any("the last 4 frames have no detection" in n for n in notes)


def test_videopose3d_layout_with_gt_file_and_cli(tmp_path: Path) -> None:
    worlds = {"S1": {"Walking 1": make_motion(FRAMES, 32, 11)}, "S11": {"Photo": make_motion(FRAMES, 32, 12)}}
    write_npz(tmp_path / "data_3d_h36m.npz", positions_3d={s: {a: (w / 1000).astype(np.float32) for a, w in actions.items()} for s, actions in worlds.items()})
    gt = {s: {a: [project_h36m_ref(world_to_camera_ref(w[:, KEPT_32], *H36M_EXTRINSICS[s][c]), c).astype(np.float32) for c in H36M_CAMERAS]
              for a, w in actions.items()} for s, actions in worlds.items()}
    write_npz(tmp_path / "data_2d_h36m_gt.npz", positions_2d=gt, metadata={"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]})
    dataset = convert_h36m(tmp_path / "data_3d_h36m.npz")
    assert sorted(dataset.keypoint_sources) == ["gt"]
    for subject, actions in worlds.items():
        for action, world in actions.items():
            _check_sequence(dataset, subject, action, (world / 1000).astype(np.float32).astype(np.float64) * 1000)
    assert any("S11/Directions is absent" in n for n in dataset.provenance["notes"])
    output = tmp_path / "out.parquet"
    result = CliRunner().invoke(command, [str(tmp_path), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert f"wrote {output}: 8 sequences, 2D sources gt" in result.output
    loaded = load(output)
    assert len(loaded) == 8 and loaded.splits == dataset.splits
    np.testing.assert_array_equal(loaded["S11/Photo/55011271"].keypoints["gt"].xy, dataset["S11/Photo/55011271"].keypoints["gt"].xy)


def test_wrong_calibration_or_mismatched_files_are_errors(tmp_path: Path) -> None:
    motion = make_motion(FRAMES, 32, 7)
    write_release(tmp_path, {("S1", "Eating"): motion}, RELEASE, mono=False)
    write_metadata_xml(tmp_path / "metadata.xml", {("S1", "55011271", 4): 100.0})
    with pytest.raises(FormatError, match=r"camera 55011271 of subject S1: centre differs from the built-in calibration"):
        convert_h36m(tmp_path)
    write_metadata_xml(tmp_path / "metadata.xml", {("", "58860488", 6 + 7): 0.5})
    with pytest.raises(FormatError, match=r"camera 58860488 of subject S1: distortion differs"):
        convert_h36m(tmp_path)
    (tmp_path / "metadata.xml").unlink()
    camera = "60457274"
    own = project_h36m_ref(world_to_camera_ref(motion, *H36M_EXTRINSICS["S1"][camera]), camera)
    write_pose_cdf(tmp_path / "S1" / RELEASE[2] / f"Eating.{camera}.cdf", (own + 5.0).reshape(FRAMES, -1))
    with pytest.raises(FormatError, match=r"S1/Eating.60457274: the release's D2_Positions differs .* by up to 7.07 px"):
        convert_h36m(tmp_path)


def test_missing_data_and_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PosebenchError, match=r"no Human3\.6M data found(.|\n)*S1/MyPoseFeatures/D3_Positions(.|\n)*Poses_D3_Positions(.|\n)*data_3d_h36m\.npz"):
        convert_h36m(tmp_path)
    write_npz(tmp_path / "data_3d_h36m.npz", positions_3d={"S1": {"Walking": np.zeros((5, 17, 3), np.float32)}})
    with pytest.raises(FormatError, match=r"positions_3d\['S1'\]\['Walking'\] must be a float array \(frames, 32, 3\)"):
        convert_h36m(tmp_path)
    write_npz(tmp_path / "data_3d_h36m.npz", positions_3d={"S1": {"Walking": (make_motion(5, 32, 1) / 1000).astype(np.float32)}})
    write_npz(tmp_path / "data_2d_h36m_sh_ft.npz", positions_2d={"S1": {"Walking": [np.zeros((5, 16, 2), np.float32)]}},
              metadata={"num_joints": 16, "keypoints_symmetry": [[3, 4, 5, 13, 14, 15], [0, 1, 2, 10, 11, 12]]})
    with pytest.raises(FormatError, match=r"data_2d_h36m_sh_ft\.npz: cannot tell the keypoint layout"):
        convert_h36m(tmp_path)
