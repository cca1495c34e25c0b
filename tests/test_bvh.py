"""Tests of the BVH reader: parsing, forward kinematics, units, axes, CMU mapping and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posebench.errors import BVHError, FormatError
from posebench.skeletons import get_skeleton
from posebench.io.bvh import (
    CMU_TO_H36M17,
    MM_PER_UNIT,
    bvh_to_h36m17,
    infer_unit,
    parse_bvh,
    read_bvh,
    to_z_up,
)

DATA = Path(__file__).parent / "data" / "bvh"
CMU_FILES = ["18_01.bvh", "19_01.bvh", "18_01_crlf.bvh", "09_03.bvh", "16_46.bvh", "35_24.bvh"]
FOOT_POINTS = (
    "LeftToeBase_end",
    "RightToeBase_end",
    "LeftToeBase",
    "RightToeBase",
    "LeftFoot",
    "RightFoot",
)


@pytest.fixture(scope="module")
def cmu() -> dict[str, object]:
    return {name: read_bvh(DATA / name) for name in CMU_FILES}


def _bvh(
    root_channels: str, joint_channels: str, joint_offset: str, end_offset: str, rows: list[str]
) -> str:
    return (
        "HIERARCHY\n"
        "ROOT A\n{\n\tOFFSET 0 0 0\n"
        f"\tCHANNELS {len(root_channels.split())} {root_channels}\n"
        "\tJOINT B\n\t{\n"
        f"\t\tOFFSET {joint_offset}\n"
        f"\t\tCHANNELS {len(joint_channels.split())} {joint_channels}\n"
        "\t\tEnd Site\n\t\t{\n"
        f"\t\t\tOFFSET {end_offset}\n"
        "\t\t}\n\t}\n}\n"
        "MOTION\n"
        f"Frames: {len(rows)}\n"
        "Frame Time: 0.01\n" + "\n".join(rows) + "\n"
    )


# --- forward kinematics against positions worked out by hand --------------------------------


def test_fk_zxy_order_by_hand() -> None:
    # Root: translate (1, 2, 3), R_A = Rz(90) @ Rx(90). B offset (0, 10, 0): Rx(90) takes it to
    # (0, 0, 10), Rz(90) leaves it: B = (1, 2, 13). B: R_B = Ry(90); end offset (0, 0, 5): Ry(90)
    # gives (5, 0, 0), Rx(90) leaves it, Rz(90) gives (0, 5, 0): end = (1, 7, 13).
    # Second row: everything zero, so the rest pose: A = 0, B = (0, 10, 0), end = (0, 10, 5).
    text = _bvh(
        "Xposition Yposition Zposition Zrotation Xrotation Yrotation",
        "Zrotation Xrotation Yrotation",
        "0 10 0",
        "0 0 5",
        ["1 2 3 90 90 0 0 0 90", "0 0 0 0 0 0 0 0 0"],
    )
    motion = parse_bvh(text, unit="mm")
    assert motion.point_names == ("A", "B", "B_end")
    np.testing.assert_allclose(motion.positions[0], [[1, 2, 3], [1, 2, 13], [1, 7, 13]], atol=1e-12)
    np.testing.assert_allclose(motion.positions[1], [[0, 0, 0], [0, 10, 0], [0, 10, 5]], atol=1e-12)


def test_fk_xyz_order_by_hand() -> None:
    # R_A = Rx(90) @ Ry(90). B offset (0, 0, 10): Ry(90) gives (10, 0, 0), Rx(90) leaves it:
    # B = (10, 0, 0) (the reversed order would give (0, -10, 0)). R_B = Rz(90); end offset
    # (0, 3, 0): Rz(90) gives (-3, 0, 0), Ry(90) gives (0, 0, 3), Rx(90) gives (0, -3, 0):
    # end = (10, -3, 0).
    text = _bvh(
        "Xposition Yposition Zposition Xrotation Yrotation Zrotation",
        "Xrotation Yrotation Zrotation",
        "0 0 10",
        "0 3 0",
        ["0 0 0 90 90 0 0 0 90"],
    )
    motion = parse_bvh(text, unit="mm")
    np.testing.assert_allclose(
        motion.positions[0], [[0, 0, 0], [10, 0, 0], [10, -3, 0]], atol=1e-12
    )


def test_fk_single_channel_and_position_channels_on_a_joint() -> None:
    # Root rotates 30 degrees about Y only (no position channels). B has position channels
    # (added to its offset, (2, 0, 0) + (0, 0, 4) = (2, 0, 4)) and no rotation.
    # Ry(30) (2, 0, 4) = (2 cos30 + 4 sin30, 0, -2 sin30 + 4 cos30).
    text = _bvh("Yrotation", "Xposition Yposition Zposition", "2 0 0", "0 1 0", ["30 0 0 4"])
    motion = parse_bvh(text, unit="mm")
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    b = [2 * c + 4 * s, 0.0, -2 * s + 4 * c]
    np.testing.assert_allclose(motion.positions[0], [[0, 0, 0], b, [b[0], 1.0, b[2]]], atol=1e-12)


def test_fk_matches_scipy_on_real_file(cmu) -> None:
    """World positions of 18_01 recomputed joint by joint with scipy's intrinsic Euler angles."""
    motion = cmu["18_01.bvh"]
    frames = motion.num_frames
    world_rot, world_pos, column = {}, {}, 0
    for joint, channels in enumerate(motion.channels):
        values = motion.motion[:, column : column + len(channels)]
        column += len(channels)
        rot_names = [c for c in channels if c.endswith("rotation")]
        angles = values[:, [channels.index(c) for c in rot_names]]
        local = Rotation.from_euler("".join(c[0] for c in rot_names), angles, degrees=True)
        translation = np.tile(motion.offsets[joint], (frames, 1))
        for axis, name in enumerate(("Xposition", "Yposition", "Zposition")):
            if name in channels:
                translation[:, axis] += values[:, channels.index(name)]
        parent = motion.parents[joint]
        if parent < 0:
            world_rot[joint], world_pos[joint] = local, translation
        else:
            world_pos[joint] = world_pos[parent] + world_rot[parent].apply(translation)
            world_rot[joint] = world_rot[parent] * local
    expected = [world_pos[j] for j in range(len(motion.joint_names))]
    for parent, offset in zip(motion.end_site_parents, motion.end_site_offsets):
        expected.append(world_pos[parent] + world_rot[parent].apply(np.tile(offset, (frames, 1))))
    np.testing.assert_allclose(motion.positions, np.stack(expected, axis=1), atol=1e-9)


