"""Reader of TRC marker trajectory files (Motion Analysis / OpenSim / Pose2Sim).

A TRC file is tab-separated text: a ``PathFileType`` line, a line of header keys
(``DataRate``, ``CameraRate``, ``NumFrames``, ``NumMarkers``, ``Units``, ...) with a line of their
values, a line ``Frame#  Time  <marker>  <tab>  <tab>  <marker> ...``, a line of coordinate labels
``X1 Y1 Z1 X2 ...`` and one data row per frame. Empty fields mark missing markers. See
``docs/formats/trc.md``.
"""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from posebench.io.text import read_text
from posebench.errors import TRCError

#: Millimetres per unit for the values of the ``Units`` header field (compared in lower case).
MM_PER_TRC_UNIT: Mapping[str, float] = MappingProxyType({"mm": 1.0, "cm": 10.0, "m": 1000.0})

REQUIRED_HEADER_KEYS = ("DataRate", "NumFrames", "NumMarkers", "Units")

_FIXED_COLUMNS = ("Frame#", "Time")
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True
_HEADER_LINES = 5


@dataclass(frozen=True, eq=False)
class TRCFile:
    """The content of one TRC file; ``points`` are in millimetres whatever ``units`` says."""

    source: str
    marker_names: tuple[str, ...]
    points: np.ndarray
    times: np.ndarray
    frame_numbers: np.ndarray
    rate: float
    units: str
    header: Mapping[str, str]

    @property
    def num_frames(self) -> int:
        """Number of frames (data rows)."""
        return int(self.points.shape[0])


def read_trc(path: str | Path) -> TRCFile:
    """Read a TRC file; points come back as ``(F, M, 3)`` float64 millimetres, NaN where missing."""
    text = read_text(path, TRCError)
    return parse_trc(text, source=str(Path(path)))


