"""Marker sets: file format, formulas, detection and errors."""

from __future__ import annotations

import numpy as np
import pytest

from posebench.markersets import MarkerSetError, builtin_markersets, parse_markerset, read_markerset, resolve_markerset
from posebench.skeletons import get_skeleton

H36M = get_skeleton("h36m17")


def _pelvis_markers(n_frames: int = 5, yaw: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """ASIS 250 mm apart at z = 1000 (subject facing +y, then turned by ``yaw``), PSIS 150 mm behind."""
    local = np.array([[-125.0, 0, 1000], [125.0, 0, 1000], [-50.0, -150, 1000], [50.0, -150, 1000]])
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    points = np.repeat((local @ R.T)[None], n_frames, axis=0)
    return points, ["LASI", "RASI", "LPSI", "RPSI"]


BELL_HIPS = {
    "name": "bell",
    "frames": {"pelvis": {"x_from": ["LASI"], "x_to": ["RASI"], "y_from": ["LPSI", "RPSI"], "y_to": ["LASI", "RASI"]}},
    "joints": {
        "r_hip": {"markers": ["LASI", "RASI"], "frame": "pelvis", "offset": [0.36, -0.14, -0.30], "scale": [["LASI"], ["RASI"]]},
        "l_hip": {"markers": {"LASI": 1, "RASI": 1}, "frame": "pelvis", "offset": [-0.36, -0.14, -0.30], "scale": [["LASI"], ["RASI"]]},
        "pelvis": {"markers": ["LPSI"], "frame": "pelvis", "offset": [0.0, 10.0, 0.0]},
    },
}


@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.0])
def test_bell_hip_regression_in_the_pelvis_frame(yaw):
    points, labels = _pelvis_markers(yaw=yaw)
    joints = parse_markerset(BELL_HIPS, "test").apply(points, labels)
    width = 250.0
    expected_local = {"r_hip": [0.36 * width, -0.14 * width, 1000 - 0.30 * width], "l_hip": [-0.36 * width, -0.14 * width, 1000 - 0.30 * width]}
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    for joint, local in expected_local.items():
        np.testing.assert_allclose(joints[:, H36M.index(joint)], np.repeat((R @ local)[None], 5, 0), atol=1e-9)
    # 10 mm anterior of LPSI; the pelvis frame's e2 points from the PSIS towards the ASIS
    np.testing.assert_allclose(joints[:, H36M.index("pelvis")], np.repeat((R @ [-50.0, -140, 1000])[None], 5, 0), atol=1e-9)
    assert np.isnan(joints[:, H36M.index("head_top")]).all()


def test_missing_marker_gives_nan_only_in_its_frames():
    points, labels = _pelvis_markers()
    points[2, 3] = np.nan  # RPSI lost in frame 2: the pelvis frame is undefined there
    joints = parse_markerset(BELL_HIPS, "test").apply(points, labels)
    assert np.isnan(joints[2, H36M.index("r_hip")]).all()
    assert np.isfinite(joints[[0, 1, 3, 4], H36M.index("r_hip")]).all()


def test_builtins_load_and_are_ordered_by_priority():
    sets = builtin_markersets()
    assert list(sets) == ["plug-in-gait-outputs", "pose2sim", "plug-in-gait", "cmu"]
    for markerset in sets.values():
        assert set(markerset.joints) == set(H36M.joints), markerset.name


def test_detection_picks_the_set_that_fits_and_errors_list_labels():
    cmu_labels = sorted(builtin_markersets()["cmu"].required_markers())
    assert resolve_markerset(None, cmu_labels).name == "cmu"
    with pytest.raises(MarkerSetError, match="no built-in marker set fits the labels \\['A', 'B'\\].*--markerset FILE"):
        resolve_markerset(None, ["A", "B"])
    with pytest.raises(MarkerSetError, match="marker set 'plug-in-gait' needs markers the recording lacks: \\['C7'"):
        resolve_markerset("plug-in-gait", ["LASI"])
    with pytest.raises(MarkerSetError, match="unknown marker set 'vicon'"):
        resolve_markerset("vicon", cmu_labels)


def test_user_file_in_toml_and_yaml(tmp_path):
    toml = tmp_path / "lab.toml"
    toml.write_text('name = "lab"\n[joints.pelvis]\nmarkers = ["A", "B"]\n[joints.head_top]\nmarkers = { A = 3, B = 1 }\n')
    yaml = tmp_path / "lab.yaml"
    yaml.write_text("name: lab\njoints:\n  pelvis:\n    markers: [A, B]\n  head_top:\n    markers: {A: 3, B: 1}\n")
    points = np.array([[[0.0, 0, 0], [400.0, 0, 800]]])
    for path in (toml, yaml):
        joints = resolve_markerset(str(path), ["A", "B"]).apply(points, ["A", "B"])
        np.testing.assert_allclose(joints[0, H36M.index("pelvis")], [200, 0, 400])
        np.testing.assert_allclose(joints[0, H36M.index("head_top")], [100, 0, 200])


@pytest.mark.parametrize(
    "content, message",
    [
        ('[joints.pelvis]\nmarkers = ["A"]\n', "missing required key 'name'"),
        ('name = "x"\n[joints.hip]\nmarkers = ["A"]\n', "'hip' is not a joint of h36m17"),
        ('name = "x"\n[joints.pelvis]\nmarkers = []\n', "joints.pelvis.markers: expected a non-empty list"),
        ('name = "x"\n[joints.pelvis]\nmarkers = ["A"]\nframe = "torso"\n', "unknown frame 'torso'"),
        ('name = "x"\n[joints.pelvis]\nmarkers = ["A"]\noffset = [1, 2, 3]\n', "an offset needs a 'frame'"),
        ('name = "x"\n[joints.pelvis]\nmarkers = ["A"]\noffset = [1, 2]\n', "expected three numbers"),
        ('name = "x"\n[frames.f]\nx_from = ["A"]\n[joints.pelvis]\nmarkers = ["A"]\n', "missing 'x_to'"),
        ("name = [", "not a valid toml file"),
    ],
)
def test_invalid_files_name_the_field(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(MarkerSetError, match=message) as excinfo:
        read_markerset(path)
    assert str(path) in str(excinfo.value)
