"""A small C3D writer for tests, written from the C3D specification.

It produces the exact bytes of a C3D file (header block, parameter section, data block) for any
processor type and storage, and lets a test make the file deviate from the specification in
the ways real writers do: stale header values, duplicate or missing parameters, moved blocks,
labels split over LABELS/LABELS2, 16-bit counts that overflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

BLOCK = 512
PROCESSOR_BYTE = {"intel": 84, "dec": 85, "mips": 86}


@dataclass
class Parameter:
    """One parameter; ``kind`` is 'char', 'byte', 'int' or 'float' (inferred when None)."""

    group: str
    name: str
    value: Any
    kind: str | None = None
    dims: tuple[int, ...] | None = None
    description: str = ""


@dataclass
class C3DSpec:
    """Everything needed to write one file; fields default to a valid Intel float file."""

    points: np.ndarray
    """(frames, points, 3) coordinates in the file's units."""
    residual_words: np.ndarray | None = None
    """(frames, points) integer fourth words (negative = invalid); default 0."""
    processor: str = "intel"
    scale: float = -0.1
    rate: float = 100.0
    first_frame: int = 1
    labels: list[str] | None = None
    units: str = "mm"
    analog: np.ndarray | None = None
    """(frames x samples per frame, channels) stored analog values."""
    analog_samples_per_frame: int = 1
    labels_per_parameter: int = 255
    parameter_block: int = 2
    blocks_before_data: int = 0
    """Extra unused blocks between the parameter section and the data."""
    omit: set[str] = field(default_factory=set)
    """'GROUP:NAME' of standard parameters not to write."""
    overrides: dict[str, Parameter] = field(default_factory=dict)
    """'GROUP:NAME' -> replacement of a standard parameter."""
    extra: list[Parameter] = field(default_factory=list)
    """Further parameters, written after the standard ones (duplicates allowed)."""
    header: dict[str, Any] = field(default_factory=dict)
    """Header fields to force: point_count, analog_values, first_frame, last_frame, scale,
    data_block, samples_per_frame, rate, parameter_block, key."""
    parameter_blocks: int | None = None
    """Value of the 'number of parameter blocks' byte; default: the true count."""


class Encoder:
    """Number encoding of one processor type."""

    def __init__(self, processor: str) -> None:
        self.processor = processor
        self.order = ">" if processor == "mips" else "<"

    def int16(self, values: Any) -> bytes:
        words = np.asarray(values, dtype=np.int64).reshape(-1) & 0xFFFF
        return words.astype(self.order + "u2").tobytes()

    def float32(self, values: Any) -> bytes:
        numbers = np.asarray(values, dtype=np.float64).reshape(-1)
        if self.processor != "dec":
            return numbers.astype(self.order + "f4").tobytes()
        ieee = (numbers * 4.0).astype("<f4").view("<u4")
        return ((ieee << 16) | (ieee >> 16)).astype("<u4").tobytes()


def _infer(parameter: Parameter) -> tuple[str, tuple[int, ...], Any]:
    value = parameter.value
    kind = parameter.kind
    if kind is None:
        if isinstance(value, str) or (
            isinstance(value, list) and value and isinstance(value[0], str)
        ):
            kind = "char"
        elif np.asarray(value).dtype.kind == "f":
            kind = "float"
        else:
            kind = "int"
    if kind == "char":
        strings = [value] if isinstance(value, str) else list(value)
        width = max((len(s) for s in strings), default=0)
        dims = parameter.dims or ((width,) if isinstance(value, str) else (width, len(strings)))
        data = "".join(s.ljust(dims[0])[: dims[0]] for s in strings).encode("latin-1")
        return kind, dims, data
    array = np.asarray(value)
    dims = (
        parameter.dims if parameter.dims is not None else (() if array.ndim == 0 else array.shape)
    )
    return kind, dims, array.reshape(-1, order="F") if array.ndim else array.reshape(1)


def encode_parameter(encoder: Encoder, parameter: Parameter, group_id: int) -> tuple[bytes, bytes]:
    """(name part, body) of a parameter record; ``chain`` inserts the offset between them."""
    kind, dims, data = _infer(parameter)
    type_code = {"char": -1, "byte": 1, "int": 2, "float": 4}[kind]
    if kind == "char":
        payload = data
    elif kind == "byte":
        payload = np.asarray(data, dtype=np.int64).astype(np.int8).tobytes()
    elif kind == "int":
        payload = encoder.int16(data)
    else:
        payload = encoder.float32(data)
    description = parameter.description.encode("latin-1")
    body = (
        np.int8(type_code).tobytes()
        + bytes([len(dims)])
        + bytes(dims)
        + payload
        + bytes([len(description)])
        + description
    )
    name = parameter.name.encode("ascii")
    return bytes([len(name), group_id]) + name, body


def encode_group(name: str, group_id: int, description: str = "") -> tuple[bytes, bytes]:
    """(name part, body) of a group record (negative group id)."""
    text = description.encode("latin-1")
    encoded = name.encode("ascii")
    return bytes([len(encoded), (-group_id) & 0xFF]) + encoded, bytes([len(text)]) + text


def chain(encoder: Encoder, records: list[tuple[bytes, bytes]]) -> bytes:
    """Join records, each 'offset to next' pointing to the following one; the last is 0."""
    out = b""
    for index, (head, body) in enumerate(records):
        last = index == len(records) - 1
        offset = 0 if last else 2 + len(body)
        out += head + encoder.int16(offset) + body
    return out


