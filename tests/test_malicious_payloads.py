"""No code execution, pointer forging or memory bomb from data: every loader that could meet a pickle.

Each payload would create a marker file (or crash the interpreter, or allocate petabytes) if it
ran; each test proves it did not and that the error names the file and the problem. Cases already
covered elsewhere (a plain ``exec`` / ``os.system`` pickle in an npz member: test_npz.py; a pickle
or a ``torch.save`` file disguised as ``.safetensors``: test_checkpoints.py) are not repeated.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from dataset_factory import make_dataset
from h36m_fixtures import write_metadata_xml
from safetensors import safe_open
from safetensors.torch import save_file

import posebench
from converters.h36m_cameras import read_metadata_cameras
from posebench.checkpoints import load_checkpoint, load_training_state, save_checkpoint, save_training_state
from posebench.cli import cli
from posebench.data import NORMALISATION
from posebench.errors import CheckpointError, FormatError, NPZError, SchemaError
from posebench.io.npz import load_npz
from posebench.models import create_model

RECONSTRUCT = np.zeros(1).__reduce__()[0]


class CreatesMarker:
    """Unpickling this runs ``os.system``, which would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ForgedArray:
    """Pickles as numpy does (``_reconstruct`` then a state), with a state numpy would trust."""

    def __init__(self, state: tuple) -> None:
        self.state = state

    def __reduce__(self):
        return (RECONSTRUCT, (np.ndarray, (0,), b"b"), self.state)


class ForgedDtype:
    """A dtype pickled with a state that disagrees with its type."""

    def __init__(self, args: tuple, state: tuple) -> None:
        self.args, self.state = args, state

    def __reduce__(self):
        return (np.dtype, self.args, self.state)


class AllocatesArray:
    """Calls ``numpy.ndarray(shape)`` directly: uninitialised memory of any size the file names."""

    def __reduce__(self):
        return (np.ndarray, ((10**15,), "<f8"))


def write_object_member(path: Path, payload: bytes, member: str = "positions_2d") -> Path:
    """An npz whose member is a 0-d object array holding ``payload`` (a pickle)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": ()})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member + ".npy", header.getvalue() + payload)
    return path


# ----- npz -------------------------------------------------------------------------------------


def test_payload_deep_inside_videopose3d_data_is_refused(tmp_path):
    marker = tmp_path / "ran"
    positions = {"S9": {"Walking 1": [np.zeros((4, 17, 2), np.float32), {"x": [CreatesMarker(marker)]}]}}
    path = write_object_member(tmp_path / "data_2d.npz", pickle.dumps(np.array(positions, dtype=object)))
    with pytest.raises(NPZError, match=r"data_2d\.npz: member 'positions_2d\.npy' holds a pickle that references (posix|os)\.system"):
        load_npz(path)
    assert not marker.exists()


def test_protocol_0_inst_opcode_goes_through_the_allow_list(tmp_path):
    """Protocol 0's INST opcode names and calls a class in one step; it is resolved like GLOBAL."""
    marker = tmp_path / "ran"
    payload = f"(S'touch {marker}'\nios\nsystem\n.".encode()
    with pytest.raises(NPZError, match=r"references os\.system, which is not plain data; refused without running it"):
        load_npz(write_object_member(tmp_path / "inst.npz", payload))
    assert not marker.exists()