# --- the real CMU files -------------------------------------------------------------------


def test_cmu_structure(cmu) -> None:
    for name, motion in cmu.items():
        assert len(motion.joint_names) == 31, name
        assert motion.joint_names[:3] == ("Hips", "LHipJoint", "LeftUpLeg")
        assert motion.parents[0] == -1 and (motion.parents[1:] < np.arange(1, 31)).all()
        assert motion.channels[0] == (
            "Xposition",
            "Yposition",
            "Zposition",
            "Zrotation",
            "Yrotation",
            "Xrotation",
        )
        assert all(c == ("Zrotation", "Yrotation", "Xrotation") for c in motion.channels[1:])
        assert motion.motion.shape == (motion.num_frames, 6 + 30 * 3)
        assert motion.frame_time == pytest.approx(0.0083333)
        assert motion.rate == pytest.approx(120.0, rel=1e-5)
        assert "Head_end" in motion.end_site_names and len(motion.end_site_names) == 7
        assert motion.positions.shape == (motion.num_frames, 38, 3)
    assert cmu["18_01.bvh"].num_frames == 304 and cmu["19_01.bvh"].num_frames == 304
    np.testing.assert_array_equal(cmu["18_01.bvh"].motion[0, :3], [9.2465, 17.8507, 15.8856])
    np.testing.assert_array_equal(cmu["18_01.bvh"].offsets[2], [1.37959, -1.78713, 0.86582])


