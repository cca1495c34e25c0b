"""Round trips between the Parquet and HDF5 layouts, lazy loading, windows, selections, arrays."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from dataset_factory import make_dataset

import posebench
from posebench.dataset import detect_format
from posebench.errors import DatasetNotFoundError, PosebenchError


@pytest.fixture(scope="module")
def dataset():
    return make_dataset()


@pytest.fixture(scope="module")
def saved(dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    parquet = dataset.save(root / "a.parquet")
    hdf5 = posebench.load(parquet).save(root / "b.h5", format="hdf5")
    parquet_again = posebench.load(hdf5).save(root / "c.parquet")
    return {"parquet": parquet, "hdf5": hdf5, "parquet_again": parquet_again}


def _assert_identical(a, b):
    assert a.info == b.info
    assert a.sequence_ids == b.sequence_ids
    for x, y in zip(a, b):
        assert x == y
        assert x.joints_world.dtype == np.float32 and x.timestamps.dtype == np.float64
        np.testing.assert_array_equal(x.joints_world, y.joints_world)
        assert np.array_equal(np.isnan(x.joints_world), np.isnan(y.joints_world))
        for source in x.keypoint_sources:
            assert x.keypoints[source].xy.tobytes() == y.keypoints[source].xy.tobytes()
            assert x.keypoints[source].occluded.tobytes() == y.keypoints[source].occluded.tobytes()


def test_parquet_hdf5_parquet_is_bit_identical(dataset, saved):
    first = posebench.load(saved["parquet"])
    via_hdf5 = posebench.load(saved["hdf5"])
    last = posebench.load(saved["parquet_again"])
    _assert_identical(dataset, first)
    _assert_identical(first, via_hdf5)
    _assert_identical(first, last)
    for table in ("sequences", "cameras", "poses", "keypoints/gt", "keypoints/openpose"):
        assert (saved["parquet"] / f"{table}.parquet").read_bytes() == (saved["parquet_again"] / f"{table}.parquet").read_bytes()
    assert (saved["parquet"] / "meta/info.json").read_bytes() == (saved["parquet_again"] / "meta/info.json").read_bytes()


def test_roundtrip_keeps_nan_gaps_persons_and_moving_camera(saved):
    loaded = posebench.load(saved["hdf5"])
    phone = loaded["take1/phone"]
    assert phone.subjects == ["alice", "bob"] and phone.person_ids == [10, 11]
    assert phone.camera.is_moving and phone.camera.n_poses == 40
    assert np.isnan(phone.joints_world[1, 5:9, 3]).all()
    assert np.isnan(phone.joints_world[0, 20]).all()
    assert np.isnan(phone.keypoints["openpose"].xy[0, 3, 7]).all()
    assert loaded["take3"].camera is None and loaded["take3"].joints_cam is None
    assert loaded["take2/cam0"].camera.distortion == "h36m"
    assert loaded.keypoint_layout("openpose").name == "openpose25"


def test_info_json_content(saved):
    info = json.loads((saved["parquet"] / "meta/info.json").read_text())
    assert info["schema_version"] == "1.0"
    assert info["units"] == {"joints_3d": "mm", "keypoints_2d": "px", "time": "s"}
    assert info["skeleton"]["name"] == "h36m17" and len(info["skeleton"]["joints"]) == 17
    assert info["splits"] == {"train": ["take1/phone", "take3"], "test": ["take2/cam0"]}
    assert set(info["provenance"]) >= {"converter", "converter_version", "inputs", "created", "command"}
    with h5py.File(saved["hdf5"]) as handle:
        assert handle.attrs["schema_version"] == "1.0"
        assert json.loads(handle.attrs["info"]) == info


def test_loading_is_lazy_and_windows_read_only_what_is_asked(saved):
    for path in (saved["parquet"], saved["hdf5"]):
        loaded = posebench.load(path)
        assert not any(s.is_loaded for s in loaded)
        window = loaded.read_window("take1/phone", person=1, start=3, stop=11, fields=["joints_world", "timestamps", "keypoints/gt"])
        assert not loaded["take1/phone"].is_loaded
        reference = make_dataset()["take1/phone"]
        np.testing.assert_array_equal(window["joints_world"], reference.joints_world[1, 3:11])
        np.testing.assert_array_equal(window["timestamps"], reference.timestamps[3:11])
        np.testing.assert_array_equal(window["keypoints/gt/xy"], reference.keypoints["gt"].xy[1, 3:11])
        np.testing.assert_array_equal(window["keypoints/gt/occluded"], reference.keypoints["gt"].occluded[1, 3:11])


def test_window_errors_name_the_problem(saved):
    loaded = posebench.load(saved["parquet"])
    with pytest.raises(PosebenchError, match="outside sequence 'take3' of 40 frames"):
        loaded.read_window("take3", start=30, stop=41)
    with pytest.raises(PosebenchError, match="person index 2 is out of range"):
        loaded.read_window("take3", person=2)
    with pytest.raises(PosebenchError, match="unknown field 'keypoints/gt'"):
        loaded.read_window("take3", fields=["keypoints/gt"])
    with pytest.raises(KeyError, match="no sequence 'nope'"):
        loaded["nope"]


def test_select_by_split_subject_action(dataset):
    assert dataset.select(split="test").sequence_ids == ["take2/cam0"]
    assert dataset.select(subject="bob").sequence_ids == ["take1/phone"]
    assert dataset.select(action="Walking", split="train").sequence_ids == ["take3"]
    assert dataset.select(subject=["alice", "dave"]).sequence_ids == ["take1/phone", "take2/cam0", "take3"]
    assert dataset.select(split="train").splits == {"train": ["take1/phone", "take3"], "test": []}
    with pytest.raises(PosebenchError, match="no split \\['val'\\]"):
        dataset.select(split="val")


def test_split_arrays_are_dense_and_tracked(dataset):
    arrays = dataset.arrays(split="train", source="gt")
    # take3 has no camera, so only the two persons of take1/phone remain
    assert arrays.sequence_ids == ["take1/phone", "take1/phone"]
    assert arrays.person_ids == [10, 11] and arrays.subjects == ["alice", "bob"]
    assert arrays.keypoints.shape == (80, 17, 2) and arrays.joints_cam.shape == (80, 17, 3)
    np.testing.assert_array_equal(arrays.joints_cam[arrays.track(1)], dataset["take1/phone"].joints_cam[1])
    np.testing.assert_array_equal(arrays.frames[arrays.track(1)], np.arange(40))
    assert arrays.track_starts.tolist() == [0, 40, 80]
    with pytest.raises(PosebenchError, match="no sequence with a camera and 2D source 'cpn'"):
        dataset.arrays(source="cpn")


def test_loaded_dataset_gives_the_same_split_arrays(dataset, saved):
    a = dataset.arrays(split="test")
    b = posebench.load(saved["hdf5"]).arrays(split="test")
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.joints_world, b.joints_world)


def test_joints_cam_is_the_camera_transform_of_world(dataset):
    sequence = dataset["take1/phone"]
    R, t = sequence.camera.R, sequence.camera.t
    expected = np.einsum("fij,pfkj->pfki", R, sequence.joints_world.astype(np.float64)) + t[None, :, None, :]
    np.testing.assert_allclose(sequence.joints_cam, expected, atol=1e-3)


def test_format_detection_and_missing_paths(saved, tmp_path):
    assert detect_format(saved["parquet"]) == "parquet"
    assert detect_format(saved["hdf5"]) == "hdf5"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="without meta/info.json"):
        posebench.load(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetNotFoundError, match="not an HDF5 file"):
        posebench.load(tmp_path / "notes.txt")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        posebench.load(tmp_path / "absent")


def test_save_refuses_to_overwrite_and_leaves_no_temporary(dataset, tmp_path):
    target = dataset.save(tmp_path / "d.parquet")
    with pytest.raises(PosebenchError, match="already exists"):
        dataset.save(target)
    dataset.save(target, format="hdf5", overwrite=True)
    assert detect_format(target) == "hdf5"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet"]
    with pytest.raises(PosebenchError, match="unknown dataset format 'zarr'"):
        dataset.save(tmp_path / "e", format="zarr")


def test_failed_save_leaves_nothing(dataset, tmp_path):
    broken = make_dataset()
    broken["take3"]._joints_world[0, 0, 0, 0] = np.inf
    with pytest.raises(PosebenchError):
        broken.save(tmp_path / "f.parquet")
    assert list(tmp_path.iterdir()) == []


def test_parquet_poses_use_fixed_size_lists(saved):
    schema = pq.read_schema(saved["parquet"] / "poses.parquet")
    assert str(schema.field("joints_world").type) == "fixed_size_list<element: fixed_size_list<element: float>[3]>[17]"
    keypoints = pq.read_schema(saved["parquet"] / "keypoints/openpose.parquet")
    assert keypoints.field("xy").type.list_size == 25
