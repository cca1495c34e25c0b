"""One test per schema rule: each violation raises SchemaError naming table, column and rule."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataset_factory import make_dataset, static_camera

import posebench
from posebench.cameras import Camera
from posebench.dataset import Keypoints2D
from posebench.errors import SchemaError, SchemaVersionError


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("stored")
    dataset = make_dataset()
    return {"parquet": dataset.save(root / "ok.parquet"), "hdf5": dataset.save(root / "ok.h5", format="hdf5")}


@pytest.fixture
def parquet_copy(stored, tmp_path):
    target = tmp_path / "copy.parquet"
    shutil.copytree(stored["parquet"], target)
    return target


@pytest.fixture
def hdf5_copy(stored, tmp_path):
    target = tmp_path / "copy.h5"
    shutil.copy(stored["hdf5"], target)
    return target


def _edit_info(directory, edit):
    path = directory / "meta/info.json"
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))


def _rewrite_table(directory, name, edit):
    path = directory / f"{name}.parquet"
    table = pq.read_table(path)
    pq.write_table(edit(table), path)


def _expect(rule, table=None, column=None, match=None, error=SchemaError):
    def check(excinfo):
        assert isinstance(excinfo.value, error)
        assert excinfo.value.rule == rule
        if table is not None:
            assert excinfo.value.table == table
        if column is not None:
            assert excinfo.value.column == column
    return check


def _load_everything(path):
    dataset = posebench.load(path)
    for sequence in dataset:
        sequence.joints_world
    return dataset


# --- metadata rules ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "version, message",
    [("0.9", "older schema 0.9"), ("2.0", "newer schema 2.0"), ("1.7", "newer schema 1.7")],
)
def test_rule_schema_version_says_older_or_newer(parquet_copy, version, message):
    _edit_info(parquet_copy, lambda info: info.update(schema_version=version))
    with pytest.raises(SchemaVersionError, match=message) as excinfo:
        posebench.load(parquet_copy)
    assert excinfo.value.rule == "schema_version" and excinfo.value.table == "meta"


def test_rule_schema_version_in_hdf5(hdf5_copy):
    with h5py.File(hdf5_copy, "r+") as handle:
        info = json.loads(handle.attrs["info"])
        del info["schema_version"]
        handle.attrs["info"] = json.dumps(info)
    with pytest.raises(SchemaVersionError, match="schema_version: rule 'schema_version' violated: missing") as excinfo:
        posebench.load(hdf5_copy)
    assert excinfo.value.table == "/meta"


def test_rule_required_metadata_key(parquet_copy):
    _edit_info(parquet_copy, lambda info: info.pop("splits"))
    with pytest.raises(SchemaError, match="meta.splits: rule 'required'"):
        posebench.load(parquet_copy)


def test_rule_required_table(parquet_copy):
    (parquet_copy / "cameras.parquet").unlink()
    with pytest.raises(SchemaError, match="cameras.\\*: rule 'required' violated: table file cameras.parquet is missing"):
        posebench.load(parquet_copy)


def test_rule_required_column(parquet_copy):
    _rewrite_table(parquet_copy, "sequences", lambda t: t.drop_columns(["fps"]))
    with pytest.raises(SchemaError, match="sequences.fps: rule 'required' violated: column 'fps' is missing"):
        posebench.load(parquet_copy)


def test_rule_required_hdf5_dataset(hdf5_copy):
    with h5py.File(hdf5_copy, "r+") as handle:
        del handle["sequences/000001/person_ids"]
    with pytest.raises(SchemaError, match="/sequences/000001.person_ids: rule 'required'"):
        posebench.load(hdf5_copy)


def test_rule_units_metadata(parquet_copy):
    _edit_info(parquet_copy, lambda info: info["units"].update(joints_3d="m"))
    with pytest.raises(SchemaError, match="meta.units: rule 'units' violated"):
        posebench.load(parquet_copy)


def test_rule_units_values_look_like_metres():
    dataset = make_dataset()
    dataset["take3"]._joints_world /= 1000
    with pytest.raises(SchemaError, match="look like metres, not millimetres; multiply by 1000") as excinfo:
        dataset.validate()
    assert (excinfo.value.table, excinfo.value.column, excinfo.value.rule) == ("poses[take3]", "joints_world", "units")


def test_rule_conventions(parquet_copy):
    _edit_info(parquet_copy, lambda info: info["conventions"].update(camera_frame="opengl"))
    with pytest.raises(SchemaError, match="meta.conventions: rule 'conventions'"):
        posebench.load(parquet_copy)


def test_rule_skeleton(parquet_copy):
    _edit_info(parquet_copy, lambda info: info["skeleton"].update(parents=[5] * 17))
    with pytest.raises(SchemaError, match="meta.skeleton: rule 'skeleton' violated: invalid skeleton definition"):
        posebench.load(parquet_copy)


def test_rule_unique_sequence_id():
    dataset = make_dataset()
    dataset["take3"].sequence_id = "take1/phone"
    with pytest.raises(SchemaError, match="sequences.sequence_id: rule 'unique_id' violated: 'take1/phone' appears more than once"):
        dataset.validate()


def test_rule_unique_camera_id():
    dataset = make_dataset()
    dataset["take1/phone"].camera = static_camera("cam0")
    dataset["take2/cam0"].camera = Camera("cam0", 640, 480, 500.0, 500.0, 320.0, 240.0)
    with pytest.raises(SchemaError, match="cameras.camera_id: rule 'unique_id' violated: two different cameras share the id 'cam0'"):
        dataset.validate(arrays=False)


def test_rule_unique_person_id():
    dataset = make_dataset()
    dataset["take3"].person_ids = [1, 1]
    with pytest.raises(SchemaError, match="sequences\\[take3\\].person_id: rule 'unique_id'"):
        dataset.validate()


# --- array rules ------------------------------------------------------------------------------

def test_rule_shape():
    dataset = make_dataset()
    dataset["take3"]._joints_world = dataset["take3"]._joints_world[:, :, :16]
    with pytest.raises(SchemaError, match="poses\\[take3\\].joints_world: rule 'shape' violated: expected shape \\(2, 40, 17, 3\\), found \\(2, 40, 16, 3\\)"):
        dataset.validate()


def test_rule_dtype():
    dataset = make_dataset()
    dataset["take3"]._joints_world = dataset["take3"]._joints_world.astype(np.float64)
    with pytest.raises(SchemaError, match="rule 'dtype' violated: expected dtype float32, found float64"):
        dataset.validate()


def test_rule_dtype_of_parquet_column(parquet_copy):
    _rewrite_table(parquet_copy, "sequences", lambda t: t.set_column(t.schema.get_field_index("fps"), "fps", pa.array(["50"] * t.num_rows)))
    with pytest.raises(SchemaError, match="sequences.fps: rule 'dtype' violated: expected Arrow type double, found string"):
        posebench.load(parquet_copy)


def test_rule_dtype_in_hdf5_file(hdf5_copy):
    with h5py.File(hdf5_copy, "r+") as handle:
        values = handle["sequences/000002/joints_world"][()].astype(np.float64)
        del handle["sequences/000002/joints_world"]
        handle["sequences/000002/joints_world"] = values
    dataset = posebench.load(hdf5_copy)
    with pytest.raises(SchemaError, match="poses\\[take3\\].joints_world: rule 'dtype'"):
        dataset["take3"].joints_world


def test_rule_finite():
    dataset = make_dataset()
    dataset["take2/cam0"]._joints_cam[0, 1, 2, 0] = np.inf
    with pytest.raises(SchemaError, match="poses\\[take2/cam0\\].joints_cam: rule 'finite' violated: infinite values; missing joints must be NaN"):
        dataset.validate()


def test_rule_missing_as_zero_3d():
    dataset = make_dataset()
    dataset["take3"]._joints_world[1, 7] = 0.0
    with pytest.raises(SchemaError, match="person 1, frame 7: every joint is exactly 0; missing values must be NaN") as excinfo:
        dataset.validate()
    assert excinfo.value.rule == "missing_as_zero"


def test_rule_missing_as_zero_2d():
    dataset = make_dataset()
    keypoints = dataset["take1/phone"].keypoints["openpose"]
    keypoints.xy[0, 0, 4] = 0.0
    keypoints.confidence[0, 0, 4] = 0.0
    with pytest.raises(SchemaError, match="keypoints/openpose\\[take1/phone\\].xy: rule 'missing_as_zero'"):
        dataset.validate()


def test_rule_timestamps_increasing():
    dataset = make_dataset()
    dataset["take3"]._timestamps[5] = dataset["take3"]._timestamps[4]
    with pytest.raises(SchemaError, match="sequences\\[take3\\].timestamps: rule 'timestamps' violated: timestamps must be finite and strictly increasing"):
        dataset.validate()


def test_rule_timestamps_same_for_every_person(parquet_copy):
    def shift_second_person(table):
        timestamps = table.column("timestamp").to_numpy().copy()
        person = table.column("person_id").to_numpy()
        sequence = np.asarray(table.column("sequence_id").to_pylist())
        timestamps[(sequence == "take3") & (person == 11)] += 0.5
        return table.set_column(table.schema.get_field_index("timestamp"), "timestamp", pa.array(timestamps))

    _rewrite_table(parquet_copy, "poses", shift_second_person)
    with pytest.raises(SchemaError, match="every person of a sequence must have the same timestamps"):
        posebench.load(parquet_copy)["take3"].joints_world


@pytest.mark.parametrize(
    "edit, column, message",
    [
        (lambda s: setattr(s, "fps", 0.0), "fps", "fps must be positive"),
        (lambda s: s.keypoints["gt"].confidence.__setitem__((0, 0, 0), 1.5), "confidence", "confidence must lie in \\[0, 1\\]"),
        (lambda s: setattr(s, "n_frames", 0), "n_frames", "at least one frame"),
    ],
)
def test_rule_range(edit, column, message):
    dataset = make_dataset()
    edit(dataset["take2/cam0"])
    with pytest.raises(SchemaError, match=message) as excinfo:
        dataset.validate()
    assert excinfo.value.rule == "range" and excinfo.value.column == column


def test_rule_camera_ref_moving_camera_length():
    dataset = make_dataset()
    dataset["take1/phone"].n_frames = 39
    with pytest.raises(SchemaError, match="moving camera 'phone_take1' has 40 poses but the sequence has 39 frames") as excinfo:
        dataset.validate(arrays=False)
    assert excinfo.value.rule == "camera_ref"


def test_rule_camera_ref_unknown_camera(parquet_copy):
    _rewrite_table(parquet_copy, "cameras", lambda t: t.filter(pa.compute.not_equal(t.column("camera_id"), "cam0")))
    with pytest.raises(SchemaError, match="sequences\\[take2/cam0\\].camera_id: rule 'camera_ref' violated: camera 'cam0' is not in the cameras table"):
        posebench.load(parquet_copy)


def test_rule_camera_ref_joints_cam_without_camera():
    dataset = make_dataset()
    dataset["take3"]._joints_cam = dataset["take3"]._joints_world.copy()
    with pytest.raises(SchemaError, match="camera-frame joints given without a camera") as excinfo:
        dataset.validate()
    assert excinfo.value.rule == "camera_ref"


def test_rule_camera_bad_rotation_in_file(hdf5_copy):
    with h5py.File(hdf5_copy, "r+") as handle:
        handle["cameras/000001/R"][0] = 2 * np.eye(3)
    with pytest.raises(SchemaError, match="rule 'camera' violated.*not a rotation matrix") as excinfo:
        posebench.load(hdf5_copy)
    assert excinfo.value.column == "R"


def test_rule_camera_unknown_distortion(parquet_copy):
    _rewrite_table(
        parquet_copy, "cameras",
        lambda t: t.set_column(t.schema.get_field_index("distortion"), "distortion", pa.array(["fisheye"] * t.num_rows)),
    )
    with pytest.raises(SchemaError, match="unknown distortion model 'fisheye'") as excinfo:
        posebench.load(parquet_copy)
    assert (excinfo.value.rule, excinfo.value.column) == ("camera", "distortion")


def test_rule_camera_intrinsics_constant_over_frames(parquet_copy):
    def change_one_focal(table):
        fx = table.column("fx").to_numpy().copy()
        fx[3] += 1.0
        return table.set_column(table.schema.get_field_index("fx"), "fx", pa.array(fx))

    _rewrite_table(parquet_copy, "cameras", change_one_focal)
    with pytest.raises(SchemaError, match="cameras\\[phone_take1\\].fx: rule 'camera_intrinsics'"):
        posebench.load(parquet_copy)


def test_rule_camera_consistency():
    dataset = make_dataset()
    dataset["take2/cam0"]._joints_cam[0, 3] += 10.0
    with pytest.raises(SchemaError, match="differ from R @ joints_world \\+ t of camera 'cam0' by up to 10") as excinfo:
        dataset.validate()
    assert excinfo.value.rule == "camera_consistency"


def test_rule_splits_unknown_sequence(parquet_copy):
    _edit_info(parquet_copy, lambda info: info["splits"]["test"].append("take9"))
    with pytest.raises(SchemaError, match="meta.splits.test: rule 'splits' violated: split 'test' names unknown sequence 'take9'"):
        posebench.load(parquet_copy)


def test_rule_splits_disjoint():
    dataset = make_dataset()
    dataset.splits["test"].append("take3")
    with pytest.raises(SchemaError, match="sequence 'take3' is in both 'train' and 'test'"):
        dataset.validate(arrays=False)


def test_rule_keypoint_source_undeclared():
    dataset = make_dataset()
    sequence = dataset["take2/cam0"]
    sequence.keypoints["cpn"] = Keypoints2D.create(sequence.keypoints["gt"].xy)
    sequence.keypoint_sources = ["cpn", "gt", "openpose"]
    with pytest.raises(SchemaError, match="source 'cpn' is not declared") as excinfo:
        dataset.validate()
    assert excinfo.value.rule == "keypoint_source"


def test_rule_keypoint_source_unknown_layout(parquet_copy):
    _edit_info(parquet_copy, lambda info: info["keypoint_sources"]["openpose"].update(skeleton="body_135"))
    with pytest.raises(SchemaError, match="keypoint_sources.openpose: rule 'keypoint_source' violated: unknown keypoint layout"):
        posebench.load(parquet_copy)


def test_rule_row_order(parquet_copy):
    _rewrite_table(parquet_copy, "poses", lambda t: t.take(pa.array(np.r_[1, 0, 2:t.num_rows])))
    dataset = posebench.load(parquet_copy)
    with pytest.raises(SchemaError, match="poses.sequence_id/frame: rule 'row_order'"):
        dataset["take1/phone"].joints_world


def test_rule_row_count(parquet_copy):
    _rewrite_table(parquet_copy, "keypoints/gt", lambda t: t.slice(0, t.num_rows - 1))
    with pytest.raises(SchemaError, match="keypoints/gt.\\*: rule 'row_count' violated: table has 119 rows; the sequences table implies 120"):
        posebench.load(parquet_copy)


def test_rule_readable(parquet_copy, hdf5_copy):
    (parquet_copy / "meta/info.json").write_text("{not json")
    with pytest.raises(SchemaError, match="meta.info.json: rule 'readable'"):
        posebench.load(parquet_copy)
    (parquet_copy / "meta/info.json").write_text("{}")
    with pytest.raises(SchemaVersionError, match="missing; this is not a posebench dataset"):
        posebench.load(parquet_copy)


def test_corrupt_parquet_table_is_reported(stored, tmp_path):
    target = tmp_path / "corrupt.parquet"
    shutil.copytree(stored["parquet"], target)
    data = (target / "poses.parquet").read_bytes()
    (target / "poses.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(SchemaError, match="poses.\\*: rule 'readable' violated: cannot read"):
        posebench.load(target)


def test_valid_dataset_passes_every_rule(stored):
    for path in stored.values():
        dataset = _load_everything(path)
        dataset.validate()
