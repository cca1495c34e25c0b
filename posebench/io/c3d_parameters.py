"""The C3D parameter section: groups and parameters, decoded by type and dimensions.

Records are followed through their "offset to next record" field (not read back to back), so a
wrong description length or an over-long value damages one parameter, not the rest. A record
that cannot be trusted is skipped with a warning; a record that runs past the end of the file
is a truncation and raises :class:`~posebench.errors.C3DError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from posebench.io.c3d_source import BLOCK_SIZE, C3DSource, NumberFormat

ParameterValue = Union[np.ndarray, str, list]
"""Numeric parameters are numpy arrays (shape = dimensions); character parameters are a ``str``
(0 or 1 dimension), a list of ``str`` (2 dimensions) or nested lists (more)."""

TYPE_CHAR, TYPE_BYTE, TYPE_INT16, TYPE_FLOAT = -1, 1, 2, 4
MAX_DIMENSIONS = 7
MAX_POSITIVE_OFFSET = 32767


@dataclass
class Parameters:
    """Decoded parameter groups: ``groups[GROUP][PARAM]`` is the value (names upper-cased)."""

    groups: dict[str, dict[str, ParameterValue]] = field(default_factory=dict)
    group_descriptions: dict[str, str] = field(default_factory=dict)

    def get(self, group: str, name: str) -> ParameterValue | None:
        """The value of ``GROUP:NAME`` or None when absent."""
        return self.groups.get(group, {}).get(name)

    def count(self, group: str, name: str) -> int | None:
        """First element of a numeric parameter as a non-negative count, or None.

        C3D integers are signed 16-bit (bytes signed 8-bit), but vendors store counts above
        32767 as unsigned: a negative integer count is read as its unsigned value.
        """
        value = self.get(group, name)
        if not isinstance(value, np.ndarray) or value.size == 0:
            return None
        first = value.reshape(-1)[0]
        if value.dtype.kind == "f":
            if not math.isfinite(float(first)) or first < 0:
                return None
            return int(round(float(first)))
        number = int(first)
        if number < 0:
            number += 1 << (8 * value.dtype.itemsize)
        return number

    def real(self, group: str, name: str) -> float | None:
        """First element of a numeric parameter as a float, or None when absent or not finite."""
        value = self.get(group, name)
        if not isinstance(value, np.ndarray) or value.size == 0:
            return None
        number = float(value.reshape(-1)[0])
        return number if math.isfinite(number) else None

    def text(self, group: str, name: str) -> str | None:
        """A character parameter as one string (the first string of an array), or None."""
        value = self.get(group, name)
        while isinstance(value, list):
            value = value[0] if value else ""
        return value if isinstance(value, str) else None

    def strings(self, group: str, name: str) -> list[str] | None:
        """A character parameter as a flat list of strings, or None when absent or numeric."""
        value = self.get(group, name)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(item) for item in np.asarray(value, dtype=object).reshape(-1, order="F")]
        return None

    def numbers(self, group: str, name: str) -> np.ndarray | None:
        """A numeric parameter flattened in storage order as float64, or None."""
        value = self.get(group, name)
        if not isinstance(value, np.ndarray):
            return None
        return value.reshape(-1, order="F").astype(np.float64)


@dataclass
class _Record:
    group_id: int
    name: str
    value: ParameterValue | None = None
    description: str = ""


def read_parameters(source: C3DSource, parameter_block: int, fmt: NumberFormat) -> Parameters:
    """Parse the parameter section that starts at 1-based block ``parameter_block``."""
    start = (parameter_block - 1) * BLOCK_SIZE
    declared_blocks = source.byte(start + 2, "the number of parameter blocks")
    declared_end = start + declared_blocks * BLOCK_SIZE
    records: list[_Record] = []
    position = start + 4
    overflow_warned = False
    while True:
        if position + 2 > source.size:
            if position >= declared_end:
                break
            source.require(position, 2, "the next parameter record")
        name_length = source.signed_byte(position, "the name length of a parameter record")
        group_id = source.signed_byte(position + 1, "the group id of a parameter record")
        if name_length == 0 or group_id == 0:
            break
        record, next_position = _read_record(
            source, fmt, position, abs(name_length), group_id, declared_end
        )
        if record is not None:
            records.append(record)
        if next_position is None:
            break
        if next_position > declared_end and not overflow_warned:
            overflow_warned = True
            source.warn(
                f"parameter records continue past the {declared_blocks} block(s) the parameter "
                f"section declares (from byte offset {position}); read anyway"
            )
        position = next_position
    return _assemble(source, records)


def _read_record(
    source: C3DSource,
    fmt: NumberFormat,
    position: int,
    name_length: int,
    group_id: int,
    declared_end: int,
) -> tuple[_Record | None, int | None]:
    """Decode one record; return it (None if unusable) and where the next record starts.

    The next position is None after the last record and when the chain cannot be followed.
    """
    raw_name = source.take(position + 2, name_length, "the name of a parameter record")
    offset_position = position + 2 + name_length
    offset = source.int16(offset_position, fmt, "the offset to the next parameter record")
    body = offset_position + 2
    try:
        name = raw_name.decode("ascii")
    except UnicodeDecodeError:
        name = ""
    if not name.isprintable() or not name.strip():
        source.warn(
            f"parameter record at byte offset {position} has an unreadable name "
            f"{raw_name[:16]!r}; the parameter section is read up to there"
        )
        return None, None
    name = name.strip().upper()
    layout = None if group_id < 0 else _read_value_layout(source, body, name)
    natural_end = body if layout is None else layout.end
    next_position = _next_position(source, position, offset_position, offset, natural_end, name)
    description, record_end = _read_description(source, natural_end, next_position)
    if next_position is not None and next_position > declared_end and next_position != record_end:
        source.warn(
            f"the offset of parameter record {name} at byte offset {position} points to byte "
            f"{next_position}, outside the parameter section (which ends at byte "
            f"{declared_end}) and not to the end of the record (byte {record_end}); the "
            "parameter section is taken to end there"
        )
        next_position = None
    if next_position is not None and next_position > source.size:
        raise source.error(
            offset_position,
            f"the next parameter record after {name} within the file",
            f"an offset to byte {next_position}, past the end of file at byte {source.size} "
            "(the file is truncated)",
        )
    record = _Record(group_id, name, description=description)
    if layout is None:
        return (record if group_id < 0 else None), next_position
    if next_position is not None and layout.end > next_position:
        source.warn(
            f"parameter {name} at byte offset {position} declares a value longer than its "
            "record (the offset to the next record is too small); its value is ignored"
        )
        return None, next_position
    record.value = _decode_value(source, fmt, layout, name)
    return record, next_position


def _next_position(
    source: C3DSource, position: int, offset_position: int, offset: int, natural_end: int, name: str
) -> int | None:
    """Where the next record starts, per the offset field (None after the last record)."""
    if offset == 0:
        return None
    if offset < 0:
        if natural_end - offset_position > MAX_POSITIVE_OFFSET:
            return offset_position + offset + 65536
        source.warn(
            f"parameter record {name} at byte offset {position} points backwards ({offset}); "
            "the parameter section is read up to there"
        )
        return None
    return offset_position + offset


@dataclass(frozen=True)
class _ValueLayout:
    type_code: int
    dims: tuple[int, ...]
    offset: int
    count: int
    end: int


def _read_value_layout(source: C3DSource, body: int, name: str) -> _ValueLayout | None:
    """Type and dimensions of a parameter, or None (with a warning) when they are invalid."""
    type_code = source.signed_byte(body, f"the data type of parameter {name}")
    dimension_count = source.byte(body + 1, f"the number of dimensions of parameter {name}")
    if type_code not in (TYPE_CHAR, TYPE_BYTE, TYPE_INT16, TYPE_FLOAT) or (
        dimension_count > MAX_DIMENSIONS
    ):
        source.warn(
            f"parameter {name} at byte offset {body} has data type {type_code} and "
            f"{dimension_count} dimensions (expected type -1, 1, 2 or 4 and at most "
            f"{MAX_DIMENSIONS} dimensions); it is ignored"
        )
        return None
    dims = tuple(source.take(body + 2, dimension_count, f"the dimensions of parameter {name}"))
    offset = body + 2 + dimension_count
    count = math.prod(dims)
    return _ValueLayout(type_code, dims, offset, count, offset + count * abs(type_code))


def _decode_value(
    source: C3DSource, fmt: NumberFormat, layout: _ValueLayout, name: str
) -> ParameterValue:
    """Decode a value; dimensions are column-major (the first varies fastest)."""
    offset, count, dims = layout.offset, layout.count, layout.dims
    expected = f"the value of parameter {name} (dimensions {dims})"
    if layout.type_code == TYPE_CHAR:
        return _decode_chars(source.take(offset, count, expected), dims)
    if layout.type_code == TYPE_FLOAT:
        raw = source.array(offset, fmt.float32_raw, count, expected)
        values = fmt.decode_floats(raw).astype(np.float32)
    else:
        dtype = fmt.int8 if layout.type_code == TYPE_BYTE else fmt.int16
        values = source.array(offset, dtype, count, expected)
        values = values.astype(values.dtype.newbyteorder("="))
    return values.reshape(dims, order="F")


def _decode_chars(raw: bytes, dims: tuple[int, ...]) -> ParameterValue:
    """Character data: one string per column of the first dimension, padding stripped."""
    if len(dims) <= 1:
        return _text(raw)
    width = dims[0]
    count = math.prod(dims[1:])
    if raw.isascii():
        text = raw.decode("ascii")
        strings = [text[i * width : (i + 1) * width].strip(" \x00") for i in range(count)]
    else:
        strings = [_text(raw[i * width : (i + 1) * width]) for i in range(count)]
    if len(dims) == 2:
        return strings
    return np.array(strings, dtype=object).reshape(dims[1:], order="F").tolist()


def _text(raw: bytes) -> str:
    """Decode UTF-8 (Latin-1 when that fails) and strip spaces and NUL padding."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.strip(" \x00")