def test_crlf_file_equals_lf_file(cmu) -> None:
    lf, crlf = cmu["18_01.bvh"], cmu["18_01_crlf.bvh"]
    assert b"\r\n" in (DATA / "18_01_crlf.bvh").read_bytes()
    assert lf.joint_names == crlf.joint_names and lf.channels == crlf.channels
    assert lf.end_site_names == crlf.end_site_names and lf.frame_time == crlf.frame_time
    for field in (
        "parents",
        "offsets",
        "motion",
        "end_site_parents",
        "end_site_offsets",
        "positions",
    ):
        np.testing.assert_array_equal(getattr(lf, field), getattr(crlf, field))


def test_bone_lengths_constant_and_equal_to_offsets(cmu) -> None:
    for name, motion in cmu.items():
        positions = motion.positions_mm
        parents = np.concatenate([motion.parents, motion.end_site_parents])
        offsets = np.concatenate([motion.offsets, motion.end_site_offsets]) * motion.mm_per_unit
        for child, parent in enumerate(parents):
            if parent < 0:
                continue
            length = np.linalg.norm(positions[:, child] - positions[:, parent], axis=1)
            expected = np.linalg.norm(offsets[child])
            np.testing.assert_allclose(length, expected, rtol=1e-6, atol=1e-9, err_msg=name)


def test_cmu_unit_and_body_height(cmu) -> None:
    # The CMU unit is 1/0.45 inch = 56.444 mm. Height of the T-pose of frame 0 (head End Site
    # above the lowest toe) lies at 1.50-1.56 m for these subjects; joint-centre skeletons
    # miss the skull above the head End Site and the sole, so the bound starts at 1.4 m.
    assert MM_PER_UNIT["cmu"] == pytest.approx(56.4444, abs=1e-4)
    for name, motion in cmu.items():
        assert motion.units_assumed == "cmu" and motion.mm_per_unit == MM_PER_UNIT["cmu"], name
        up = to_z_up(motion.positions_mm[0])[:, 2]
        height = up[motion.point_index("Head_end")] - up.min()
        assert 1400.0 < height < 2000.0, (name, height)
    head = cmu["18_01.bvh"].positions[0, cmu["18_01.bvh"].point_index("Head_end"), 1]
    toe = cmu["18_01.bvh"].positions[0, cmu["18_01.bvh"].point_index("RightToeBase_end"), 1]
    assert (head - toe) * 25.4 / 0.45 == pytest.approx(1504.3, abs=0.5)


def test_feet_on_the_floor_after_to_z_up(cmu) -> None:
    for name, motion in cmu.items():
        points = to_z_up(motion.positions_mm)
        feet = [motion.point_index(n) for n in FOOT_POINTS]
        lowest = points[:, feet, 2].min(axis=1)
        assert -50.0 < np.median(lowest) < 80.0, (name, np.median(lowest))
        head = points[:, motion.point_index("Head_end"), 2]
        assert (head - lowest > 1000.0).mean() > 0.9, name


def _facing(motion, points: np.ndarray) -> np.ndarray:
    """Horizontal facing direction: the person's left (right hip to left hip) cross up."""
    left = points[:, motion.point_index("LeftUpLeg")] - points[:, motion.point_index("RightUpLeg")]
    return np.cross(left, [0.0, 0.0, 1.0])


def _velocity(motion, points: np.ndarray) -> np.ndarray:
    velocity = np.gradient(points[:, 0], axis=0) * motion.rate
    velocity[:, 2] = 0.0
    return velocity