def parse_trc(text: str, *, source: str = "<string>") -> TRCFile:
    """Parse the text of a TRC file; ``source`` names it in error messages."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) < _HEADER_LINES or not lines[0].startswith("PathFileType"):
        raise _error(source, 1, "expected a 'PathFileType' line; this is not a TRC file")
    header = _parse_header(lines, source)
    rate = _header_number(header, "DataRate", source, integer=False)
    n_frames = int(_header_number(header, "NumFrames", source, integer=True))
    n_markers = int(_header_number(header, "NumMarkers", source, integer=True))
    units = header["Units"]
    if units.lower() not in MM_PER_TRC_UNIT:
        raise _error(source, 3, f"Units is '{units}'; expected one of {', '.join(MM_PER_TRC_UNIT)}")
    marker_names = _parse_marker_names(lines[3], n_markers, source)
    _check_coordinate_labels(lines[4], n_markers, source)
    values, line_numbers = _parse_rows(lines[_HEADER_LINES:], n_frames, marker_names, source)
    frame_column = values[:, 0]
    times = values[:, 1]
    bad = np.flatnonzero(~np.isfinite(frame_column) | (frame_column != np.round(frame_column)))
    if bad.size:
        raise _error(
            source,
            int(line_numbers[bad[0]]),
            f"Frame# is '{frame_column[bad[0]]}'; expected an integer",
        )
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        raise _error(source, int(line_numbers[bad[0]]), "Time is empty; expected a number")
    points = values[:, 2:].reshape(n_frames, n_markers, 3) * MM_PER_TRC_UNIT[units.lower()]
    return TRCFile(
        source=source,
        marker_names=marker_names,
        points=points,
        times=times,
        frame_numbers=frame_column.astype(np.int64),
        rate=rate,
        units=units,
        header=MappingProxyType(header),
    )


def _error(source: str, line: int, message: str) -> TRCError:
    return TRCError(f"{source}, line {line}: {message}")


def _fields(line: str) -> list[str]:
    """Tab-separated fields of a header line, stripped, without trailing empty fields."""
    fields = [f.strip() for f in line.split("\t")]
    while fields and not fields[-1]:
        fields.pop()
    return fields


def _parse_header(lines: list[str], source: str) -> dict[str, str]:
    keys, values = _fields(lines[1]), _fields(lines[2])
    if len(keys) != len(values):
        raise _error(
            source,
            3,
            f"the header has {len(keys)} keys on line 2 but {len(values)} values on line 3; "
            "expected one value per key",
        )
    header = dict(zip(keys, values))
    missing = [key for key in REQUIRED_HEADER_KEYS if key not in header]
    if missing:
        raise _error(
            source,
            2,
            f"header key(s) {', '.join(missing)} missing; "
            f"expected {', '.join(REQUIRED_HEADER_KEYS)}",
        )
    return header


def _header_number(header: dict[str, str], key: str, source: str, *, integer: bool) -> float:
    text = header[key]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    valid = math.isfinite(value) and (value >= 0 if integer else value > 0)
    if integer and valid and value != int(value):
        valid = False
    if not valid:
        kind = "a non-negative integer" if integer else "a positive number"
        raise _error(source, 3, f"{key} is '{text}'; expected {kind}")
    return value


def _parse_marker_names(line: str, n_markers: int, source: str) -> tuple[str, ...]:
    fields = _fields(line)
    if len(fields) < 2 or fields[0] != _FIXED_COLUMNS[0] or fields[1] != _FIXED_COLUMNS[1]:
        raise _error(source, 4, "expected the marker-name line to start with 'Frame#' and 'Time'")
    names = tuple(name for name in fields[2:] if name)
    if len(names) != n_markers:
        raise _error(
            source,
            4,
            f"the marker-name line lists {len(names)} markers but NumMarkers is {n_markers}",
        )
    return names


def _check_coordinate_labels(line: str, n_markers: int, source: str) -> None:
    labels = [label for label in _fields(line) if label]
    if labels and len(labels) != 3 * n_markers:
        raise _error(
            source,
            5,
            f"expected {3 * n_markers} coordinate labels (X1 Y1 Z1 ... for {n_markers} markers), "
            f"found {len(labels)}",
        )


def _parse_rows(
    lines: list[str], n_frames: int, marker_names: tuple[str, ...], source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Data rows ``(n_frames, 2 + 3 M)`` float64 (empty fields NaN) and their line numbers.

    Blank lines and fields per line are counted on the raw bytes and all rows are converted in
    one call, so no Python code runs per row.
    """
    n_columns = 2 + 3 * len(marker_names)
    lines = lines or [""]
    text = "\n".join(lines) + "\n"
    buffer = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    line_ends = np.flatnonzero(buffer == ord("\n"))
    line_starts = np.concatenate(([0], line_ends[:-1] + 1))
    spaces = np.flatnonzero(_WHITESPACE[buffer])
    line_bounds = np.append(line_starts, len(buffer))
    nonblank = np.diff(line_bounds) > np.diff(np.searchsorted(spaces, line_bounds))
    row_index = np.flatnonzero(nonblank)
    line_numbers = row_index + _HEADER_LINES + 1
    n_rows = len(row_index)
    if n_rows < n_frames:
        last = int(line_numbers[-1]) if n_rows else _HEADER_LINES
        raise _error(
            source, last, f"truncated: NumFrames is {n_frames} but only {n_rows} data rows found"
        )
    if n_rows > n_frames:
        raise _error(
            source,
            int(line_numbers[n_frames]),
            f"NumFrames is {n_frames} but {n_rows} data rows found; correct NumFrames",
        )
    if n_frames == 0:
        return np.zeros((0, n_columns)), line_numbers
    tabs = np.flatnonzero(buffer == ord("\t"))
    field_counts = np.diff(np.searchsorted(tabs, line_bounds))[row_index] + 1
    short = np.flatnonzero(field_counts < n_columns)
    if short.size:
        row = int(short[0])
        raise _error(
            source,
            int(line_numbers[row]),
            f"expected {n_columns} tab-separated fields (Frame#, Time and X/Y/Z of "
            f"{len(marker_names)} markers), found {field_counts[row]}",
        )
    long = np.flatnonzero(field_counts > n_columns)
    if long.size:
        # Fields after the last marker are allowed only when empty (trailing tabs).
        cut = tabs[np.searchsorted(tabs, line_starts[row_index[long]]) + n_columns - 1]
        end = line_ends[row_index[long]]
        bad = np.flatnonzero(
            end - cut > np.searchsorted(spaces, end) - np.searchsorted(spaces, cut)
        )
        if bad.size:
            row = int(long[bad[0]])
            raise _error(
                source,
                int(line_numbers[row]),
                f"expected {n_columns} fields, found {field_counts[row]} with values beyond "
                "the last marker",
            )
    rows = list(itertools.compress(lines, nonblank))
    try:
        values = np.loadtxt(
            io.StringIO(_fill_empty_fields("\n".join(rows))),
            dtype=np.float64,
            delimiter="\t",
            usecols=range(n_columns),
            comments=None,
            ndmin=2,
        )
    except ValueError as exc:
        raise _locate_bad_field(rows, line_numbers, marker_names, source, exc) from None
    infinite = np.flatnonzero(np.isinf(values.ravel()))
    if infinite.size:
        row, col = divmod(int(infinite[0]), n_columns)
        raise _error(
            source,
            int(line_numbers[row]),
            f"{_column_label(col, marker_names)} is infinite; expected a number or an empty field",
        )
    return values, line_numbers


def _fill_empty_fields(text: str) -> str:
    """Write ``nan`` into every empty tab-separated field of ``text``."""
    # After one pass every remaining pair of tabs is isolated, so two passes fill all runs.
    text = text.replace("\t\t", "\tnan\t").replace("\t\t", "\tnan\t")
    text = text.replace("\n\t", "\nnan\t").replace("\t\n", "\tnan\n")
    if text.startswith("\t"):
        text = "nan" + text
    if text.endswith("\t"):
        text += "nan"
    return text


def _locate_bad_field(
    rows: list[str],
    line_numbers: np.ndarray,
    marker_names: tuple[str, ...],
    source: str,
    exc: ValueError,
) -> TRCError:
    """The error for the first field that is neither empty nor a number (error path only)."""
    n_columns = 2 + 3 * len(marker_names)
    for row, line in enumerate(rows):
        for column, text in enumerate(line.split("\t")[:n_columns]):
            if text and not _is_float(text):
                return _error(
                    source,
                    int(line_numbers[row]),
                    f"expected a number or an empty field for "
                    f"{_column_label(column, marker_names)}, got '{text}'",
                )
    return _error(source, int(line_numbers[0]), f"cannot read the data rows: {exc}")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_label(column: int, marker_names: tuple[str, ...]) -> str:
    if column < 2:
        return _FIXED_COLUMNS[column]
    marker, axis = divmod(column - 2, 3)
    return f"{marker_names[marker]}.{'XYZ'[axis]}"
