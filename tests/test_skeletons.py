"""Tests of posebench.skeletons: skeleton tables, registry, joint mappings and mirroring."""

from __future__ import annotations

import json
from typing import Callable

import numpy as np
import pytest
import torch

from posebench import skeletons
from posebench.cameras import normalize_screen_coordinates
from posebench.errors import SkeletonError, UnknownNameError
from posebench.skeletons import (
    H36M32_TO_17,
    JointMapping,
    Skeleton,
    flip_joints_3d,
    flip_keypoints_2d,
    get_mapping,
    get_skeleton,
    mapping_names,
    register_mapping,
    register_skeleton,
    skeleton_names,
)

BUILTIN = ("coco17", "h36m17", "h36m32", "humaneva15", "openpose18", "openpose25")

# Reference lists (VideoPose3D / ConvertHumanEva.m), written out independently of the module.
PARENTS32 = [-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12,
             16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30]  # fmt: skip
LEFT32 = [6, 7, 8, 9, 10, 16, 17, 18, 19, 20, 21, 22, 23]
RIGHT32 = [1, 2, 3, 4, 5, 24, 25, 26, 27, 28, 29, 30, 31]
REMOVED32 = [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]
PARENTS17 = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
LEFT17, RIGHT17 = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]


def mirrored_name(name: str) -> str:
    for left, right in (("l_", "r_"), ("Left", "Right"), ("L_", "R_")):
        if name.startswith(left):
            return right + name[len(left) :]
        if name.startswith(right):
            return left + name[len(right) :]
    return name


def random_pose(skeleton: str, seed: int, shape: tuple[int, ...] = (), channels: int = 3):
    rng = np.random.default_rng(seed)
    n = get_skeleton(skeleton).n_joints
    return rng.normal(scale=500.0, size=(*shape, n, channels))


# --------------------------------------------------------------------------------- skeletons


def test_builtin_skeletons_are_registered() -> None:
    assert set(BUILTIN) <= set(skeleton_names())
    assert list(skeleton_names()) == sorted(skeleton_names())


def test_h36m17_matches_reference_lists() -> None:
    sk = get_skeleton("h36m17")
    assert list(sk.parents) == PARENTS17
    assert list(sk.left) == LEFT17 and list(sk.right) == RIGHT17
    assert sk.joints[0] == "pelvis" and sk.joints[9] == "neck_nose" and sk.joints[10] == "head_top"
    assert sk.bones[0] == (1, 0) and len(sk.bones) == 16


def test_h36m32_matches_reference_lists() -> None:
    sk = get_skeleton("h36m32")
    assert list(sk.parents) == PARENTS32
    assert list(sk.left) == LEFT32 and list(sk.right) == RIGHT32
    assert sk.joints[:4] == ("Hips", "RightUpLeg", "RightLeg", "RightFoot")
    assert sk.joints[12:16] == ("Spine1", "Neck", "Head", "Head_Site")


def test_h36m32_to_17_derivation_gives_h36m17_tree() -> None:
    kept = [j for j in range(32) if j not in REMOVED32]
    assert kept == list(H36M32_TO_17)
    new_index = {old: new for new, old in enumerate(kept)}
    parents = []
    for old in kept:
        parent = PARENTS32[old]
        while parent != -1 and parent not in new_index:
            parent = PARENTS32[parent]
        parents.append(-1 if parent == -1 else new_index[parent])
    assert parents[11] == 7 and parents[14] == 7  # shoulders hang off the spine before re-wiring
    parents[11] = parents[14] = 8  # re-wire shoulders to the thorax
    assert parents == list(get_skeleton("h36m17").parents)
    assert [new_index[j] for j in LEFT32 if j in new_index] == LEFT17
    assert [new_index[j] for j in RIGHT32 if j in new_index] == RIGHT17


def test_humaneva15_matches_reference_lists() -> None:
    sk = get_skeleton("humaneva15")
    assert list(sk.parents) == [-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1]
    assert list(sk.left) == [2, 3, 4, 8, 9, 10] and list(sk.right) == [5, 6, 7, 11, 12, 13]
    assert sk.joints[0] == "pelvis" and sk.joints[14] == "head"


