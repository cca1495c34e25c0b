"""Reader of C3D motion-capture files (the c3d.org format), fully vectorised.

``read_c3d(path)`` returns a :class:`C3DFile` with points in millimetres (NaN where a sample is
invalid), residuals, labels, rate, frame numbers, decoded parameters and analog samples. All
three processor types (Intel, DEC/VAX, MIPS/SGI) and both storage types (16-bit integer and
float) are read. Deviations from the specification that can be worked around are reported as
:class:`C3DWarning` (and listed in ``C3DFile.warnings``); anything else raises
:class:`~posebench.errors.C3DError`. Conventions and rules: docs/formats/c3d.md.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posebench.errors import C3DError
from posebench.io.c3d_data import decode_analog, decode_points, frame_fields, frame_records
from posebench.io.c3d_header import read_header, read_processor
from posebench.io.c3d_layout import DataLayout, resolve_layout
from posebench.io.c3d_parameters import ParameterValue, Parameters, read_parameters
from posebench.io.c3d_source import C3DSource, C3DWarning

__all__ = ["C3DFile", "C3DWarning", "read_c3d", "unit_factor"]

_MILLIMETRES_PER_UNIT = {
    "mm": 1.0,
    "millimeter": 1.0,
    "millimetre": 1.0,
    "cm": 10.0,
    "centimeter": 10.0,
    "centimetre": 10.0,
    "dm": 100.0,
    "decimeter": 100.0,
    "decimetre": 100.0,
    "m": 1000.0,
    "meter": 1000.0,
    "metre": 1000.0,
    "in": 25.4,
    "inch": 25.4,
    "inches": 25.4,
    "ft": 304.8,
    "foot": 304.8,
    "feet": 304.8,
}


@dataclass
class C3DFile:
    """The contents of one C3D file, converted to posebench's conventions."""

    path: str
    points: np.ndarray
    """(frames, points, 3) float64 coordinates in millimetres; NaN where invalid."""
    residuals: np.ndarray
    """(frames, points) float64 residuals in millimetres; NaN where invalid, 0 for samples the
    writer marks as computed (interpolated, filtered or modelled)."""
    camera_masks: np.ndarray
    """(frames, points) uint8; bit k is set when camera k+1 contributed (0 where invalid)."""
    labels: list[str]
    descriptions: list[str]
    rate: float
    """Point frame rate in Hz (0 when the file states none)."""
    first_frame: int
    last_frame: int
    units: str
    """POINT:UNITS as stored (coordinates are converted to millimetres regardless)."""
    scale: float
    """POINT:SCALE as used; negative for float storage."""
    processor: str
    """"intel", "dec" or "mips"."""
    parameters: dict[str, dict[str, ParameterValue]]
    """All parameter groups: group name -> parameter name -> value (names upper-cased)."""
    analog: np.ndarray | None
    """(analog samples, channels) float64 scaled analog data, None when there is none."""
    analog_labels: list[str] = field(default_factory=list)
    analog_rate: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        """Number of point frames."""
        return int(self.points.shape[0])

    @property
    def n_points(self) -> int:
        """Number of points per frame."""
        return int(self.points.shape[1])


