"""``posebench convert mocap``: real CMU BVH and C3D, Plug-in Gait C3D, Pose2Sim TRC, virtual cameras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import posebench
from converters.mocap import convert_mocap, nominal_rate, split_persons, up_axis_rotation
from posebench.cli import cli
from posebench.errors import PosebenchError
from posebench.skeletons import get_skeleton

DATA = Path(__file__).parent / "data"
CMU_TAKE = [DATA / "bvh" / "18_01.bvh", DATA / "bvh" / "19_01.bvh"]
PIG = DATA / "c3d" / "BTKData" / "PiG" / "PiG_Motion-FlatFoot-Full.c3d"
CMU_C3D = DATA / "c3d" / "cmu" / "02_01.c3d"
TRC = DATA / "trc" / "S00_P01_T02_Participants1-2_P2_0-100.trc"
H36M = get_skeleton("h36m17")


@pytest.fixture(scope="module")
def handshake():
    return convert_mocap(CMU_TAKE, take="18_01", action="walk, shake hands", subjects=["cmu18", "cmu19"], cameras="ring4+handheld")


def _bone_lengths(joints: np.ndarray) -> np.ndarray:
    return np.stack([np.linalg.norm(joints[..., c, :] - joints[..., p, :], axis=-1) for c, p in H36M.bones], axis=-1)


def test_two_subjects_of_one_take_become_one_sequence_per_camera_with_two_persons(handshake):
    assert handshake.sequence_ids == ["18_01/ring_0", "18_01/ring_1", "18_01/ring_2", "18_01/ring_3", "18_01/handheld"]
    sequence = handshake["18_01/ring_0"]
    assert sequence.subjects == ["cmu18", "cmu19"] and sequence.n_frames == 304 and sequence.fps == 120.0
    roots = sequence.joints_world[:, :, H36M.index("pelvis")]
    distance = np.linalg.norm(roots[0] - roots[1], axis=-1)
    assert distance.min() < 1000.0  # they meet for the handshake
    assert distance[:20].min() > 1500.0  # and start apart


def test_bvh_joints_are_anatomically_plausible(handshake):
    world = handshake[0].joints_world.astype(np.float64)
    lengths = _bone_lengths(world)
    assert np.all(lengths.std(axis=1) < 1.0)  # forward kinematics: rigid bones
    heights = world[:, :, H36M.index("head_top"), 2].max(axis=1)
    assert np.all((heights > 1450) & (heights < 2000))
    feet = world[:, :, [H36M.index("l_ankle"), H36M.index("r_ankle")], 2].min(axis=(1, 2))
    assert np.all((feet > -20) & (feet < 150))


def test_left_is_left(handshake):
    # frames 16-112: both subjects walk towards each other before the handshake
    world = handshake[0].joints_world[:, 16:113].astype(np.float64)
    velocity = np.gradient(world[:, :, H36M.index("pelvis")], axis=1)
    left = world[:, :, H36M.index("l_hip")] - world[:, :, H36M.index("r_hip")]
    facing = np.cross(left, np.array([0.0, 0.0, 1.0]))  # with z up, left x up points forward
    assert (np.sum(facing * velocity, axis=-1) > 0).all()


def test_virtual_camera_keypoints_are_the_camera_projection(handshake):
    for sequence in handshake:
        expected = sequence.camera.project(sequence.camera.world_to_camera(sequence.joints_world.astype(np.float64)))
        keypoints = sequence.keypoints["gt"]
        np.testing.assert_allclose(keypoints.xy, expected, rtol=0, atol=1e-3)
        assert keypoints.occluded.any() and not keypoints.occluded.all()
    assert handshake["18_01/handheld"].camera.is_moving
    assert not handshake["18_01/ring_0"].camera.is_moving


def test_plug_in_gait_c3d_uses_the_model_outputs_and_is_plausible():
    dataset = convert_mocap([PIG])
    sequence = dataset[0]
    assert sequence.fps == 100.0 and sequence.n_persons == 1
    notes = " ".join(dataset.provenance["notes"])
    assert "marker set 'plug-in-gait-outputs'" in notes
    world = sequence.joints_world[0].astype(np.float64)
    lengths = _bone_lengths(world)
    assert np.nanmax(np.nanstd(lengths, axis=0)) < 10.0
    assert 1400 < np.nanmax(world[:, H36M.index("head_top"), 2]) < 2000
    assert np.nanmin(world[:, [H36M.index("l_ankle"), H36M.index("r_ankle")], 2]) < 150
    # PiG's femur origin is the knee joint centre, 40 mm or so medial of the lateral knee marker
    left_right = world[:, H36M.index("l_knee")] - world[:, H36M.index("r_knee")]
    hips = world[:, H36M.index("l_hip")] - world[:, H36M.index("r_hip")]
    assert np.nanmedian(np.sum(left_right * hips, axis=-1)) > 0


def test_cmu_c3d_with_subject_prefix_and_cmu_markerset():
    dataset = convert_mocap([CMU_C3D], fps=60.0)
    sequence = dataset[0]
    assert sequence.subjects == ["TakeoMonday"]
    assert sequence.fps == 60.0
    np.testing.assert_allclose(np.diff(sequence.timestamps), 1 / 60.0)
    assert "marker set 'cmu'" in " ".join(dataset.provenance["notes"])
    world = sequence.joints_world[0].astype(np.float64)
    assert 1500 < np.nanmax(world[:, H36M.index("head_top"), 2]) < 2100


def test_pose2sim_trc_in_metres_and_y_up_becomes_mm_and_z_up():
    dataset = convert_mocap([TRC])
    world = dataset[0].joints_world[0].astype(np.float64)
    assert "rotated so that the recording's up axis becomes +z" in " ".join(dataset.provenance["notes"])
    assert 1500 < np.nanmax(world[:, H36M.index("head_top"), 2]) < 2000
    assert np.nanmin(world[:, H36M.index("r_ankle"), 2]) < 200


def test_short_gaps_are_filled_and_recorded_long_ones_stay_nan(tmp_path):
    lines = TRC.read_text().splitlines(keepends=True)
    header, rows = lines[:5], lines[5:]
    names = lines[3].split("\t")
    column = names.index("RKnee")  # x of RKnee is column `column`, then y, z
    for row in list(range(20, 24)) + list(range(50, 70)):  # a 4-frame and a 20-frame gap
        fields = rows[row].rstrip("\r\n").split("\t")
        fields[column : column + 3] = ["", "", ""]
        rows[row] = "\t".join(fields) + "\n"
    holed = tmp_path / "holed.trc"
    holed.write_text("".join(header + rows))
    knee = H36M.index("r_knee")
    unfilled = convert_mocap([holed], max_gap=0)[0].joints_world[0, :, knee, 0]
    dataset = convert_mocap([holed], max_gap=10)
    filled = dataset[0].joints_world[0, :, knee, 0]
    assert np.isnan(unfilled[20:24]).all() and np.isnan(unfilled[50:70]).all()
    assert np.isfinite(filled[20:24]).all() and np.isnan(filled[50:70]).all()
    original = convert_mocap([TRC])[0].joints_world[0, 20:24, knee].astype(np.float64)
    np.testing.assert_allclose(dataset[0].joints_world[0, 20:24, knee], original, atol=30.0)
    assert "4 joint samples filled by cubic interpolation (gaps <= 10 frames)" in " ".join(dataset.provenance["notes"])


def test_provenance_has_hashes_and_options():
    dataset = convert_mocap(CMU_TAKE, take="t")
    inputs = dataset.provenance["inputs"]
    assert [i["file"] for i in inputs] == ["18_01.bvh", "19_01.bvh"]
    assert all(len(i["sha256"]) == 64 for i in inputs)
    assert dataset.provenance["converter"] == "mocap"
    assert dataset.provenance["options"]["max_gap"] == 10


def test_splits_by_take():
    dataset = convert_mocap([CMU_TAKE[0], TRC], cameras="ring4", splits={"train": ["18_01"], "test": [TRC.stem]})
    assert dataset.splits["train"] == [f"18_01/ring_{i}" for i in range(4)]
    with pytest.raises(PosebenchError, match="names takes \\['nope'\\]"):
        convert_mocap([TRC], splits={"test": ["nope"]})


def test_takes_joined_with_plus_and_per_take_labels():
    joined = "+".join(str(p) for p in CMU_TAKE)
    dataset = convert_mocap([joined, TRC], action={"18_01": "shake hands"}, subjects={"18_01": ["cmu18", "cmu19"]})
    assert dataset.sequence_ids == ["18_01", TRC.stem]
    assert dataset["18_01"].subjects == ["cmu18", "cmu19"] and dataset["18_01"].action == "shake hands"
    assert dataset[TRC.stem].action == TRC.stem
    with pytest.raises(PosebenchError, match="--action names takes \\['19_01'\\]"):
        convert_mocap([joined], action={"19_01": "x"})


def test_helpers():
    assert split_persons(["A:X", "A:Y", "B:X", "Z"]) == {"A": [0, 1], "B": [2], "": [3]}
    assert nominal_rate(np.arange(10) * 0.0083333) == 120.0
    assert nominal_rate(np.arange(10) / 59.94) == pytest.approx(59.94)
    y_up = np.zeros((1, 2, 17, 3))
    y_up[..., H36M.index("head_top"), 1] = 1700
    rotation = up_axis_rotation(y_up)
    np.testing.assert_allclose(rotation @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    assert np.isclose(np.linalg.det(rotation), 1.0)


def test_errors_name_the_problem(tmp_path):
    bogus = tmp_path / "take.fbx"
    bogus.write_text("x")
    with pytest.raises(PosebenchError, match="unknown mocap format '.fbx'; posebench reads .c3d, .bvh and .trc"):
        convert_mocap([bogus])
    with pytest.raises(PosebenchError, match="different frame rates"):
        convert_mocap([CMU_TAKE[0], PIG], take="mixed")
    with pytest.raises(PosebenchError, match="--subjects names 1 persons but take 't' has 2"):
        convert_mocap(CMU_TAKE, take="t", subjects=["one"])


def test_cli_converts_and_the_result_validates(tmp_path):
    output = tmp_path / "shake.h5"
    result = CliRunner().invoke(
        cli, ["convert", "mocap", *map(str, CMU_TAKE), "--take", "18_01", "--cameras", "ring4", "--format", "hdf5", "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "2 persons (18_01, 19_01), 304 frames at 120 Hz" in result.output
    dataset = posebench.load(output)
    assert len(dataset) == 4
    assert CliRunner().invoke(cli, ["validate", str(output)]).exit_code == 0


def test_cli_c3d_alias_and_user_errors(tmp_path):
    result = CliRunner().invoke(cli, ["convert", "c3d", str(CMU_C3D), "-o", str(tmp_path / "a.parquet")])
    assert result.exit_code == 0, result.output
    missing = CliRunner().invoke(cli, ["convert", "mocap", str(tmp_path / "none.c3d"), "-o", str(tmp_path / "b.parquet")])
    assert missing.exit_code == 1
    assert missing.output.strip() == f"Error: {tmp_path / 'none.c3d'}: no such file"
    bad_split = CliRunner().invoke(cli, ["convert", "mocap", str(CMU_C3D), "--split", "train", "-o", str(tmp_path / "c.parquet")])
    assert bad_split.exit_code == 2
    assert "expected SPLIT=TAKE" in bad_split.output
    twice = CliRunner().invoke(cli, ["convert", "mocap", str(CMU_C3D), "--action", "a", "--action", "b", "-o", str(tmp_path / "e.parquet")])
    assert twice.exit_code == 1 and "--action was given 2 times without TAKE=" in twice.output
    bad_cameras = CliRunner().invoke(cli, ["convert", "mocap", str(CMU_C3D), "--cameras", "ring0", "-o", str(tmp_path / "d.parquet")])
    assert bad_cameras.exit_code == 1
    assert not (tmp_path / "d.parquet").exists()