def test_keypoint_layout_orders() -> None:
    assert get_skeleton("coco17").joints == (
        "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
        "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
        "r_ankle",
    )  # fmt: skip
    # VideoPose3D's COCO symmetry: odd indices left, even (> 0) right.
    assert list(get_skeleton("coco17").left) == list(range(1, 17, 2))
    op25 = get_skeleton("openpose25")
    assert [op25.index(n) for n in ("mid_hip", "r_heel", "l_big_toe", "r_ear")] == [8, 24, 19, 17]
    op18 = get_skeleton("openpose18")
    assert [op18.index(n) for n in ("neck", "r_hip", "l_ankle", "l_ear")] == [1, 8, 13, 17]


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_left_right_and_tree_are_mirror_consistent(name: str) -> None:
    sk = get_skeleton(name)
    for left, right in zip(sk.left, sk.right):
        assert sk.joints[right] == mirrored_name(sk.joints[left])
    sided = set(sk.left) | set(sk.right)
    for j, joint in enumerate(sk.joints):
        assert (mirrored_name(joint) != joint) == (j in sided), joint
    perm = sk.flip_permutation
    for j, parent in enumerate(sk.parents):
        assert sk.parents[perm[j]] == (-1 if parent == -1 else perm[parent])
    assert len(sk.bones) == sk.n_joints - 1


@pytest.mark.parametrize("name", BUILTIN)
def test_skeleton_dict_round_trip_through_json(name: str) -> None:
    sk = get_skeleton(name)
    assert Skeleton.from_dict(json.loads(json.dumps(sk.to_dict()))) == sk


def test_from_dict_reports_missing_and_unknown_keys() -> None:
    data = get_skeleton("coco17").to_dict()
    del data["left"]
    data["colour"] = "red"
    with pytest.raises(SkeletonError, match=r"missing \['left'\], unknown \['colour'\]"):
        Skeleton.from_dict(data)
    with pytest.raises(SkeletonError, match="'parents' must be a list"):
        Skeleton.from_dict({**get_skeleton("coco17").to_dict(), "parents": "0,1"})


@pytest.mark.parametrize(
    ("joints", "parents", "left", "right", "message"),
    [
        (("a", "b", "c"), (-1, 0), (), (), r"2 parents for 3 joints"),
        (("a", "b", "c"), (-1, 0, 3), (), (), r"joint 2 \('c'\) has parent 3"),
        (("a", "b", "c"), (-1, -1, 0), (), (), r"exactly one root.*found 2: \['a', 'b'\]"),
        (("a", "b", "c", "d"), (-1, 2, 3, 1), (), (), r"joint 1 \('b'\) form a cycle"),
        (("a", "b", "c"), (-1, 0, 0), (1,), (), r"left has 1 joints but right has 0"),
        (("a", "b", "c"), (-1, 0, 0), (1, 2), (2, 1), r"\['b', 'c'\] appear more than once"),
        (("a", "b", "c"), (-1, 0, 0), (1,), (5,), r"indices \[5\] are outside 0\.\.2"),
        (("a", "a", "c"), (-1, 0, 0), (), (), r"duplicate joint names \['a'\]"),
        (("a", "b"), (-1, 1), (), (), r"joint 1 \('b'\) has parent 1"),
    ],
)
def test_invalid_skeletons_are_rejected(
    joints: tuple, parents: tuple, left: tuple, right: tuple, message: str
) -> None:
    with pytest.raises(SkeletonError, match=message) as info:
        Skeleton("bad", joints, parents, left, right)
    assert isinstance(info.value, ValueError)
    assert "skeleton 'bad'" in str(info.value)


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(KeyError, match=r"no joint 'chin'; its joints are nose, l_eye"):
        get_skeleton("coco17").index("chin")
    with pytest.raises(UnknownNameError, match=r"unknown skeleton 'smpl24'.*coco17, h36m17"):
        get_skeleton("smpl24")
    with pytest.raises(KeyError, match=r"no joint mapping from 'smpl24' to 'h36m17'.*coco17"):
        get_mapping("smpl24")