def test_left_and_right_not_swapped_runs(cmu) -> None:
    """Runners move where they face; facing is derived from the left/right hip names."""
    for name in ("09_03.bvh", "16_46.bvh", "35_24.bvh"):
        motion = cmu[name]
        points = to_z_up(motion.positions_mm)
        velocity = _velocity(motion, points)
        moving = np.linalg.norm(velocity, axis=1) > 1000.0
        assert moving.mean() > 0.8, name
        assert ((_facing(motion, points) * velocity).sum(axis=1)[moving] > 0).all(), name


def test_handshake_take(cmu) -> None:
    """18_01 and 19_01 share a world frame: they walk towards each other and shake right hands."""
    a, b = cmu["18_01.bvh"], cmu["19_01.bvh"]
    pa, pb = to_z_up(a.positions_mm), to_z_up(b.positions_mm)
    roots = np.linalg.norm(pa[:, 0] - pb[:, 0], axis=1)
    assert roots[0] > 1500.0 and roots.min() < 1000.0
    approach = slice(16, 113)
    for motion, points in ((a, pa), (b, pb)):
        velocity = _velocity(motion, points)[approach]
        assert ((_facing(motion, points)[approach] * velocity).sum(axis=1) > 0).all()
    ha, hb = bvh_to_h36m17(a), bvh_to_h36m17(b)
    right = np.linalg.norm(ha[:, 16] - hb[:, 16], axis=1)
    left = np.linalg.norm(ha[:, 13] - hb[:, 13], axis=1)
    assert right.min() < 450.0 and left.min() > 800.0


# --- h36m17 mapping ---------------------------------------------------------------------


def test_bvh_to_h36m17(cmu) -> None:
    motion = cmu["18_01.bvh"]
    joints = bvh_to_h36m17(motion)
    assert joints.shape == (304, 17, 3)
    assert tuple(CMU_TO_H36M17) == get_skeleton("h36m17").joints
    mm = motion.positions_mm
    np.testing.assert_allclose(
        joints[:, 0],
        (mm[:, motion.point_index("LeftUpLeg")] + mm[:, motion.point_index("RightUpLeg")]) / 2,
    )
    for index, name in (
        (3, "RightFoot"),
        (8, "Neck"),
        (9, "Head"),
        (10, "Head_end"),
        (13, "LeftHand"),
    ):
        np.testing.assert_allclose(joints[:, index], mm[:, motion.point_index(name)])
    up = to_z_up(joints[0])[:, 2]
    # Vertical order in the T-pose: ankles < knees < hips < spine < thorax < neck_nose < head_top.
    assert up[3] < up[2] < up[1] < up[7] < up[8] < up[9] < up[10]
    # The subject's left is +X in the BVH frame, so the left joints have larger x in the T-pose.
    for left_joint, right_joint in ((4, 1), (6, 3), (11, 14), (13, 16)):
        assert joints[0, left_joint, 0] > joints[0, right_joint, 0]


def test_bvh_to_h36m17_needs_cmu_skeleton() -> None:
    motion = parse_bvh(_bvh("Yrotation", "Yrotation", "0 1 0", "0 1 0", ["0 0"]), unit="m")
    with pytest.raises(BVHError, match=r"not a CMU skeleton, joints .*Head.* are missing"):
        bvh_to_h36m17(motion)


# --- units and axes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "unit"), [(1.75, "m"), (175.0, "cm"), (1750.0, "mm"), (68.9, "inch"), (30.0, "cmu")]
)
def test_auto_unit(height: float, unit: str) -> None:
    half = height / 2
    text = _bvh(
        "Xposition Yposition Zposition", "Yrotation", f"0 {half} 0", f"0 {half} 0", ["0 0 0 0"]
    )
    motion = parse_bvh(text)
    assert motion.units_assumed == unit
    assert motion.mm_per_unit == MM_PER_UNIT[unit]
    np.testing.assert_allclose(motion.positions_mm[0, 2], [0.0, height * MM_PER_UNIT[unit], 0.0])


def test_explicit_unit_overrides_auto() -> None:
    motion = read_bvh(DATA / "18_01.bvh", unit="inch")
    assert motion.units_assumed == "inch" and motion.mm_per_unit == 25.4
    np.testing.assert_allclose(motion.positions_mm, motion.positions * 25.4)


