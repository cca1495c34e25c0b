"""Tests of the TRC marker file reader."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from posebench.errors import FormatError, TRCError
from posebench.io.trc import parse_trc, read_trc

REAL = Path(__file__).parent / "data" / "trc" / "S00_P01_T02_Participants1-2_P2_0-100.trc"
BODY_MARKERS = (
    "RHip",
    "RKnee",
    "RAnkle",
    "RBigToe",
    "RSmallToe",
    "RHeel",
    "LHip",
    "LKnee",
    "LAnkle",
    "LBigToe",
    "LSmallToe",
    "LHeel",
    "Neck",
    "Head",
    "Nose",
    "RShoulder",
    "RElbow",
    "RWrist",
    "LShoulder",
    "LElbow",
    "LWrist",
)


def _trc(
    units: str, names: list[str], rows: list[list[str]], *, blank_after_labels: bool = True
) -> str:
    header = [
        "PathFileType\t4\t(X/Y/Z)\tgenerated.trc",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\t"
        "OrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"100\t100\t{len(rows)}\t{len(names)}\t{units}\t100\t1\t{len(rows)}",
        "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t",
        "\t\t" + "\t".join(f"{a}{i + 1}" for i in range(len(names)) for a in "XYZ"),
    ]
    if blank_after_labels:
        header.append("")
    return "\n".join(header + ["\t".join(row) for row in rows]) + "\n"


def test_real_file() -> None:
    trc = read_trc(REAL)
    assert trc.marker_names == BODY_MARKERS
    assert trc.points.shape == (100, 21, 3) and trc.points.dtype == np.float64
    assert trc.rate == 60.0 and trc.units == "m"
    assert trc.header["NumFrames"] == "100" and trc.header["OrigDataStartFrame"] == "0"
    assert trc.header["CameraRate"] == "60"
    np.testing.assert_array_equal(trc.frame_numbers, np.arange(1, 101))
    np.testing.assert_allclose(trc.times, np.arange(1, 101) / 60.0, rtol=1e-12)
    with REAL.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[5:]
    expected = (
        np.array([[float(v) for v in row[2:65]] for row in rows]).reshape(100, 21, 3) * 1000.0
    )
    np.testing.assert_array_equal(trc.points, expected)
    assert trc.points[0, 0, 0] == pytest.approx(-99.82892299, abs=1e-6)


def test_real_file_is_a_plausible_body_in_mm() -> None:
    trc = read_trc(REAL)
    # Pose2Sim writes OpenSim's Y-up frame: the head 1.2-1.9 m above the lower ankle.
    head = trc.points[:, trc.marker_names.index("Head"), 1]
    ankles = trc.points[:, [2, 8], 1].min(axis=1)
    assert np.all((head - ankles > 1200.0) & (head - ankles < 1900.0))


@pytest.mark.parametrize(
    ("units", "scale"), [("m", 1000.0), ("cm", 10.0), ("mm", 1.0), ("M", 1000.0)]
)
def test_units_conversion(units: str, scale: float) -> None:
    values = np.array([[[0.5, 1.25, -2.0], [3.0, 0.0, 4.5]], [[0.75, 1.0, -1.5], [2.0, 0.25, 4.0]]])
    rows = [
        [str(f + 1), str(f / 100)] + [repr(float(v)) for v in values[f].ravel()] for f in range(2)
    ]
    trc = parse_trc(_trc(units, ["A", "B"], rows))
    assert trc.units == units
    np.testing.assert_allclose(trc.points, values * scale, rtol=1e-15)
    np.testing.assert_array_equal(trc.times, [0.0, 0.01])


def test_missing_values_are_nan_and_trailing_tabs_tolerated() -> None:
    rows = [
        ["1", "0.0", "1", "2", "3", "", "", ""],
        ["2", "0.01", "", "", "", "4", "5", "6", "", ""],
        ["3", "0.02", "7", "8", "9", "10", "", "12"],
    ]
    trc = parse_trc(_trc("mm", ["A", "B"], rows, blank_after_labels=False))
    expected = np.array(
        [[[1, 2, 3], [np.nan] * 3], [[np.nan] * 3, [4, 5, 6]], [[7, 8, 9], [10, np.nan, 12]]]
    )
    np.testing.assert_array_equal(trc.points, expected)
    np.testing.assert_array_equal(trc.frame_numbers, [1, 2, 3])


def test_crlf_and_spaces_around_values() -> None:
    text = _trc("cm", ["A"], [["1", "0", " 1.5 ", "2", "3"]]).replace("\n", "\r\n")
    np.testing.assert_array_equal(parse_trc(text).points, [[[15.0, 20.0, 30.0]]])


def test_zero_frames() -> None:
    trc = parse_trc(_trc("mm", ["A", "B"], []))
    assert trc.points.shape == (0, 2, 3) and trc.times.shape == (0,)


# --- errors -----------------------------------------------------------------------------

GOOD_ROWS = [["1", "0", "1", "2", "3"], ["2", "0.01", "4", "5", "6"]]


def _fails(text: str, pattern: str) -> None:
    with pytest.raises(TRCError, match=pattern):
        parse_trc(text, source="bad.trc")


def test_good_text_parses() -> None:
    assert parse_trc(_trc("mm", ["A"], GOOD_ROWS)).num_frames == 2


def test_error_not_trc() -> None:
    _fails(
        "HIERARCHY\nROOT x\n",
        r"bad.trc, line 1: expected a 'PathFileType' line; this is not a TRC file",
    )


def test_error_header_keys_and_values() -> None:
    text = _trc("mm", ["A"], GOOD_ROWS)
    _fails(
        text.replace("\t1\t2\n", "\t1\n", 1),
        r"bad.trc, line 3: the header has 8 keys on line 2 but 7 values",
    )
    _fails(text.replace("Units", "Unit"), r"bad.trc, line 2: header key\(s\) Units missing")
    _fails(
        _trc("inches", ["A"], GOOD_ROWS),
        r"bad.trc, line 3: Units is 'inches'; expected one of mm, cm, m",
    )
    _fails(
        text.replace("100\t100\t2", "0\t100\t2"),
        r"bad.trc, line 3: DataRate is '0'; expected a positive number",
    )
    _fails(
        text.replace("100\t100\t2", "100\t100\t2.5"),
        r"bad.trc, line 3: NumFrames is '2.5'; expected a non-negative integer",
    )


def test_error_marker_lines() -> None:
    text = _trc("mm", ["A"], GOOD_ROWS)
    _fails(
        text.replace("\t2\t1\tmm", "\t2\t2\tmm"),
        r"bad.trc, line 4: the marker-name line lists 1 markers but NumMarkers is 2",
    )
    _fails(
        text.replace("Frame#\tTime", "Frame\tTime"),
        r"bad.trc, line 4: expected the marker-name line to start with 'Frame#' and 'Time'",
    )
    _fails(
        text.replace("\t\tX1\tY1\tZ1", "\t\tX1\tY1"),
        r"bad.trc, line 5: expected 3 coordinate labels .* found 2",
    )


def test_error_row_lengths_and_counts() -> None:
    _fails(
        _trc("mm", ["A"], [GOOD_ROWS[0], ["2", "0.01", "4", "5"]]),
        r"bad.trc, line 8: expected 5 tab-separated fields "
        r"\(Frame#, Time and X/Y/Z of 1 markers\), found 4",
    )
    _fails(
        _trc("mm", ["A"], [GOOD_ROWS[0], GOOD_ROWS[1] + ["7"]]),
        r"bad.trc, line 8: expected 5 fields, found 6 with values beyond the last marker",
    )
    text = _trc("mm", ["A"], GOOD_ROWS)
    _fails(
        text.replace("100\t100\t2", "100\t100\t3"),
        r"bad.trc, line 8: truncated: NumFrames is 3 but only 2 data rows",
    )
    _fails(
        text.replace("100\t100\t2", "100\t100\t1"),
        r"bad.trc, line 8: NumFrames is 1 but 2 data rows found; correct NumFrames",
    )


def test_error_values() -> None:
    _fails(
        _trc("mm", ["A"], [GOOD_ROWS[0], ["2", "0.01", "4", "five", "6"]]),
        r"bad.trc, line 8: expected a number or an empty field for A.Y, got 'five'",
    )
    _fails(
        _trc("mm", ["A"], [GOOD_ROWS[0], ["2", "0.01", "4", "inf", "6"]]),
        r"bad.trc, line 8: A.Y is infinite",
    )
    _fails(
        _trc("mm", ["A"], [["1.5", "0", "1", "2", "3"]]),
        r"bad.trc, line 7: Frame# is '1.5'; expected an integer",
    )
    _fails(
        _trc("mm", ["A"], [["1", "", "1", "2", "3"]]),
        r"bad.trc, line 7: Time is empty; expected a number",
    )


def test_error_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TRCError, match="nope.trc: cannot read the file"):
        read_trc(tmp_path / "nope.trc")
    assert issubclass(TRCError, FormatError)