def test_register_custom_skeleton(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skeletons, "_SKELETONS", dict(skeletons._SKELETONS))
    arm = Skeleton("arm3", ("shoulder", "elbow", "wrist"), (-1, 0, 1))
    assert register_skeleton(arm) is arm
    register_skeleton(Skeleton("arm3", ("shoulder", "elbow", "wrist"), (-1, 0, 1)))
    assert get_skeleton("arm3") == arm and "arm3" in skeleton_names()
    with pytest.raises(SkeletonError, match="a different skeleton named 'arm3'"):
        register_skeleton(Skeleton("arm3", ("shoulder", "elbow", "hand"), (-1, 0, 1)))


# ---------------------------------------------------------------------------------- mappings


def test_register_mapping_once_per_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skeletons, "_MAPPINGS", dict(skeletons._MAPPINGS))
    wrists = JointMapping.from_formulas("h36m17", "coco17", {"l_wrist": {"l_wrist": 1.0}})
    assert register_mapping(wrists) is wrists and get_mapping("h36m17", "coco17") is wrists
    assert ("h36m17", "coco17") in mapping_names()
    with pytest.raises(SkeletonError, match="h36m17 -> coco17 is already registered"):
        register_mapping(JointMapping.from_formulas("h36m17", "coco17", {}))


def expected_keypoint_targets(P: Callable[[str], np.ndarray], thorax, pelvis) -> dict:
    """h36m17 targets from COCO/OpenPose keypoints, per docs/skeletons.md."""
    mid_ears = (P("l_ear") + P("r_ear")) / 2
    return {
        "pelvis": pelvis,
        "thorax": thorax,
        "spine": (pelvis + thorax) / 2,
        "neck_nose": P("nose"),
        "head_top": mid_ears + 0.7 * (mid_ears - thorax),
    }


def pose_lookup(x: np.ndarray, skeleton: str) -> Callable[[str], np.ndarray]:
    sk = get_skeleton(skeleton)
    return lambda name: x[..., sk.index(name), :]


def expected_coco17(x: np.ndarray) -> dict:
    P = pose_lookup(x, "coco17")
    return expected_keypoint_targets(
        P, (P("l_shoulder") + P("r_shoulder")) / 2, (P("l_hip") + P("r_hip")) / 2
    )


def expected_openpose25(x: np.ndarray) -> dict:
    P = pose_lookup(x, "openpose25")
    return expected_keypoint_targets(P, P("neck"), P("mid_hip"))


def expected_openpose18(x: np.ndarray) -> dict:
    P = pose_lookup(x, "openpose18")
    return expected_keypoint_targets(P, P("neck"), (P("l_hip") + P("r_hip")) / 2)


def expected_humaneva15(x: np.ndarray) -> dict:
    P = pose_lookup(x, "humaneva15")
    return {
        "pelvis": P("pelvis"),
        "thorax": P("thorax"),
        "spine": (P("pelvis") + P("thorax")) / 2,
        "neck_nose": (P("thorax") + P("head")) / 2,
        "head_top": P("head"),
    }


LIMBS = ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
         "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")  # fmt: skip


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("coco17", expected_coco17),
        ("openpose25", expected_openpose25),
        ("openpose18", expected_openpose18),
        ("humaneva15", expected_humaneva15),
    ],
)
def test_mapping_to_h36m17_follows_documented_formulas(source: str, expected: Callable) -> None:
    x = random_pose(source, seed=11, shape=(4, 7))
    out = get_mapping(source).apply(x)
    assert out.shape == (4, 7, 17, 3)
    h36m = get_skeleton("h36m17")
    targets = expected(x)
    P = pose_lookup(x, source)
    targets.update({limb: P(limb) for limb in LIMBS})
    assert set(targets) == set(h36m.joints)
    for joint, value in targets.items():
        np.testing.assert_allclose(out[..., h36m.index(joint), :], value, atol=1e-9, err_msg=joint)
    mapping = get_mapping(source)
    assert set(mapping.approximate) == set(mapping.notes)
    assert set(mapping.approximate) <= set(expected(x))