def test_codecs_encode_only_decodes_latin1(tmp_path):
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(NPZError, match=r"corrupt pickle \(_codecs\.encode with encoding 'rot13' is not allowed\)"):
        load_npz(write_object_member(tmp_path / "codec.npz", payload))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (AllocatesArray(), r"'_ArrayType' object is not callable"),
        (ForgedArray((1, (10**12,), np.dtype("f8"), False, b"\0" * 8)), r"array data does not match its shape \(1000000000000,\)"),
    ],
    ids=["ndarray-called", "huge-shape-short-data"],
)
def test_pickles_cannot_allocate_memory_they_do_not_carry(tmp_path, payload, message):
    path = write_object_member(tmp_path / "bomb.npz", pickle.dumps(payload, protocol=2))
    tracemalloc.start()
    try:
        with pytest.raises(NPZError, match=message):
            load_npz(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


FORGED_STATES = {
    "object array given fewer items than its shape": ForgedArray((1, (1000,), np.dtype("O"), False, [1])),
    "float dtype flagged as holding objects": ForgedArray(
        (1, (2,), ForgedDtype(("f8", False, True), (3, "<", None, None, None, 8, 1, 0x3F)), False, b"A" * 16)
    ),
    "field offset beyond the item": ForgedArray(
        (1, (1,), ForgedDtype(("V16", False, True), (3, "|", None, ("a",), {"a": (np.dtype("f8"), 10**6)}, 16, 1, 16)), False, b"A" * 16)
    ),
    "object field read from file bytes": ForgedArray(
        (1, (1,), ForgedDtype(("V16", False, True), (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 16, 1, 16)), False, b"A" * 16)
    ),
}


def test_forged_array_and_dtype_states_are_refused_without_crashing(tmp_path):
    """numpy trusts these states and would read pointers from file bytes (a crash, or worse).

    They are loaded in a child interpreter, so that a crash fails this test instead of pytest.
    """
    paths = []
    for index, payload in enumerate(FORGED_STATES.values()):
        paths.append(str(write_object_member(tmp_path / f"forged{index}.npz", pickle.dumps(payload, protocol=2))))
    script = textwrap.dedent(
        """
        import sys
        from posebench.errors import NPZError
        from posebench.io.npz import load_npz
        for path in sys.argv[1:]:
            try:
                print("loaded", repr(load_npz(path)))
            except NPZError as error:
                print("refused", error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(FORGED_STATES) and all(line.startswith("refused") for line in lines), lines
    assert "array data does not match its shape (1000,) and dtype object" in lines[0]
    assert all("with a state unlike numpy's own" in line for line in lines[1:])


def test_genuine_numpy_pickles_still_load(tmp_path):
    """The state checks accept what numpy writes: object, string, big-endian and scalar members."""
    path = tmp_path / "genuine.npz"
    value = {"a": [np.arange(6.0).reshape(2, 3), np.array(["ab", "c"]), np.float32(2.5)], "b": np.array([{"k": 1}, None], dtype=object)}
    np.savez(path, value=value, big=np.arange(4, dtype=">i4"))
    loaded = load_npz(path)
    assert np.array_equal(loaded["value"]["a"][0], np.arange(6.0).reshape(2, 3))
    assert loaded["value"]["a"][1].tolist() == ["ab", "c"] and loaded["value"]["a"][2] == np.float32(2.5)
    assert loaded["value"]["b"].tolist() == [{"k": 1}, None]
    assert loaded["big"].dtype == np.dtype(">i4") and loaded["big"].tolist() == [0, 1, 2, 3]


def test_convert_h36m_refuses_a_malicious_videopose3d_file_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    root = tmp_path / "h36m"
    root.mkdir()
    positions = {"S1": {"Walking": CreatesMarker(marker)}}
    write_object_member(root / "data_3d_h36m.npz", pickle.dumps(np.array(positions, dtype=object)), member="positions_3d")
    result = CliRunner().invoke(cli, ["convert", "h36m", str(root), "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert "refused without running it" in result.output and "data_3d_h36m.npz" in result.output
    assert not marker.exists() and not (tmp_path / "out.parquet").exists()


# ----- checkpoints -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("tcn", filter_widths=(3, 3), channels=16)
    path = tmp_path_factory.mktemp("checkpoint") / "tcn.safetensors"
    return save_checkpoint(path, model.eval(), skeleton="h36m17", normalisation=NORMALISATION, training_data_hash="0" * 64)


def with_metadata(source: Path, target: Path, text: str) -> Path:
    """``source``'s tensors with the posebench metadata replaced by ``text`` (any string)."""
    with safe_open(str(source), "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, str(target), metadata={"posebench": text})
    return target


def stored_metadata(path: Path) -> dict:
    with safe_open(str(path), "pt") as handle:
        return json.loads(handle.metadata()["posebench"])


def test_deeply_nested_metadata_is_a_checkpoint_error(tmp_path, checkpoint):
    path = with_metadata(checkpoint, tmp_path / "nested.safetensors", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match=r"nested\.safetensors: posebench metadata is JSON nested too deeply"):
        load_checkpoint(path)


def test_metadata_with_a_number_of_thousands_of_digits_is_a_checkpoint_error(tmp_path, checkpoint):
    path = with_metadata(checkpoint, tmp_path / "digits.safetensors", '{"format": ' + "9" * 5000 + "}")
    with pytest.raises(CheckpointError, match=r"digits\.safetensors: posebench metadata is not valid JSON"):
        load_checkpoint(path)


def test_a_header_claiming_a_terabyte_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(CheckpointError, match=r"huge\.safetensors: not a safetensors file"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: "a string", r"metadata format is 'str'"),
        (lambda m: {**m, "model": "tcn"}, r"'model' must be an object with the model's 'name'"),
        (lambda m: {**m, "model": {"name": ["tcn"]}}, r"'model' must be an object with the model's 'name'"),
        (lambda m: {**m, "model": {**m["model"], "__class__": "os.system"}}, r"cannot rebuild model 'tcn' from its config"),
        (lambda m: {**m, "model": {**m["model"], "channels": "16"}}, r"cannot rebuild model 'tcn' from its config"),
        (lambda m: {**m, "skeleton": {"name": "x", "joints": 5}}, r"'skeleton' is invalid"),
    ],
    ids=["not-an-object", "model-string", "name-list", "unknown-key", "channels-string", "skeleton-types"],
)
def test_metadata_of_the_wrong_types_is_a_checkpoint_error(tmp_path, checkpoint, change, message):
    path = with_metadata(checkpoint, tmp_path / "typed.safetensors", json.dumps(change(stored_metadata(checkpoint))))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_config_naming_huge_layers_allocates_nothing(tmp_path, checkpoint):
    """Hyper-parameters are checked against the stored weights on the meta device first."""
    metadata = stored_metadata(checkpoint)
    metadata["model"]["channels"] = 10**6
    path = with_metadata(checkpoint, tmp_path / "wide.safetensors", json.dumps(metadata))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"wide\.safetensors: weights do not fit model 'tcn' .*the metadata does not belong to these weights"):
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_training_state_with_hostile_metadata_is_a_checkpoint_error(tmp_path):
    model = create_model("tcn", filter_widths=(3, 3), channels=16)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(2, 9, 17, 2)).sum().backward()
    optimizer.step()
    good = save_training_state(tmp_path / "state.safetensors", optimizer, {"epoch": 1})
    with safe_open(str(good), "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = json.loads(handle.metadata()["posebench"])
    metadata["optimizer"]["params"] = ["not-a-number"]
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"posebench": json.dumps(metadata)})
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: optimizer state"):
        load_training_state(tmp_path / "bad.safetensors", torch.optim.Adam(model.parameters()))