def standard_parameters(
    spec: C3DSpec, frames: int, point_count: int, data_block: int
) -> list[Parameter]:
    labels = spec.labels if spec.labels is not None else [f"M{i:03d}" for i in range(point_count)]
    chunks = [
        labels[i : i + spec.labels_per_parameter]
        for i in range(0, len(labels), spec.labels_per_parameter)
    ]
    parameters = [
        Parameter("POINT", "USED", point_count),
        Parameter("POINT", "FRAMES", frames),
        Parameter("POINT", "DATA_START", data_block),
        Parameter("POINT", "SCALE", float(spec.scale)),
        Parameter("POINT", "RATE", float(spec.rate)),
        Parameter("POINT", "UNITS", spec.units),
    ]
    for index, chunk in enumerate(chunks or [[]]):
        suffix = "" if index == 0 else str(index + 1)
        width = max([8] + [len(label) for label in chunk])
        parameters.append(
            Parameter("POINT", f"LABELS{suffix}", chunk, kind="char", dims=(width, len(chunk)))
        )
    channels = 0 if spec.analog is None else spec.analog.shape[1]
    parameters += [
        Parameter("ANALOG", "USED", channels),
        Parameter("ANALOG", "RATE", float(spec.rate * spec.analog_samples_per_frame)),
        Parameter("ANALOG", "GEN_SCALE", 1.0),
        Parameter("ANALOG", "SCALE", np.ones(channels)),
        Parameter("ANALOG", "OFFSET", np.zeros(channels, dtype=np.int64)),
        Parameter(
            "ANALOG", "LABELS", [f"CH{i}" for i in range(channels)], kind="char", dims=(4, channels)
        ),
    ]
    result = []
    for parameter in parameters:
        key = f"{parameter.group}:{parameter.name}"
        if key in spec.omit:
            continue
        result.append(spec.overrides.get(key, parameter))
    return result + list(spec.extra)


def parameter_section(spec: C3DSpec, encoder: Encoder, parameters: list[Parameter]) -> bytes:
    group_ids: dict[str, int] = {}
    for parameter in parameters:
        group_ids.setdefault(parameter.group, len(group_ids) + 1)
    records = [encode_group(name, gid) for name, gid in group_ids.items()]
    records += [encode_parameter(encoder, p, group_ids[p.group]) for p in parameters]
    body = chain(encoder, records) + b"\x00\x00"
    blocks = -(-(4 + len(body)) // BLOCK)
    declared = spec.parameter_blocks if spec.parameter_blocks is not None else blocks
    head = bytes([1, 0x50, declared, PROCESSOR_BYTE[spec.processor]])
    return (head + body).ljust(blocks * BLOCK, b"\x00")


def data_block(spec: C3DSpec, encoder: Encoder) -> bytes:
    points = np.asarray(spec.points, dtype=np.float64)
    frames, count = points.shape[:2]
    words = np.zeros((frames, count)) if spec.residual_words is None else spec.residual_words
    if spec.scale < 0:
        per_point = np.concatenate(
            [points, np.asarray(words, dtype=np.float64)[..., None]], axis=-1
        )
        encode = encoder.float32
    else:
        stored = np.rint(points / spec.scale)
        per_point = np.concatenate([stored, np.asarray(words)[..., None]], axis=-1)
        encode = encoder.int16
    analog = np.zeros((frames, 0))
    if spec.analog is not None:
        analog = np.asarray(spec.analog).reshape(frames, -1)
    return encode(np.concatenate([per_point.reshape(frames, -1), analog], axis=1))


def header_block(
    spec: C3DSpec, encoder: Encoder, frames: int, point_count: int, data_start: int
) -> bytes:
    values = {
        "key": 0x50,
        "parameter_block": spec.parameter_block,
        "point_count": point_count,
        "analog_values": (
            0 if spec.analog is None else spec.analog.shape[1] * spec.analog_samples_per_frame
        ),
        "first_frame": spec.first_frame,
        "last_frame": min(spec.first_frame + frames - 1, 0xFFFF),
        "scale": spec.scale,
        "data_block": data_start,
        "samples_per_frame": spec.analog_samples_per_frame,
        "rate": spec.rate,
    }
    values.update(spec.header)
    head = bytes([values["parameter_block"], values["key"]])
    head += encoder.int16(
        [
            values["point_count"],
            values["analog_values"],
            values["first_frame"],
            values["last_frame"],
            0,
        ]
    )
    head += encoder.float32(values["scale"])
    head += encoder.int16([values["data_block"], values["samples_per_frame"]])
    head += encoder.float32(values["rate"])
    return head.ljust(BLOCK, b"\x00")


def build_c3d(spec: C3DSpec) -> bytes:
    """The bytes of the C3D file described by ``spec``."""
    encoder = Encoder(spec.processor)
    frames, point_count = np.asarray(spec.points).shape[:2]
    gap = spec.parameter_block - 2
    provisional = standard_parameters(spec, frames, point_count, 0)
    parameter_bytes = parameter_section(spec, encoder, provisional)
    data_start = spec.parameter_block + len(parameter_bytes) // BLOCK + spec.blocks_before_data
    parameters = standard_parameters(spec, frames, point_count, data_start)
    parameter_bytes = parameter_section(spec, encoder, parameters)
    header = header_block(spec, encoder, frames, point_count, data_start)
    padding = b"\xff" * BLOCK * (gap + spec.blocks_before_data)
    before_parameters, after_parameters = padding[: gap * BLOCK], padding[gap * BLOCK :]
    data = data_block(spec, encoder)
    data = data.ljust(-(-len(data) // BLOCK) * BLOCK, b"\x00")
    return header + before_parameters + parameter_bytes + after_parameters + data