def test_h36m32_mapping_is_the_column_selection_and_h36m17_the_identity() -> None:
    x = random_pose("h36m32", seed=12, shape=(3,))
    np.testing.assert_array_equal(get_mapping("h36m32").apply(x), x[:, list(H36M32_TO_17)])
    y = random_pose("h36m17", seed=13, shape=(3,))
    np.testing.assert_array_equal(get_mapping("h36m17").apply(y), y)
    assert get_mapping("h36m32").approximate == ()


def test_every_builtin_mapping_commutes_with_translation() -> None:
    for source, target in mapping_names():
        x = random_pose(source, seed=14, shape=(2,))
        shift = np.array([120.0, -40.0, 3000.0])
        mapping = get_mapping(source, target)
        np.testing.assert_allclose(
            mapping.apply(x + shift), mapping.apply(x) + shift, atol=1e-9, err_msg=source
        )


def test_nan_source_joint_only_spoils_targets_that_use_it() -> None:
    x = random_pose("coco17", seed=15)
    coco = get_skeleton("coco17")
    x[coco.index("l_ear")] = np.nan
    x[coco.index("nose"), 0] = np.nan  # only the x coordinate is missing
    out = get_mapping("coco17").apply(x)
    h36m = get_skeleton("h36m17")
    assert np.isnan(out[h36m.index("head_top")]).all()
    assert np.isnan(out[h36m.index("neck_nose"), 0])
    assert np.isfinite(out[h36m.index("neck_nose"), 1:]).all()
    others = [j for j in range(17) if h36m.joints[j] not in ("head_top", "neck_nose")]
    assert np.isfinite(out[others]).all()
    np.testing.assert_allclose(get_mapping("coco17").apply(torch.from_numpy(x)).numpy(), out)
    x[coco.index("l_ear")] = np.inf  # non-finite values count as missing too
    np.testing.assert_array_equal(get_mapping("coco17").apply(x), out)


def test_joint_without_formula_is_nan_not_zero() -> None:
    mapping = JointMapping.from_formulas(
        "coco17", "h36m17", {"l_wrist": {"l_wrist": 1.0}, "r_wrist": {"r_wrist": 1.0}}
    )
    x = random_pose("coco17", seed=16, shape=(5,))
    out = mapping.apply(x)
    h36m = get_skeleton("h36m17")
    np.testing.assert_array_equal(out[:, h36m.index("l_wrist")], x[:, 9])
    no_formula = [j for j in range(17) if h36m.joints[j] not in ("l_wrist", "r_wrist")]
    assert np.isnan(out[:, no_formula]).all()
    assert mapping.formula("pelvis") == "none (NaN)"
    out_t = mapping.apply(torch.from_numpy(x))
    assert torch.isnan(out_t[:, no_formula]).all()


def test_mapping_keeps_dtype_and_kind() -> None:
    x64 = random_pose("openpose25", seed=17, shape=(2, 3), channels=2)
    expected = get_mapping("openpose25").apply(x64)
    for x in (x64.astype(np.float32), torch.from_numpy(x64).float(), torch.from_numpy(x64)):
        out = get_mapping("openpose25").apply(x)
        assert type(out) is type(x) and out.dtype == x.dtype
        assert tuple(out.shape) == (2, 3, 17, 2)
        np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-3)


def test_mapping_formula_strings_and_errors() -> None:
    coco = get_mapping("coco17")
    assert coco.formula("pelvis") == "0.5·l_hip + 0.5·r_hip"
    assert (
        coco.formula("head_top") == "0.85·l_ear + 0.85·r_ear - 0.35·l_shoulder - 0.35·r_shoulder"
    )
    assert get_mapping("openpose25").formula("spine") == "0.5·neck + 0.5·mid_hip"
    with pytest.raises(SkeletonError, match=r"poses of shape \(\.\.\., 17, C\), got \(25, 3\)"):
        coco.apply(np.zeros((25, 3)))
    with pytest.raises(SkeletonError, match=r"shape .*\(17, 25\), got \(17, 17\)"):
        JointMapping("openpose25", "h36m17", np.eye(17))
    with pytest.raises(SkeletonError, match=r"'chin' in approximate/notes is not a joint"):
        JointMapping("h36m17", "h36m17", np.eye(17), ("chin",))


