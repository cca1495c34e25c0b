"""Where the data block is and how each frame is laid out, reconciled from header and parameters.

The parameters are trusted over the header (the header is a summary that writers often leave
stale); every disagreement is reported as a warning. A layout is only accepted when the frames
it describes lie within the file, so a wrong value on one side falls back to the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from posebench.io.c3d_header import C3DHeader
from posebench.io.c3d_parameters import Parameters
from posebench.io.c3d_source import BLOCK_SIZE, C3DSource

UINT16_RANGE = 65536


@dataclass(frozen=True)
class DataLayout:
    """Counts and byte positions needed to decode the data block in one pass."""

    point_count: int
    frame_count: int
    first_frame: int
    scale: float
    """POINT:SCALE as used: negative means float storage, its magnitude scales integers and
    residuals."""
    rate: float
    data_offset: int
    analog_channels: int
    analog_samples_per_frame: int

    @property
    def is_float(self) -> bool:
        """Whether points and analog samples are stored as 4-byte reals (else 16-bit integers)."""
        return self.scale < 0

    @property
    def word_size(self) -> int:
        """Bytes per stored value."""
        return 4 if self.is_float else 2

    @property
    def analog_values_per_frame(self) -> int:
        """Analog samples stored after the points of each frame (all channels)."""
        return self.analog_channels * self.analog_samples_per_frame

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame: 4 values per point, then the analog samples."""
        return (4 * self.point_count + self.analog_values_per_frame) * self.word_size


@dataclass(frozen=True)
class _FrameCount:
    count: int
    first_frame: int
    may_wrap: bool
    """True when the count comes from a 16-bit field that may have overflowed."""


def resolve_layout(source: C3DSource, header: C3DHeader, parameters: Parameters) -> DataLayout:
    """Reconcile header and parameters into the layout of the data block."""
    has_parameters = bool(parameters.groups)
    if not has_parameters:
        source.warn("the file has no parameters; the header alone describes the data")
    points = _agree(
        source,
        parameters.count("POINT", "USED"),
        header.point_count,
        "POINT:USED",
        "header word 2 (number of points)",
        has_parameters,
    )
    scale = _scale(source, parameters, header, has_parameters)
    rate = _rate(source, parameters, header, has_parameters)
    frames = _frame_count(source, parameters, header, has_parameters)
    analog_options = _analog_options(source, parameters, header, rate)
    offset_options = _data_offsets(source, parameters, header, has_parameters)
    options = [
        DataLayout(
            points, frames.count, frames.first_frame, scale, rate, offset, channels, per_frame
        )
        for offset in offset_options
        for channels, per_frame in analog_options
    ]
    return _choose(source, options, frames.may_wrap)


def _agree(
    source: C3DSource,
    parameter: int | None,
    header: int,
    name: str,
    header_name: str,
    has_parameters: bool,
) -> int:
    """The parameter's count, or the header's when it is missing; warn when they differ."""
    if parameter is None:
        if has_parameters:
            source.warn(f"{name} is missing; {header_name} ({header}) is used")
        return header
    if parameter != header:
        source.warn(f"{name} ({parameter}) and {header_name} ({header}) disagree; {name} is used")
    return parameter


def _scale(
    source: C3DSource, parameters: Parameters, header: C3DHeader, has_parameters: bool
) -> float:
    """POINT:SCALE, the header's scale when it is missing or zero; -1 when both are zero."""
    scale = parameters.real("POINT", "SCALE")
    if scale is None or scale == 0:
        if has_parameters:
            state = "missing" if scale is None else "0"
            source.warn(f"POINT:SCALE is {state}; the header scale ({header.scale:g}) is used")
        scale = header.scale
    elif not np.isclose(scale, header.scale, rtol=1e-5, atol=0.0):
        source.warn(
            f"POINT:SCALE ({scale:g}) and the header scale ({header.scale:g}) disagree; "
            "POINT:SCALE is used"
        )
    if scale == 0 or not math.isfinite(scale):
        source.warn(f"the point scale is {scale:g}; float storage with a scale of -1 is assumed")
        scale = -1.0
    return float(scale)