# ----- camera files ----------------------------------------------------------------------------


def test_metadata_xml_entity_expansion_is_refused(tmp_path):
    """A billion-laughs DTD in metadata.xml is refused before parsing (expat alone would expand ~40 MB first)."""
    path = tmp_path / "metadata.xml"
    write_metadata_xml(path)
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(f'<!ENTITY a{i} "{("&a;" if i == 1 else f"&a{i - 1};") * 10}">' for i in range(1, 10))
    text = path.read_text().replace('<?xml version="1.0"?>\n', f'<?xml version="1.0"?>\n<!DOCTYPE data [{entities}]>\n')
    path.write_text(text.replace("<index2id>", "<index2id>&a9;", 1))
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match=r"metadata\.xml: declares a DTD .*refused rather than expanded"):
            read_metadata_cameras(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_metadata_xml_external_entities_are_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-VALUE")
    path = tmp_path / "metadata.xml"
    write_metadata_xml(path)
    text = path.read_text().replace('<?xml version="1.0"?>\n', f'<?xml version="1.0"?>\n<!DOCTYPE data [<!ENTITY x SYSTEM "file://{secret}">]>\n')
    path.write_text(text.replace("<index2id>", "<index2id><id>&x;</id>", 1))
    with pytest.raises(FormatError, match=r"metadata\.xml: declares a DTD") as caught:
        read_metadata_cameras(path)
    assert "SECRET-VALUE" not in str(caught.value)


# ----- stored datasets -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stored")
    dataset = make_dataset(n_frames=40)
    return {"hdf5": dataset.save(root / "d.h5", format="hdf5"), "parquet": dataset.save(root / "d.parquet")}


def load_everything(path: Path) -> None:
    dataset = posebench.load(path)
    for sequence in dataset:
        sequence.joints_world
    dataset.validate()


def hdf5_variant(source: Path, target: Path, edit) -> Path:
    target.write_bytes(source.read_bytes())
    with h5py.File(target, "r+") as handle:
        edit(handle)
    return target


def replace_attribute(group: str, name: str, value):
    def edit(handle):
        del handle[group].attrs[name]
        handle[group].attrs[name] = value(handle) if callable(value) else value

    return edit


def replace_dataset(group: str, name: str, data, dtype=None):
    def edit(handle):
        del handle[group][name]
        handle[group].create_dataset(name, data=data, dtype=dtype)

    return edit


@pytest.mark.parametrize(
    ("edit", "table", "column", "rule"),
    [
        (replace_attribute("sequences/000000", "fps", "abc"), "/sequences/000000", "fps", "dtype"),
        (replace_attribute("sequences/000000", "fps", np.arange(3.0)), "/sequences/000000", "fps", "dtype"),
        (replace_attribute("sequences/000000", "fps", lambda handle: handle["sequences"].ref), "/sequences/000000", "fps", "dtype"),
        (replace_attribute("cameras/000000", "width", "wide"), "/cameras/000000", "width", "dtype"),
        (replace_dataset("sequences/000000", "person_ids", np.array(["a", "b"], dtype=object), h5py.string_dtype()), "/sequences/000000", "person_ids", "dtype"),
        (replace_dataset("sequences/000000", "joints_world", np.zeros((2, 40), dtype=[("a", "f4"), ("b", "i4")])), "poses[take1/phone]", "joints_world", "shape"),
        (replace_dataset("sequences/000000", "joints_world", np.zeros((2, 40, 17, 3), dtype=np.int64)), "poses[take1/phone]", "joints_world", "dtype"),
        (replace_attribute("/", "info", json.dumps([1, 2])), "/meta", "info", "required"),
    ],
    ids=["fps-text", "fps-array", "fps-reference", "width-text", "person-ids-text", "joints-compound", "joints-int", "info-list"],
)
def test_hdf5_values_of_unexpected_types_are_schema_errors(tmp_path, stored, edit, table, column, rule):
    path = hdf5_variant(stored["hdf5"], tmp_path / "variant.h5", edit)
    with pytest.raises(SchemaError) as caught:
        load_everything(path)
    assert (caught.value.table, caught.value.column, caught.value.rule) == (table, column, rule)


def test_hdf5_pickled_bytes_are_never_unpickled(tmp_path, stored):
    marker = tmp_path / "ran"
    pickled = np.void(pickle.dumps(CreatesMarker(marker)))
    for group, name in (("/", "info"), ("sequences/000000", "attributes")):
        path = hdf5_variant(stored["hdf5"], tmp_path / f"pickled_{name}.h5", replace_attribute(group, name, pickled))
        with pytest.raises(SchemaError, match="not valid JSON"):
            load_everything(path)
    assert not marker.exists()


def parquet_variant(source: Path, target: Path, table: str, edit) -> Path:
    import shutil

    shutil.copytree(source, target)
    pq.write_table(edit(pq.read_table(target / f"{table}.parquet")), target / f"{table}.parquet")
    return target


def test_parquet_pickled_extension_type_is_never_unpickled(tmp_path, stored):
    """Field metadata naming ``arrow.py_extension_type`` (whose payload older pyarrow unpickled) is inert."""
    marker = tmp_path / "ran"

    def edit(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index("action")
        metadata = {b"ARROW:extension:name": b"arrow.py_extension_type", b"ARROW:extension:metadata": pickle.dumps(CreatesMarker(marker))}
        return table.cast(table.schema.set(index, table.schema.field(index).with_metadata(metadata)))

    path = parquet_variant(stored["parquet"], tmp_path / "ext.parquet", "sequences", edit)
    assert pq.read_schema(path / "sequences.parquet").field("action").metadata[b"ARROW:extension:name"] == b"arrow.py_extension_type"
    load_everything(path)
    assert not marker.exists()


class OpaqueType(pa.ExtensionType):
    """An extension type unknown to posebench (16-byte opaque values)."""

    def __init__(self) -> None:
        super().__init__(pa.binary(16), "example.opaque")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):
        return cls()


@pytest.mark.parametrize(
    ("table", "column", "make", "found"),
    [
        ("sequences", "fps", lambda n: pa.ExtensionArray.from_storage(OpaqueType(), pa.array([b"0" * 16] * n, pa.binary(16))), "fixed_size_binary[16]"),
        ("poses", "frame", lambda n: pa.array([{"a": 1}] * n), "struct<a: int64>"),
        ("poses", "sequence_id", lambda n: pa.array(["x"] * n).dictionary_encode(), "dictionary<values=string"),
    ],
    ids=["extension-type", "struct", "dictionary"],
)
def test_parquet_columns_of_unexpected_types_are_schema_errors(tmp_path, stored, table, column, make, found):
    def edit(data: pa.Table) -> pa.Table:
        return data.set_column(data.schema.get_field_index(column), column, make(data.num_rows))

    path = parquet_variant(stored["parquet"], tmp_path / "typed.parquet", table, edit)
    with pytest.raises(SchemaError, match=rf"{table}\.{column}: rule 'dtype' violated: expected Arrow type .*, found {re.escape(found)}"):
        load_everything(path)