# ----------------------------------------------------------------------------------- flipping


@pytest.mark.parametrize("name", BUILTIN)
def test_flip_twice_is_identity(name: str) -> None:
    sk = get_skeleton(name)
    x3 = random_pose(name, seed=18, shape=(2, 4))
    x2 = random_pose(name, seed=19, shape=(4,), channels=3)  # x, y, confidence
    for convert in (np.asarray, torch.from_numpy):
        np.testing.assert_array_equal(
            np.asarray(flip_joints_3d(flip_joints_3d(convert(x3), sk), sk)), x3
        )
        np.testing.assert_array_equal(
            np.asarray(flip_keypoints_2d(flip_keypoints_2d(convert(x2), sk), sk)), x2
        )
        twice = flip_keypoints_2d(flip_keypoints_2d(convert(x2), sk, 1000), sk, 1000)
        np.testing.assert_allclose(np.asarray(twice), x2, rtol=0, atol=1e-9)


def test_flip_swaps_left_and_right_and_mirrors_x() -> None:
    sk = get_skeleton("h36m17")
    x = random_pose("h36m17", seed=20)
    original = x.copy()
    flipped = flip_joints_3d(x, sk)
    np.testing.assert_array_equal(x, original)  # the input is not modified
    l_wrist, r_wrist, pelvis = sk.index("l_wrist"), sk.index("r_wrist"), sk.index("pelvis")
    np.testing.assert_array_equal(flipped[l_wrist], x[r_wrist] * [-1, 1, 1])
    np.testing.assert_array_equal(flipped[r_wrist], x[l_wrist] * [-1, 1, 1])
    np.testing.assert_array_equal(flipped[pelvis], x[pelvis] * [-1, 1, 1])
    # VideoPose3D's swap lists for the h36m layout.
    permutation = np.arange(17)
    permutation[LEFT17], permutation[RIGHT17] = RIGHT17, LEFT17
    np.testing.assert_array_equal(sk.flip_permutation, permutation)


def test_pixel_flip_equals_normalised_flip() -> None:
    sk = get_skeleton("coco17")
    rng = np.random.default_rng(21)
    pixels = rng.uniform(0, 1000, size=(6, 17, 2))
    width, height = 1000, 1002
    via_pixels = normalize_screen_coordinates(flip_keypoints_2d(pixels, sk, width), width, height)
    via_normalised = flip_keypoints_2d(normalize_screen_coordinates(pixels, width, height), sk)
    np.testing.assert_allclose(via_pixels, via_normalised, atol=1e-12)
    left_eye = sk.index("l_eye")
    np.testing.assert_allclose(
        flip_keypoints_2d(pixels, sk, width)[:, left_eye],
        np.stack([width - pixels[:, sk.index("r_eye"), 0], pixels[:, sk.index("r_eye"), 1]], -1),
    )


def test_flip_keeps_confidence_and_dtype() -> None:
    sk = get_skeleton("openpose25")
    x = random_pose("openpose25", seed=22, channels=3).astype(np.float32)
    out = flip_keypoints_2d(x, sk, 640)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 2], x[sk.flip_permutation, 2])
    out_t = flip_keypoints_2d(torch.from_numpy(x), sk, 640)
    assert out_t.dtype == torch.float32
    np.testing.assert_array_equal(out_t.numpy(), out)


def test_flip_shape_errors() -> None:
    sk = get_skeleton("h36m17")
    with pytest.raises(SkeletonError, match=r"3D joints for skeleton 'h36m17' must have shape"):
        flip_joints_3d(np.zeros((17, 2)), sk)
    with pytest.raises(SkeletonError, match=r"\(\.\.\., 17, C >= 2\), got \(16, 2\)"):
        flip_keypoints_2d(np.zeros((16, 2)), sk)
