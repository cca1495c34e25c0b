"""Tests of the OpenPose JSON reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posebench.errors import FormatError, OpenPoseError
from posebench.io.openpose import read_openpose_folder, read_openpose_json

REAL = Path(__file__).parent / "data" / "openpose" / "cam01_json"


def _write(path: Path, people: list[dict] | None, **extra) -> Path:
    document = {"version": 1.3, **extra}
    if people is not None:
        document["people"] = people
    path.write_text(json.dumps(document))
    return path


def _person(n_keypoints: int, seed: int, person_id=(-1,), key: str = "pose_keypoints_2d") -> dict:
    rng = np.random.default_rng(seed)
    values = np.column_stack(
        [
            rng.uniform(0, 1920, n_keypoints),
            rng.uniform(0, 1080, n_keypoints),
            rng.uniform(0.1, 1, n_keypoints),
        ]
    )
    values[1] = 0.0  # keypoint 1 undetected
    return {
        "person_id": list(person_id) if isinstance(person_id, tuple) else person_id,
        key: values.ravel().tolist(),
    }


# --- real data --------------------------------------------------------------------------


def test_real_folder() -> None:
    sequence = read_openpose_folder(REAL)
    assert sequence.layout == "openpose25"
    np.testing.assert_array_equal(sequence.frames, np.arange(20))
    assert sequence.file_names[:2] == ("cam01.0000.json", "cam01.0001.json")
    n_people = sequence.keypoints.shape[1]
    assert (
        sequence.keypoints.shape == (20, n_people, 25, 2) and sequence.keypoints.dtype == np.float32
    )
    assert sequence.confidence.shape == (20, n_people, 25) and sequence.person_ids.shape == (
        20,
        n_people,
    )
    assert (sequence.person_ids == -1).all()
    for frame, name in enumerate(sequence.file_names):
        people = json.loads((REAL / name).read_text())["people"]
        bodies = [p["pose_keypoints_2d"] for p in people if p["pose_keypoints_2d"]]
        assert sequence.people_count[frame] == len(bodies)
        assert n_people >= len(bodies)
        for slot, body in enumerate(bodies):
            values = np.asarray(body, dtype=np.float64).reshape(25, 3)
            detected = values[:, 2] > 0
            np.testing.assert_array_equal(
                sequence.confidence[frame, slot], values[:, 2].astype(np.float32)
            )
            np.testing.assert_array_equal(
                sequence.keypoints[frame, slot][detected], values[detected, :2].astype(np.float32)
            )
            assert np.isnan(sequence.keypoints[frame, slot][~detected]).all()
        assert np.isnan(sequence.keypoints[frame, len(bodies) :]).all()
        assert (sequence.confidence[frame, len(bodies) :] == 0).all()


def test_real_file_with_zeros_and_an_empty_person() -> None:
    # Frame 0: keypoints 1-4 of the first person are written as 0, 0, 0 by OpenPose.
    first = read_openpose_json(REAL / "cam01.0000.json")
    assert len(first) == 2 and first[0].layout == "openpose25" and first[0].person_id == -1
    assert np.isnan(first[0].keypoints[1:5]).all() and (first[0].confidence[1:5] == 0).all()
    np.testing.assert_allclose(
        first[0].keypoints[0], [56.22414260529827, 472.3538052544581], rtol=1e-7
    )
    # Frame 1 holds a person whose body keypoint list is empty: it is skipped.
    raw = json.loads((REAL / "cam01.0001.json").read_text())["people"]
    assert raw[0]["pose_keypoints_2d"] == []
    assert len(read_openpose_json(REAL / "cam01.0001.json")) == len(raw) - 1


# --- layouts, ids, ordering -------------------------------------------------------------


@pytest.mark.parametrize(("n_keypoints", "layout"), [(25, "openpose25"), (18, "openpose18")])
def test_layout_auto_detection(tmp_path: Path, n_keypoints: int, layout: str) -> None:
    for frame in range(3):
        people = [_person(n_keypoints, 10 * frame + p) for p in range(frame)]
        _write(tmp_path / f"clip_{frame:012d}_keypoints.json", people)
    sequence = read_openpose_folder(tmp_path)
    assert sequence.layout == layout
    assert sequence.keypoints.shape == (3, 2, n_keypoints, 2)
    np.testing.assert_array_equal(sequence.people_count, [0, 1, 2])
    expected = np.asarray(_person(n_keypoints, 21)["pose_keypoints_2d"]).reshape(-1, 3)
    np.testing.assert_array_equal(sequence.keypoints[2, 1, 0], expected[0, :2].astype(np.float32))
    assert np.isnan(sequence.keypoints[2, 1, 1]).all() and sequence.confidence[2, 1, 1] == 0
    assert np.isnan(sequence.keypoints[0]).all() and (sequence.person_ids[0] == -1).all()
    assert read_openpose_folder(tmp_path, layout=layout).layout == layout


def test_person_id_forms(tmp_path: Path) -> None:
    people = [_person(25, 1, (-1,)), _person(25, 2, 3), _person(25, 3, (7,)), _person(25, 4, 5.0)]
    del people[3]["person_id"]
    people.append(_person(25, 5, 9.0))
    path = _write(tmp_path / "f_0.json", people)
    assert [p.person_id for p in read_openpose_json(path)] == [-1, 3, 7, -1, 9]
    sequence = read_openpose_folder(tmp_path)
    np.testing.assert_array_equal(sequence.person_ids, [[-1, 3, 7, -1, 9]])


def test_old_pose_keypoints_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "f_0.json", [_person(18, 1, key="pose_keypoints")])
    assert read_openpose_json(path)[0].layout == "openpose18"


def test_frames_sorted_numerically_by_last_integer(tmp_path: Path) -> None:
    for index in (10, 9, 100, 2):
        _write(tmp_path / f"cam2.{index}.json", [_person(25, index)])
    sequence = read_openpose_folder(tmp_path)
    np.testing.assert_array_equal(sequence.frames, [2, 9, 10, 100])
    assert sequence.file_names == ("cam2.2.json", "cam2.9.json", "cam2.10.json", "cam2.100.json")
    expected = np.asarray(_person(25, 100)["pose_keypoints_2d"]).reshape(25, 3)
    np.testing.assert_array_equal(sequence.confidence[3, 0], expected[:, 2].astype(np.float32))


# --- errors -----------------------------------------------------------------------------


def test_error_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "f_0.json"
    path.write_text('{"people": [')
    with pytest.raises(OpenPoseError, match=r"f_0.json: invalid JSON"):
        read_openpose_json(path)


def test_error_missing_people(tmp_path: Path) -> None:
    path = _write(tmp_path / "f_0.json", None)
    with pytest.raises(OpenPoseError, match=r"f_0.json: field 'people' missing"):
        read_openpose_json(path)
    path.write_text('{"people": {}}')
    with pytest.raises(OpenPoseError, match=r"f_0.json: field 'people' must be a list, got dict"):
        read_openpose_json(path)


def test_error_wrong_length(tmp_path: Path) -> None:
    person = _person(25, 1)
    person["pose_keypoints_2d"] = person["pose_keypoints_2d"][:-1]
    path = _write(tmp_path / "f_0.json", [_person(25, 0), person])
    with pytest.raises(
        OpenPoseError,
        match=r"f_0.json: people\[1\].pose_keypoints_2d: has 74 values; expected 75 \(BODY_25",
    ):
        read_openpose_json(path)


def test_error_missing_keypoints_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "f_0.json", [{"person_id": [-1]}])
    with pytest.raises(OpenPoseError, match=r"people\[0\]: field 'pose_keypoints_2d' missing"):
        read_openpose_json(path)


@pytest.mark.parametrize("bad", ["12.5", None, [1, 2]])
def test_error_non_numeric(tmp_path: Path, bad) -> None:
    person = _person(25, 1)
    person["pose_keypoints_2d"][4] = bad
    path = _write(tmp_path / "f_0.json", [person])
    with pytest.raises(
        OpenPoseError, match=r"people\[0\].pose_keypoints_2d: expected a flat list of numbers"
    ):
        read_openpose_json(path)


def test_error_non_finite(tmp_path: Path) -> None:
    path = tmp_path / "f_0.json"
    path.write_text(
        '{"people": [{"person_id": [-1], "pose_keypoints_2d": [NaN' + ", 1" * 74 + "]}]}"
    )
    with pytest.raises(OpenPoseError, match=r"pose_keypoints_2d: contains NaN or infinity"):
        read_openpose_json(path)


@pytest.mark.parametrize("bad", [[1, 2], "a", True, 1.5, None])
def test_error_person_id(tmp_path: Path, bad) -> None:
    path = _write(tmp_path / "f_0.json", [_person(25, 1, bad)])
    with pytest.raises(
        OpenPoseError,
        match=r"people\[0\].person_id: got .*; expected an integer or a list of one integer",
    ):
        read_openpose_json(path)


def test_error_mixed_layouts(tmp_path: Path) -> None:
    path = _write(tmp_path / "f_0.json", [_person(25, 1), _person(18, 2)])
    with pytest.raises(
        OpenPoseError, match=r"f_0.json: people\[1\] has 18 body keypoints but openpose25 has 25"
    ):
        read_openpose_json(path)
    path.unlink()
    _write(tmp_path / "f_0.json", [_person(25, 1)])
    _write(tmp_path / "f_1.json", [])
    _write(tmp_path / "f_2.json", [_person(18, 2)])
    with pytest.raises(
        OpenPoseError,
        match=r"f_2.json: pose_keypoints_2d has 18 keypoints \(openpose18\) but f_0.json has 25",
    ):
        read_openpose_folder(tmp_path)
    with pytest.raises(
        OpenPoseError, match=r"f_0.json: people\[0\] has 25 body keypoints but openpose18 has 18"
    ):
        read_openpose_folder(tmp_path, layout="openpose18")


def test_error_folder_problems(tmp_path: Path) -> None:
    with pytest.raises(OpenPoseError, match="no \\*.json files"):
        read_openpose_folder(tmp_path)
    with pytest.raises(OpenPoseError, match="not a folder"):
        read_openpose_folder(tmp_path / "absent")
    _write(tmp_path / "cam01.0001.json", [])
    with pytest.raises(
        OpenPoseError, match="no file contains a person, so the layout cannot be detected"
    ):
        read_openpose_folder(tmp_path)
    assert read_openpose_folder(tmp_path, layout="openpose18").keypoints.shape == (1, 0, 18, 2)
    _write(tmp_path / "cam02.0001.json", [])
    with pytest.raises(
        OpenPoseError, match=r"cam01.0001.json and cam02.0001.json both have frame index 1"
    ):
        read_openpose_folder(tmp_path)
    _write(tmp_path / "keypoints.json", [])
    with pytest.raises(OpenPoseError, match="keypoints.json: the file name holds no frame number"):
        read_openpose_folder(tmp_path)
    with pytest.raises(OpenPoseError, match="unknown layout 'coco'"):
        read_openpose_folder(tmp_path, layout="coco")
    assert issubclass(OpenPoseError, FormatError)