def test_auto_unit_rejects_implausible_sizes() -> None:
    with pytest.raises(BVHError, match="zero size.*pass unit="):
        infer_unit(np.zeros((3, 3)), source="x.bvh")
    with pytest.raises(
        BVHError, match=r"x.bvh: rest-pose size 1e\+06 file units fits no known unit"
    ):
        infer_unit(np.array([[0, 0, 0], [0, 1e6, 0]]), source="x.bvh")


def test_to_z_up_is_a_rotation() -> None:
    points = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(
        to_z_up(points), [[1.0, -3.0, 2.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]
    )
    a, b = np.array([1.0, 0.2, -0.4]), np.array([-0.3, 2.0, 0.5])
    np.testing.assert_allclose(to_z_up(np.cross(a, b)), np.cross(to_z_up(a), to_z_up(b)))


# --- tolerated layout -------------------------------------------------------------------


def test_whitespace_tabs_blank_lines_and_cr_only() -> None:
    text = (
        "HIERARCHY\r\nROOT   Hips {\r  OFFSET\t0 0 0\n CHANNELS 3 Xposition\tYposition Zposition\n"
        "  End Site\n  {  OFFSET 0 1 0 }\n}\nMOTION\nFrames:\t2\nFrame Time:   0.5\n"
        "  1 2 3  \n\n\t4\t5\t6\r\n\n\n  \n"
    )
    motion = parse_bvh(text, unit="m")
    np.testing.assert_array_equal(motion.motion, [[1, 2, 3], [4, 5, 6]])
    assert motion.rate == 2.0 and motion.joint_names == ("Hips",)
    np.testing.assert_array_equal(motion.positions[1], [[4, 5, 6], [4, 6, 6]])


def test_zero_frames_and_channel_name_case() -> None:
    text = (
        "HIERARCHY\nROOT R\n{\nOFFSET 0 0 0\nCHANNELS 1 yROTATION\n}\n"
        "MOTION\nFrames: 0\nFrame Time: 0.1\n"
    )
    motion = parse_bvh(text, unit="m")
    assert motion.channels == (("Yrotation",),)
    assert motion.motion.shape == (0, 1) and motion.positions.shape == (0, 1, 3)


# --- errors -----------------------------------------------------------------------------

GOOD = _bvh(
    "Xposition Yposition Zposition Zrotation Xrotation Yrotation",
    "Zrotation Xrotation Yrotation",
    "0 10 0",
    "0 0 5",
    ["1 2 3 0 0 0 0 0 0", "1 2 3 0 0 0 0 0 0"],
)


def _fails(text: str, pattern: str) -> None:
    with pytest.raises(BVHError, match=pattern):
        parse_bvh(text, source="bad.bvh", unit="m")


def test_good_text_parses() -> None:
    assert parse_bvh(GOOD, unit="m").num_frames == 2


def test_error_missing_motion() -> None:
    _fails(GOOD.split("MOTION")[0], r"bad.bvh, line \d+: missing MOTION section")


def test_error_missing_hierarchy() -> None:
    _fails(
        GOOD.replace("HIERARCHY", "HIERARCY"),
        r"bad.bvh, line 1: expected 'HIERARCHY'.*got 'HIERARCY'",
    )


def test_error_wrong_number_of_values() -> None:
    text = GOOD.replace("1 2 3 0 0 0 0 0 0\n1 2", "1 2 3 0 0 0 0 0 0 7\n1 2")
    _fails(text, r"bad.bvh, line 19: expected 9 values \(one per channel\), found 10")


def test_error_truncated_last_row() -> None:
    _fails(
        GOOD.rstrip("\n")[:-6], r"bad.bvh, line 20: expected 9 values .*found 6 \(truncated row\)"
    )


def test_error_fewer_rows_than_frames() -> None:
    _fails(
        GOOD.replace("Frames: 2", "Frames: 3"),
        r"bad.bvh, line 20: truncated: 'Frames: 3' declared but only 2 rows",
    )


def test_error_more_rows_than_frames() -> None:
    _fails(
        GOOD.replace("Frames: 2", "Frames: 1"),
        r"bad.bvh, line 20: 'Frames: 1' declared but 2 rows .*correct the Frames line",
    )


def test_error_unknown_channel() -> None:
    _fails(
        GOOD.replace(
            "Zrotation Xrotation Yrotation\n\t\tEnd", "Zrotation Wrotation Yrotation\n\t\tEnd"
        ),
        r"bad.bvh, line 9: unknown channel name 'Wrotation' in joint 'B'"
        r".*expected one of Xposition",
    )


def test_error_channel_count_runs_into_next_keyword() -> None:
    _fails(
        GOOD.replace(
            "CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 4 Zrotation Xrotation Yrotation"
        ),
        r"bad.bvh, line 10: unknown channel name 'End' in joint 'B' \(CHANNELS 4\)",
    )


def test_error_non_numeric_value() -> None:
    _fails(
        GOOD.replace(
            "1 2 3 0 0 0 0 0 0\n1 2 3 0 0 0 0 0 0", "1 2 3 0 0 0 0 0 0\n1 2 3 0 0 0 0 x 0"
        ),
        r"bad.bvh, line 20: expected a number for channel B.Xrotation, got 'x'",
    )


def test_error_non_numeric_offset() -> None:
    _fails(
        GOOD.replace("OFFSET 0 10 0", "OFFSET 0 ten 0"),
        r"bad.bvh, line 8: expected a number for an OFFSET value of 'B', got 'ten'",
    )


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
def test_error_non_finite_value(bad: str) -> None:
    _fails(
        GOOD.replace("1 2 3 0 0 0 0 0 0\n", f"1 2 {bad} 0 0 0 0 0 0\n", 1),
        rf"bad.bvh, line 19: channel A.Zposition is '{bad}'; expected a finite number",
    )


def test_error_unclosed_brace() -> None:
    _fails(
        GOOD.replace("\t}\n}\nMOTION", "\t}\nMOTION"),
        r"bad.bvh, line 15: unbalanced braces: '\{' of 'A' opened at line 3 is never closed",
    )


def test_error_extra_closing_brace() -> None:
    _fails(
        GOOD.replace("}\nMOTION", "}\n}\nMOTION"),
        r"bad.bvh, line 16: unbalanced braces: '\}' closes nothing",
    )


def test_error_missing_offset_and_bad_end_site() -> None:
    _fails(GOOD.replace("\t\tOFFSET 0 10 0\n", ""), r"bad.bvh, line 7: joint 'B' has no OFFSET")
    _fails(
        GOOD.replace("End Site", "End Sight"),
        r"bad.bvh, line 10: expected 'End Site', got 'End Sight'",
    )


def test_error_frames_and_frame_time_lines() -> None:
    _fails(
        GOOD.replace("Frames: 2", "Frames: two"),
        r"bad.bvh, line 17: expected a non-negative integer after 'Frames:'",
    )
    _fails(GOOD.replace("Frames: 2", "Frame: 2"), r"bad.bvh, line 17: expected 'Frames: <count>'")
    _fails(
        GOOD.replace("Frame Time: 0.01", "Frame Time: 0"),
        r"bad.bvh, line 18: expected a positive number of seconds",
    )


def test_error_duplicate_joint_names() -> None:
    _fails(GOOD.replace("JOINT B", "JOINT A"), r"bad.bvh: joint names must be unique, repeated: A")


def test_error_unknown_unit_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(BVHError, match="unknown unit 'feet'"):
        parse_bvh(GOOD, unit="feet")
    with pytest.raises(BVHError, match="missing.bvh: cannot read the file"):
        read_bvh(tmp_path / "missing.bvh")
    assert issubclass(BVHError, FormatError)
