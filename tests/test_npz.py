"""Safe loading of npz files: plain data comes back intact, pickles that name code are refused unrun."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from posebench.errors import FormatError, NPZError
from posebench.io.npz import load_npz


def _write_pickle_member(path: Path, member: str, payload: bytes) -> None:
    """An npz whose member is a .npy header for a 0-d object array followed by ``payload``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": ()})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member + ".npy", buffer.getvalue() + payload)


class _RunsCode:
    """Unpickling this calls ``exec``, which would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_nested_plain_data_round_trips(tmp_path: Path) -> None:
    positions = {"S1": {"Walking 1": [np.arange(12, dtype=np.float32).reshape(2, 3, 2), None]}}
    metadata = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5], [1, 2]],
                "scale": np.float32(0.5), "ids": ("a", 3, 2.5, True)}
    path = tmp_path / "d.npz"
    np.savez_compressed(path, positions_2d=positions, metadata=metadata, plain=np.eye(3))
    loaded = load_npz(path)
    assert sorted(loaded) == ["metadata", "plain", "positions_2d"]
    np.testing.assert_array_equal(loaded["plain"], np.eye(3))
    arrays = loaded["positions_2d"]["S1"]["Walking 1"]
    np.testing.assert_array_equal(arrays[0], positions["S1"]["Walking 1"][0])
    assert arrays[0].dtype == np.float32 and arrays[1] is None
    assert loaded["metadata"]["keypoints_symmetry"] == [[4, 5], [1, 2]]
    assert loaded["metadata"]["scale"] == np.float32(0.5) and loaded["metadata"]["ids"] == ("a", 3, 2.5, True)


def test_protocol_2_pickles_from_python_2_era_files_load(tmp_path: Path) -> None:
    array = np.empty((), dtype=object)
    array[()] = {"S1": {"Box 1 chunk0": np.linspace(0, 1, 6).reshape(2, 3)}}
    path = tmp_path / "old.npz"
    _write_pickle_member(path, "positions_3d", pickle.dumps(array, protocol=2))
    loaded = load_npz(path)["positions_3d"]["S1"]["Box 1 chunk0"]
    np.testing.assert_array_equal(loaded, np.linspace(0, 1, 6).reshape(2, 3))


def test_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.npz"
    _write_pickle_member(path, "positions_3d", pickle.dumps({"S1": _RunsCode(marker)}, protocol=4))
    with pytest.raises(NPZError) as info:
        load_npz(path)
    message = str(info.value)
    assert str(path) in message and "'positions_3d.npy'" in message and "builtins.exec" in message
    assert not marker.exists()
    # the same file does run code under pickle itself: the payload is real
    with zipfile.ZipFile(path) as archive:
        raw = io.BytesIO(archive.read("positions_3d.npy"))
    np.lib.format.read_magic(raw)
    np.lib.format.read_array_header_1_0(raw)
    pickle.load(raw)
    assert marker.read_text() == "ran"


def test_os_system_global_is_named(tmp_path: Path) -> None:
    payload = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    path = tmp_path / "evil2.npz"
    _write_pickle_member(path, "metadata", payload)
    with pytest.raises(NPZError, match=r"references os\.system, which is not plain data"):
        load_npz(path)


def test_npz_error_is_a_format_error_and_names_bad_files(tmp_path: Path) -> None:
    assert issubclass(NPZError, FormatError)
    not_zip = tmp_path / "x.npz"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(NPZError, match=r"x\.npz: not an \.npz archive"):
        load_npz(not_zip)
    with pytest.raises(NPZError, match="no such file"):
        load_npz(tmp_path / "missing.npz")
    truncated = tmp_path / "t.npz"
    _write_pickle_member(truncated, "positions_3d", pickle.dumps({"a": 1}, protocol=4)[:-5])
    with pytest.raises(NPZError, match=r"member 'positions_3d.npy' holds a corrupt pickle"):
        load_npz(truncated)