def _rate(
    source: C3DSource, parameters: Parameters, header: C3DHeader, has_parameters: bool
) -> float:
    """POINT:RATE, else the header rate; 0 when neither is a positive number."""
    rate = parameters.real("POINT", "RATE")
    header_rate = header.rate if math.isfinite(header.rate) and header.rate > 0 else 0.0
    if rate is None or rate <= 0:
        if has_parameters:
            state = "missing" if rate is None else f"{rate:g}"
            source.warn(f"POINT:RATE is {state}; the header rate ({header_rate:g} Hz) is used")
        if header_rate == 0:
            source.warn("the file states no positive frame rate; rate is 0")
        return header_rate
    if not np.isclose(rate, header.rate, rtol=1e-5, atol=0.0):
        source.warn(
            f"POINT:RATE ({rate:g} Hz) and the header rate ({header.rate:g} Hz) disagree; "
            "POINT:RATE is used"
        )
    return float(rate)


def _long_count(parameters: Parameters, name: str) -> int | None:
    """A TRIAL field stored as two 16-bit words (low, high), as Vicon writes them."""
    raw = parameters.get("TRIAL", name)
    if not isinstance(raw, np.ndarray) or raw.size == 0:
        return None
    values = raw.reshape(-1, order="F")
    if raw.dtype.kind == "f":
        return int(round(float(values[0]))) if math.isfinite(values[0]) else None
    low = int(values[0]) % UINT16_RANGE
    high = int(values[1]) % UINT16_RANGE if values.size > 1 else 0
    return low + high * UINT16_RANGE


def _frame_count(
    source: C3DSource, parameters: Parameters, header: C3DHeader, has_parameters: bool
) -> _FrameCount:
    """Number of frames and first frame number, handling the >65535-frame conventions."""
    header_count = header.last_frame - header.first_frame + 1
    trial_start = _long_count(parameters, "ACTUAL_START_FIELD")
    trial_end = _long_count(parameters, "ACTUAL_END_FIELD")
    trial_count = None
    if trial_start is not None and trial_end is not None and trial_end >= trial_start:
        trial_count = trial_end - trial_start + 1
    stored = parameters.get("POINT", "FRAMES")
    count = parameters.count("POINT", "FRAMES")
    if count is None:
        if trial_count is not None and trial_start is not None:
            source.warn(
                "POINT:FRAMES is missing; TRIAL:ACTUAL_START_FIELD/ACTUAL_END_FIELD give "
                f"{trial_count} frames"
            )
            return _FrameCount(trial_count, trial_start, False)
        if has_parameters:
            source.warn(f"POINT:FRAMES is missing; the header gives {max(header_count, 0)} frames")
        return _FrameCount(max(header_count, 0), header.first_frame, True)
    is_integer = isinstance(stored, np.ndarray) and stored.dtype.kind != "f"
    if (
        is_integer
        and trial_count is not None
        and trial_start is not None
        and trial_count >= UINT16_RANGE
        and trial_count % UINT16_RANGE == count
    ):
        return _FrameCount(trial_count, trial_start, False)
    if count < UINT16_RANGE and header_count > 0 and header_count != count:
        source.warn(
            f"POINT:FRAMES ({count}) and the header frame range {header.first_frame}-"
            f"{header.last_frame} ({header_count} frames) disagree; POINT:FRAMES is used"
        )
    return _FrameCount(count, header.first_frame, is_integer)