def read_c3d(path: str | os.PathLike[str]) -> C3DFile:
    """Read a C3D file.

    Raises :class:`~posebench.errors.C3DError` (naming the file, the byte offset and what was
    expected) when the file cannot be read, is not C3D, or is corrupt or truncated. Each
    deviation that is worked around is emitted as a :class:`C3DWarning` and kept in
    ``C3DFile.warnings``.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise C3DError(f"{name}: cannot read the file: {error.strerror or error}") from error
    source = C3DSource(name, data)
    try:
        return _read(source)
    except C3DError:
        raise
    except (ValueError, IndexError, OverflowError, TypeError, KeyError) as error:
        raise C3DError(
            f"{name}: content the C3D reader could not decode ({type(error).__name__}: {error})"
        ) from error
    finally:
        for message in source.warnings:
            warnings.warn(f"{name}: {message}", C3DWarning, stacklevel=2)


def unit_factor(units: str) -> float | None:
    """Millimetres per unit of a POINT:UNITS string, or None when it is not a length unit.

    Plural forms and writers' truncations to 4 characters ("mete", "cent") are accepted.
    """
    text = units.strip().lower()
    if text in _MILLIMETRES_PER_UNIT:
        return _MILLIMETRES_PER_UNIT[text]
    singular = text[:-1] if text.endswith("s") else text
    if singular in _MILLIMETRES_PER_UNIT:
        return _MILLIMETRES_PER_UNIT[singular]
    if len(text) >= 3:
        for word, factor in _MILLIMETRES_PER_UNIT.items():
            if len(word) > 2 and word.startswith(text):
                return factor
    return None


def _read(source: C3DSource) -> C3DFile:
    parameter_block, fmt = read_processor(source)
    header = read_header(source, parameter_block, fmt)
    parameters = read_parameters(source, parameter_block, fmt)
    layout = resolve_layout(source, header, parameters)
    units = parameters.text("POINT", "UNITS") or ""
    factor = _resolve_units(source, units)
    unsigned = (parameters.text("ANALOG", "FORMAT") or "").upper() == "UNSIGNED"
    point_values, analog_values = frame_fields(
        frame_records(source, layout, fmt, unsigned), layout, fmt
    )
    point_data = decode_points(point_values, layout, factor)
    analog = decode_analog(source, analog_values, layout, parameters, unsigned)
    return C3DFile(
        path=source.name,
        points=point_data.points,
        residuals=point_data.residuals,
        camera_masks=point_data.camera_masks,
        labels=_point_labels(source, parameters, layout.point_count),
        descriptions=_padded(
            _numbered_strings(parameters, "POINT", "DESCRIPTIONS"), layout.point_count, ""
        ),
        rate=layout.rate,
        first_frame=layout.first_frame,
        last_frame=layout.first_frame + layout.frame_count - 1,
        units=units,
        scale=layout.scale,
        processor=fmt.processor,
        parameters=parameters.groups,
        analog=analog,
        analog_labels=_analog_labels(parameters, layout.analog_channels),
        analog_rate=_analog_rate(parameters, layout),
        warnings=source.warnings,
    )


def _resolve_units(source: C3DSource, units: str) -> float:
    """Millimetres per stored unit; 1 (with a warning) when POINT:UNITS is empty or unknown."""
    if not units:
        source.warn("POINT:UNITS is missing or empty; coordinates are taken to be millimetres")
        return 1.0
    factor = unit_factor(units)
    if factor is None:
        source.warn(
            f"POINT:UNITS {units!r} is not a known length unit; coordinates are taken to be "
            "millimetres"
        )
        return 1.0
    return factor


def _numbered_strings(parameters: Parameters, group: str, name: str) -> list[str]:
    """NAME, NAME2, NAME3 ... concatenated (the convention for more than 255 entries)."""
    strings = list(parameters.strings(group, name) or [])
    index = 2
    while (more := parameters.strings(group, f"{name}{index}")) is not None:
        strings.extend(more)
        index += 1
    return strings


def _padded(strings: list[str], count: int, filler: str) -> list[str]:
    return strings[:count] + [filler] * max(count - len(strings), 0)


def _point_labels(source: C3DSource, parameters: Parameters, count: int) -> list[str]:
    """Point labels; missing ones are named POINT<n> and duplicates are reported."""
    labels = _numbered_strings(parameters, "POINT", "LABELS")[:count]
    if len(labels) < count:
        source.warn(
            f"POINT:LABELS holds {len(labels)} labels for {count} points; the others are "
            f"named POINT{len(labels) + 1} to POINT{count}"
        )
        labels += [f"POINT{index + 1}" for index in range(len(labels), count)]
    repeated = sorted(label for label, times in Counter(labels).items() if times > 1)
    if repeated:
        source.warn(f"point labels occur more than once: {', '.join(repeated)}")
    return labels


def _analog_labels(parameters: Parameters, count: int) -> list[str]:
    labels = _numbered_strings(parameters, "ANALOG", "LABELS")[:count]
    return labels + [f"ANALOG{index + 1}" for index in range(len(labels), count)]


def _analog_rate(parameters: Parameters, layout: DataLayout) -> float:
    rate = parameters.real("ANALOG", "RATE")
    if rate is not None and rate > 0:
        return rate
    return layout.rate * layout.analog_samples_per_frame
