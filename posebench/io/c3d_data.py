"""Vectorised decoding of the C3D data block: point coordinates, residual words, analog samples.

The whole block is viewed once with a record dtype (one record per frame: points x 4 values,
then the analog samples) and converted with array operations; there is no per-frame loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebench.io.c3d_layout import DataLayout
from posebench.io.c3d_parameters import Parameters
from posebench.io.c3d_source import C3DSource, NumberFormat

RESIDUAL_MASK = 0x00FF
CAMERA_SHIFT = 8
CAMERA_MASK = 0x7F


@dataclass(frozen=True)
class PointData:
    """Decoded points of all frames."""

    points: np.ndarray
    """(frames, points, 3) float64 in millimetres, NaN where the sample is invalid."""
    residuals: np.ndarray
    """(frames, points) float64 in millimetres, NaN where the sample is invalid."""
    camera_masks: np.ndarray
    """(frames, points) uint8, bit k set when camera k+1 saw the point (0 where invalid)."""


def frame_records(
    source: C3DSource, layout: DataLayout, fmt: NumberFormat, unsigned_analog: bool
) -> np.ndarray:
    """A read-only record array over the data block, one record per frame."""
    point_dtype = fmt.float32_raw if layout.is_float else fmt.int16
    if layout.is_float:
        analog_dtype = fmt.float32_raw
    else:
        analog_dtype = fmt.uint16 if unsigned_analog else fmt.int16
    record = np.dtype(
        [
            ("points", point_dtype, (layout.point_count, 4)),
            ("analog", analog_dtype, (layout.analog_values_per_frame,)),
        ]
    )
    if record.itemsize == 0:
        return np.zeros(layout.frame_count, dtype=record)
    source.require(
        layout.data_offset,
        layout.frame_count * record.itemsize,
        f"{layout.frame_count} frames of {record.itemsize} bytes",
    )
    return np.frombuffer(
        source.data, dtype=record, count=layout.frame_count, offset=layout.data_offset
    )


def frame_fields(
    records: np.ndarray, layout: DataLayout, fmt: NumberFormat
) -> tuple[np.ndarray, np.ndarray]:
    """Point values (frames, points, 4) and analog values (frames, values per frame).

    DEC reals need converting: the whole block is decoded to float64 at once and split.
    Other formats are returned as stored (int16/uint16 or float32 views of the file bytes).
    """
    if not (layout.is_float and fmt.processor == "dec") or records.dtype.itemsize == 0:
        return records["points"], records["analog"]
    values = fmt.decode_floats(records.view(fmt.float32_raw)).reshape(len(records), -1)
    split = 4 * layout.point_count
    return values[:, :split].reshape(len(records), layout.point_count, 4), values[:, split:]


def decode_points(values: np.ndarray, layout: DataLayout, unit_factor: float) -> PointData:
    """Coordinates, residuals and camera masks from the point values of every frame.

    The fourth value of each point packs the camera mask (high byte, bit 7 unused) and the
    residual in units of |POINT:SCALE| (low byte); a negative value marks an invalid sample.
    In float storage that word is the integer part of the stored real.
    """
    magnitude = abs(layout.scale)
    if layout.is_float:
        points, invalid, word = _float_points(values)
        if unit_factor != 1.0:
            points *= unit_factor
    else:
        integers = values.astype(np.int32)
        word = integers[..., 3]
        invalid = word < 0
        points = integers[..., :3] * (magnitude * unit_factor)
    np.copyto(points, np.nan, where=invalid[..., np.newaxis])
    residuals = (word & RESIDUAL_MASK) * (magnitude * unit_factor)
    np.copyto(residuals, np.nan, where=invalid)
    cameras = ((word >> CAMERA_SHIFT) & CAMERA_MASK).astype(np.uint8)
    np.copyto(cameras, 0, where=invalid)
    return PointData(points, residuals, cameras)


def _float_points(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates (float64, as stored), invalid mask and residual word of float storage.

    A sample is invalid when its fourth value is negative or any value is not finite (the
    word of an invalid sample is meaningless and masked by the caller).
    """
    points = np.empty(values.shape[:-1] + (3,), dtype=np.float64)
    points[...] = values[..., :3]
    fourth = values[..., 3]
    with np.errstate(invalid="ignore"):
        invalid = ~(fourth >= 0)
        invalid |= ~np.isfinite(points[..., 0] + points[..., 1] + points[..., 2])
        word = np.clip(fourth, 0, 0xFFFF).astype(np.int32)
    return points, invalid, word


def decode_analog(
    source: C3DSource,
    values: np.ndarray,
    layout: DataLayout,
    parameters: Parameters,
    unsigned: bool,
) -> np.ndarray | None:
    """Analog samples as (frames x samples per frame, channels) float64, scaled, or None.

    value = (stored - ANALOG:OFFSET) x ANALOG:SCALE x ANALOG:GEN_SCALE per channel; missing
    scales count as 1 and missing offsets as 0 (with a warning).
    """
    channels = layout.analog_channels
    if channels == 0:
        return None
    samples = np.array(values, dtype=np.float64).reshape(
        layout.frame_count * layout.analog_samples_per_frame, channels
    )
    scales = _per_channel(
        source, parameters.numbers("ANALOG", "SCALE"), channels, 1.0, "ANALOG:SCALE"
    )
    offsets = _per_channel(
        source, parameters.numbers("ANALOG", "OFFSET"), channels, 0.0, "ANALOG:OFFSET"
    )
    if unsigned:
        offsets = np.where(offsets < 0, offsets + 65536, offsets)
    general = parameters.real("ANALOG", "GEN_SCALE")
    if general is None:
        source.warn("ANALOG:GEN_SCALE is missing; 1 is used")
        general = 1.0
    if offsets.any():
        samples -= offsets
    factors = scales * general
    if not np.all(factors == 1.0):
        samples *= factors
    return samples


def _per_channel(
    source: C3DSource, values: np.ndarray | None, channels: int, default: float, name: str
) -> np.ndarray:
    """One value per channel; padded with ``default`` (and a warning) when too short."""
    found = np.zeros(0) if values is None else values[:channels]
    found = np.where(np.isfinite(found), found, default)
    if found.size < channels:
        source.warn(
            f"{name} has {found.size} values for {channels} analog channels; {default:g} is "
            "used for the others"
        )
    return np.concatenate([found, np.full(channels - found.size, default)])