def _analog_options(
    source: C3DSource, parameters: Parameters, header: C3DHeader, rate: float
) -> list[tuple[int, int]]:
    """(channels, samples per frame) from the parameters, then from the header if different."""
    header_per_frame = header.analog_samples_per_frame
    header_channels = (
        header.analog_values_per_frame // header_per_frame
        if header_per_frame
        else header.analog_values_per_frame
    )
    from_header = (header_channels, header_per_frame or 1)
    channels = parameters.count("ANALOG", "USED")
    if channels is None:
        if header.analog_values_per_frame:
            source.warn(
                f"ANALOG:USED is missing; the header gives {header_channels} analog channels"
            )
        return [from_header]
    analog_rate = parameters.real("ANALOG", "RATE")
    per_frame = 0
    if analog_rate is not None and analog_rate > 0 and rate > 0:
        ratio = analog_rate / rate
        per_frame = round(ratio)
        if channels and abs(ratio - per_frame) > 1e-3 * ratio:
            source.warn(
                f"ANALOG:RATE ({analog_rate:g} Hz) is not a whole multiple of the point rate "
                f"({rate:g} Hz); {per_frame} analog samples per frame are assumed"
            )
    if per_frame == 0:
        per_frame = (
            header_per_frame or (header.analog_values_per_frame // channels if channels else 1) or 1
        )
    options = [(channels, per_frame)]
    if channels * per_frame != header.analog_values_per_frame:
        source.warn(
            f"ANALOG:USED ({channels}) x {per_frame} samples per frame and the header "
            f"({header.analog_values_per_frame} analog values per frame) disagree; the "
            "parameters are used"
        )
        options.append(from_header)
    return options


def _data_offsets(
    source: C3DSource, parameters: Parameters, header: C3DHeader, has_parameters: bool
) -> list[int]:
    """Byte offsets where the data may start: POINT:DATA_START first, then the header's."""
    blocks = []
    parameter_block = parameters.count("POINT", "DATA_START")
    valid = parameter_block is not None and 2 <= parameter_block != header.parameter_block
    if valid:
        blocks.append(parameter_block)
        if parameter_block != header.data_block:
            source.warn(
                f"POINT:DATA_START (block {parameter_block}) and the header (block "
                f"{header.data_block}) disagree; POINT:DATA_START is used"
            )
    elif has_parameters:
        state = "missing" if parameter_block is None else f"block {parameter_block}, not valid"
        source.warn(
            f"POINT:DATA_START is {state}; the header data start (block {header.data_block}) "
            "is used"
        )
    if header.data_block >= 2 and header.data_block != header.parameter_block:
        blocks.append(header.data_block)
    if not blocks:
        raise source.error(
            16,
            "a data start block (header word 9 or POINT:DATA_START) of 2 or more that is not "
            "the parameter block",
            f"{header.data_block}",
        )
    return [(block - 1) * BLOCK_SIZE for block in dict.fromkeys(blocks)]


def _choose(source: C3DSource, options: list[DataLayout], may_wrap: bool) -> DataLayout:
    """The first layout whose frames fit in the file, after the 16-bit frame-count rules."""
    preferred = options[0]
    if preferred.frame_bytes and preferred.data_offset <= source.size:
        available = (source.size - preferred.data_offset) // preferred.frame_bytes
        if may_wrap and available >= preferred.frame_count + UINT16_RANGE:
            wraps = (available - preferred.frame_count) // UINT16_RANGE
            count = preferred.frame_count + wraps * UINT16_RANGE
            source.warn(
                f"the 16-bit frame count ({preferred.frame_count}) has overflowed: the data "
                f"block holds {count} frames, which are read"
            )
            options = [_with_frames(option, count) for option in options]
    for index, option in enumerate(options):
        if option.data_offset + option.frame_count * option.frame_bytes <= source.size:
            if index:
                _explain_fallback(source, preferred, option)
            return option
    return _short_data(source, preferred)


def _with_frames(layout: DataLayout, count: int) -> DataLayout:
    return DataLayout(
        layout.point_count,
        count,
        layout.first_frame,
        layout.scale,
        layout.rate,
        layout.data_offset,
        layout.analog_channels,
        layout.analog_samples_per_frame,
    )


def _explain_fallback(source: C3DSource, preferred: DataLayout, used: DataLayout) -> None:
    needed = preferred.data_offset + preferred.frame_count * preferred.frame_bytes
    source.warn(
        f"the parameters place {preferred.frame_count} frames of {preferred.frame_bytes} bytes "
        f"at byte offset {preferred.data_offset}, which needs {needed} bytes (the file has "
        f"{source.size}); the header's data start (byte {used.data_offset}) and "
        f"{used.analog_values_per_frame} analog values per frame are used"
    )


def _short_data(source: C3DSource, layout: DataLayout) -> DataLayout:
    """Fewer whole frames than declared: read them if the file ends on a frame boundary."""
    needed = layout.data_offset + layout.frame_count * layout.frame_bytes
    remainder = source.size - layout.data_offset
    if remainder > 0 and remainder % layout.frame_bytes == 0:
        present = remainder // layout.frame_bytes
        source.warn(
            f"the data block holds {present} whole frames but {layout.frame_count} are declared; "
            f"the {present} frames present are read"
        )
        return _with_frames(layout, present)
    raise source.error(
        max(min(source.size, needed), 0),
        f"{layout.frame_count} frames of {layout.frame_bytes} bytes from byte offset "
        f"{layout.data_offset} (through byte {needed})",
        f"end of file at byte {source.size} (the data block is truncated)",
    )