def _read_description(source: C3DSource, offset: int, limit: int | None) -> tuple[str, int]:
    """The description after a record's value and where it ends.

    The text is clipped to ``limit`` (the next record) when its length byte is wrong: some
    writers omit it.
    """
    if offset >= source.size:
        return "", offset
    length = source.data[offset]
    description_end = offset + 1 + length
    stop = min(description_end, source.size)
    if limit is not None:
        stop = min(stop, max(limit, offset + 1))
    return _text(source.data[offset + 1 : stop]), description_end


def _assemble(source: C3DSource, records: list[_Record]) -> Parameters:
    """Group parameters by group name; keep the first of duplicates and warn."""
    parameters = Parameters()
    group_names: dict[int, str] = {}
    for record in records:
        if record.group_id > 0:
            continue
        group_id = -record.group_id
        if group_id in group_names:
            source.warn(
                f"group id {group_id} is defined twice ({group_names[group_id]} and "
                f"{record.name}); the first definition is kept"
            )
            continue
        if record.name in parameters.groups:
            source.warn(f"group {record.name} is defined twice; its parameters are merged")
        group_names[group_id] = record.name
        parameters.groups.setdefault(record.name, {})
        parameters.group_descriptions.setdefault(record.name, record.description)
    duplicates: dict[str, list[str]] = {}
    orphans: dict[str, list[str]] = {}
    for record in records:
        if record.group_id < 0 or record.value is None:
            continue
        group = group_names.get(record.group_id)
        if group is None:
            group = f"UNDEFINED_GROUP_{record.group_id}"
            orphans.setdefault(group, []).append(record.name)
        members = parameters.groups.setdefault(group, {})
        if record.name in members:
            duplicates.setdefault(group, []).append(record.name)
            continue
        members[record.name] = record.value
    for group, names in orphans.items():
        source.warn(
            f"parameters {', '.join(names)} belong to group id {group.rsplit('_', 1)[1]}, which "
            f"is not defined; they are kept under {group}"
        )
    for group, names in duplicates.items():
        listed = ", ".join(f"{group}:{name}" for name in dict.fromkeys(names))
        source.warn(f"parameters defined more than once (the first definition is kept): {listed}")
    return parameters
