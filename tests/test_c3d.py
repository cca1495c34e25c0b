"""Tests of the C3D reader on files written byte by byte from the specification (c3d_builder).

Each test states the file's content independently of the reader and checks what comes back:
every processor type and storage, units, residual words, the >255-point and >65535-frame
conventions, the deviations real writers make, and corrupt or truncated files.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from c3d_builder import C3DSpec, Parameter, build_c3d
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posebench.errors import C3DError
from posebench.io.c3d import C3DWarning, read_c3d, unit_factor

RNG = np.random.default_rng(20240521)
POINTS = np.round(RNG.uniform(-1500.0, 1500.0, size=(6, 4, 3)), 1)
"""Coordinates in tenths of a millimetre: exact after int16 storage with scale 0.1."""


def write(tmp_path: Path, content: C3DSpec | bytes, name: str = "trial.c3d") -> Path:
    path = tmp_path / name
    path.write_bytes(build_c3d(content) if isinstance(content, C3DSpec) else content)
    return path


def read_quietly(path: Path):
    """Read and fail on any C3DWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", C3DWarning)
        return read_c3d(path)


def read_warned(path: Path, pattern: str):
    """Read, requiring a C3DWarning matching ``pattern`` that is also listed in .warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = read_c3d(path)
    emitted = [str(w.message) for w in caught if issubclass(w.category, C3DWarning)]
    assert any(re.search(pattern, message) for message in emitted), emitted
    assert emitted == [f"{path}: {message}" for message in result.warnings]
    return result


def expected_int_storage(points: np.ndarray, scale: float) -> np.ndarray:
    """What 16-bit storage with POINT:SCALE (a float32 in the file) gives back."""
    stored_scale = float(np.float32(scale))
    return np.rint(points / scale) * abs(stored_scale)


# --- storage and processor types -------------------------------------------------------------


@pytest.mark.parametrize("processor", ["intel", "dec", "mips"])
@pytest.mark.parametrize("scale", [-0.1, 0.1])
def test_every_processor_and_storage_gives_the_written_points(tmp_path, processor, scale):
    spec = C3DSpec(points=POINTS, processor=processor, scale=scale, rate=250.0, first_frame=7)
    result = read_quietly(write(tmp_path, spec))
    expected = (
        POINTS.astype(np.float32).astype(np.float64)
        if scale < 0
        else expected_int_storage(POINTS, scale)
    )
    np.testing.assert_array_equal(result.points, expected)
    assert result.points.dtype == np.float64
    assert result.processor == processor
    assert result.labels == ["M000", "M001", "M002", "M003"]
    assert (result.rate, result.first_frame, result.last_frame) == (250.0, 7, 12)
    assert result.scale == pytest.approx(scale)
    assert result.analog is None and result.warnings == []


@pytest.mark.parametrize("processor", ["intel", "dec", "mips"])
@pytest.mark.parametrize("scale", [-0.1, 0.1])
def test_analog_samples_are_scaled_per_channel(tmp_path, processor, scale):
    stored = RNG.integers(-2000, 2000, size=(POINTS.shape[0] * 3, 2)).astype(np.float64)
    spec = C3DSpec(
        points=POINTS,
        processor=processor,
        scale=scale,
        analog=stored,
        analog_samples_per_frame=3,
        overrides={
            "ANALOG:SCALE": Parameter("ANALOG", "SCALE", np.array([0.5, 2.0])),
            "ANALOG:OFFSET": Parameter("ANALOG", "OFFSET", np.array([10, -4])),
            "ANALOG:GEN_SCALE": Parameter("ANALOG", "GEN_SCALE", 0.25),
        },
    )
    result = read_quietly(write(tmp_path, spec))
    expected = (stored - np.array([10.0, -4.0])) * np.array([0.5, 2.0]) * 0.25
    np.testing.assert_array_equal(result.analog, expected)
    assert result.analog_rate == 300.0 and result.analog_labels == ["CH0", "CH1"]
    points = (
        POINTS.astype(np.float32).astype(np.float64)
        if scale < 0
        else expected_int_storage(POINTS, scale)
    )
    np.testing.assert_array_equal(result.points, points)


def test_unsigned_analog_reads_words_and_offsets_as_unsigned(tmp_path):
    stored = np.array([[0, 65535], [32768, 1]] * POINTS.shape[0], dtype=np.float64)
    spec = C3DSpec(
        points=POINTS,
        scale=0.1,
        analog=stored,
        analog_samples_per_frame=2,
        overrides={"ANALOG:OFFSET": Parameter("ANALOG", "OFFSET", np.array([32768, 0]))},
        extra=[Parameter("ANALOG", "FORMAT", "UNSIGNED")],
    )
    result = read_quietly(write(tmp_path, spec))
    np.testing.assert_array_equal(result.analog, stored - np.array([32768.0, 0.0]))


def test_missing_analog_scales_never_stop_the_points(tmp_path):
    stored = np.ones((POINTS.shape[0], 3))
    spec = C3DSpec(points=POINTS, analog=stored, omit={"ANALOG:SCALE", "ANALOG:GEN_SCALE"})
    result = read_warned(write(tmp_path, spec), "ANALOG:SCALE has 0 values for 3 analog channels")
    np.testing.assert_array_equal(result.analog, stored)
    np.testing.assert_array_equal(result.points, POINTS.astype(np.float32).astype(np.float64))


# --- residual word and invalid samples -------------------------------------------------------


@pytest.mark.parametrize("scale", [-0.5, 0.5])
def test_residual_word_packs_camera_mask_and_residual(tmp_path, scale):
    words = np.zeros(POINTS.shape[:2], dtype=np.int64)
    words[0, 0] = (0b0100101 << 8) | 17
    words[1, 1] = -1
    words[2, 2] = -32768
    words[3, 3] = 200
    spec = C3DSpec(points=np.round(POINTS), residual_words=words, scale=scale)
    result = read_quietly(write(tmp_path, spec))
    assert result.residuals[0, 0] == 17 * 0.5 and result.camera_masks[0, 0] == 0b0100101
    assert result.residuals[3, 3] == 100.0 and result.camera_masks[3, 3] == 0
    invalid = words < 0
    assert np.array_equal(np.isnan(result.points).all(axis=-1), invalid)
    assert not np.isnan(result.points[~invalid]).any()
    assert np.array_equal(np.isnan(result.residuals), invalid)
    assert (result.camera_masks[invalid] == 0).all()
    assert (result.residuals[(~invalid) & (words == 0)] == 0).all()


def test_non_finite_float_coordinates_are_invalid(tmp_path):
    points = POINTS.copy()
    points[2, 1, 0] = np.nan
    points[4, 3, 2] = np.inf
    result = read_quietly(write(tmp_path, C3DSpec(points=points)))
    assert np.isnan(result.points[2, 1]).all() and np.isnan(result.points[4, 3]).all()
    assert np.isnan(result.residuals[2, 1]) and np.isnan(result.residuals[4, 3])
    assert np.isfinite(result.points).sum() == 3 * (points.shape[0] * points.shape[1] - 2)


# --- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "factor"),
    [("m", 1000.0), ("cm", 10.0), ("mm", 1.0), ("metres", 1000.0), ("mete", 1000.0)],
)
@pytest.mark.parametrize("scale", [-0.001, 0.001])
def test_units_are_converted_to_millimetres(tmp_path, units, factor, scale):
    stored = np.round(POINTS / 1000.0, 3)
    words = np.full(POINTS.shape[:2], 4)
    spec = C3DSpec(points=stored, residual_words=words, scale=scale, units=units)
    result = read_quietly(write(tmp_path, spec))
    base = (
        stored.astype(np.float32).astype(np.float64)
        if scale < 0
        else expected_int_storage(stored, scale)
    )
    np.testing.assert_allclose(result.points, base * factor, rtol=1e-12)
    np.testing.assert_allclose(
        result.residuals, 4 * abs(float(np.float32(scale))) * factor, rtol=1e-12
    )
    assert result.units == units


def test_unknown_units_are_kept_with_a_warning(tmp_path):
    result = read_warned(
        write(tmp_path, C3DSpec(points=POINTS, units="furlong")), "'furlong' is not a known"
    )
    np.testing.assert_array_equal(result.points, POINTS.astype(np.float32).astype(np.float64))


def test_unit_factor_table():
    assert [unit_factor(u) for u in ("mm", "MM", " cm ", "m", "meters", "inches", "ft")] == [
        1.0,
        1.0,
        10.0,
        1000.0,
        1000.0,
        25.4,
        304.8,
    ]
    assert unit_factor("deg") is None and unit_factor("") is None


# --- conventions and deviations of real writers ----------------------------------------------


def test_more_than_255_points_use_labels2_and_labels3(tmp_path):
    count = 600
    points = np.round(RNG.uniform(-100, 100, size=(2, count, 3)))
    labels = [f"Subject:P{i}" for i in range(count)]
    result = read_quietly(write(tmp_path, C3DSpec(points=points, labels=labels)))
    assert result.labels == labels
    assert (
        len(result.parameters["POINT"]["LABELS2"]) == 255
        and len(result.parameters["POINT"]["LABELS3"]) == 90
    )
    np.testing.assert_array_equal(result.points, points)


def test_point_count_above_32767_is_read_as_unsigned(tmp_path):
    count = 40000
    points = np.zeros((1, count, 3))
    points[0, :, 0] = np.arange(count)
    result = read_warned(
        write(tmp_path, C3DSpec(points=points, labels=[])), "POINT:LABELS holds 0 labels"
    )
    assert result.parameters["POINT"]["USED"] == np.int16(count - 65536)
    assert result.n_points == count and result.labels[-1] == "POINT40000"
    np.testing.assert_array_equal(result.points[0, :, 0], np.arange(count))


LONG = 70000


def long_points() -> np.ndarray:
    points = np.zeros((LONG, 1, 3))
    points[:, 0, 1] = np.arange(LONG) % 1000
    return points


def test_frames_beyond_65535_from_trial_fields(tmp_path):
    spec = C3DSpec(
        points=long_points(),
        extra=[
            Parameter("TRIAL", "ACTUAL_START_FIELD", np.array([1, 0])),
            Parameter("TRIAL", "ACTUAL_END_FIELD", np.array([LONG % 65536, LONG // 65536])),
        ],
    )
    result = read_quietly(write(tmp_path, spec))
    assert (result.n_frames, result.first_frame, result.last_frame) == (LONG, 1, LONG)
    np.testing.assert_array_equal(result.points[:, 0, 1], np.arange(LONG) % 1000)


def test_frames_beyond_65535_from_an_overflowed_count(tmp_path):
    result = read_warned(
        write(tmp_path, C3DSpec(points=long_points())), "16-bit frame count .* overflowed"
    )
    assert result.parameters["POINT"]["FRAMES"] == np.int16(LONG - 65536)
    assert result.n_frames == LONG and result.last_frame == LONG


def test_frames_stored_as_float(tmp_path):
    spec = C3DSpec(
        points=long_points(), overrides={"POINT:FRAMES": Parameter("POINT", "FRAMES", float(LONG))}
    )
    assert read_quietly(write(tmp_path, spec)).n_frames == LONG


def test_parameter_defined_twice_keeps_the_first(tmp_path):
    spec = C3DSpec(points=POINTS, rate=120.0, extra=[Parameter("POINT", "RATE", 60.0)])
    result = read_warned(write(tmp_path, spec), r"defined more than once .*POINT:RATE")
    assert result.rate == 120.0 and result.parameters["POINT"]["RATE"] == np.float32(120.0)


def test_missing_point_rate_uses_the_header(tmp_path):
    spec = C3DSpec(points=POINTS, rate=75.0, omit={"POINT:RATE"})
    result = read_warned(write(tmp_path, spec), r"POINT:RATE is missing; the header rate \(75 Hz\)")
    assert result.rate == 75.0


@pytest.mark.parametrize(
    ("header", "pattern"),
    [
        ({"point_count": 9}, r"POINT:USED \(4\) and header word 2"),
        ({"rate": 50.0}, r"POINT:RATE \(100 Hz\) and the header rate \(50 Hz\)"),
        ({"scale": -0.5}, r"POINT:SCALE \(-0.1\) and the header scale \(-0.5\)"),
        ({"last_frame": 3}, r"POINT:FRAMES \(6\) and the header frame range"),
        ({"analog_values": 4}, r"ANALOG:USED \(0\) x 1 samples per frame and the header"),
    ],
)
def test_header_disagreeing_with_parameters_trusts_the_parameters(tmp_path, header, pattern):
    result = read_warned(write(tmp_path, C3DSpec(points=POINTS, header=header)), pattern)
    np.testing.assert_array_equal(result.points, POINTS.astype(np.float32).astype(np.float64))
    assert (result.rate, result.n_frames, result.n_points) == (100.0, 6, 4)


def test_moved_blocks_are_found_through_the_pointers(tmp_path):
    spec = C3DSpec(points=POINTS, scale=0.1, parameter_block=5, blocks_before_data=3)
    result = read_quietly(write(tmp_path, spec))
    np.testing.assert_array_equal(result.points, expected_int_storage(POINTS, 0.1))


def test_data_start_parameter_wins_over_a_stale_header(tmp_path):
    spec = C3DSpec(points=POINTS, blocks_before_data=2, header={"data_block": 3})
    result = read_warned(
        write(tmp_path, spec), r"POINT:DATA_START \(block 5\) and the header \(block 3\)"
    )
    np.testing.assert_array_equal(result.points, POINTS.astype(np.float32).astype(np.float64))


def test_invalid_data_start_parameter_falls_back_to_the_header(tmp_path):
    spec = C3DSpec(
        points=POINTS, overrides={"POINT:DATA_START": Parameter("POINT", "DATA_START", 0)}
    )
    result = read_warned(write(tmp_path, spec), "POINT:DATA_START is block 0, not valid")
    np.testing.assert_array_equal(result.points, POINTS.astype(np.float32).astype(np.float64))


def test_data_start_beyond_the_file_falls_back_to_the_header(tmp_path):
    spec = C3DSpec(
        points=POINTS, overrides={"POINT:DATA_START": Parameter("POINT", "DATA_START", 900)}
    )
    result = read_warned(write(tmp_path, spec), "the header's data start")
    np.testing.assert_array_equal(result.points, POINTS.astype(np.float32).astype(np.float64))


def test_parameters_past_the_declared_section_are_read(tmp_path):
    spec = C3DSpec(
        points=POINTS, labels=[f"LONG_LABEL_{i:040d}" for i in range(4)], parameter_blocks=0
    )
    result = read_warned(write(tmp_path, spec), "continue past the 0 block")
    assert result.labels[3].endswith("3") and len(result.labels[3]) == 51


def test_header_alone_describes_a_file_without_parameters(tmp_path):
    data = bytearray(build_c3d(C3DSpec(points=POINTS, rate=30.0)))
    data[512 + 2] = 0
    data[516:518] = b"\x00\x00"
    result = read_warned(write(tmp_path, bytes(data)), "the file has no parameters")
    assert result.parameters == {} and result.labels == ["POINT1", "POINT2", "POINT3", "POINT4"]
    assert result.rate == 30.0
    np.testing.assert_array_equal(result.points, POINTS.astype(np.float32).astype(np.float64))


def test_data_ending_on_a_frame_boundary_reads_the_frames_present(tmp_path):
    spec = C3DSpec(points=POINTS, overrides={"POINT:FRAMES": Parameter("POINT", "FRAMES", 9)})
    data = build_c3d(spec)
    frame_bytes = 4 * 4 * 4
    path = write(tmp_path, data[: _data_offset(data) + 6 * frame_bytes])
    result = read_warned(path, "holds 6 whole frames but 9 are declared")
    np.testing.assert_array_equal(result.points, POINTS.astype(np.float32).astype(np.float64))


def _data_offset(data: bytes) -> int:
    """Byte offset of the data block from header word 9."""
    big_endian = data[(data[0] - 1) * 512 + 3] == 86
    return (int.from_bytes(data[16:18], "big" if big_endian else "little") - 1) * 512


# --- parameter decoding ----------------------------------------------------------------------


@pytest.mark.parametrize("processor", ["intel", "dec", "mips"])
def test_parameter_values_follow_type_and_column_major_dimensions(tmp_path, processor):
    matrix = np.arange(6, dtype=np.int64).reshape(2, 3) - 3
    reals = np.array([[1.5, -2.25], [1e-3, 3e4]])
    names = [["AB", "CD"], ["EF", "GH"], ["IJ", "KL"]]
    spec = C3DSpec(
        points=POINTS,
        processor=processor,
        extra=[
            Parameter("CUSTOM", "MATRIX", matrix),
            Parameter("CUSTOM", "REALS", reals),
            Parameter("CUSTOM", "FLAGS", np.array([-1, 7]), kind="byte"),
            Parameter(
                "CUSTOM",
                "CUBE",
                [s for column in zip(*names) for s in column],
                kind="char",
                dims=(2, 3, 2),
            ),
            Parameter("CUSTOM", "EMPTY", [], kind="char", dims=(0, 0)),
            Parameter("CUSTOM", "TEXT", "  padded  "),
        ],
    )
    custom = read_quietly(write(tmp_path, spec)).parameters["CUSTOM"]
    np.testing.assert_array_equal(custom["MATRIX"], matrix)
    assert custom["MATRIX"].dtype == np.int16
    np.testing.assert_array_equal(custom["REALS"], reals.astype(np.float32))
    np.testing.assert_array_equal(custom["FLAGS"], np.array([-1, 7], dtype=np.int8))
    assert custom["CUBE"] == names
    assert custom["EMPTY"] == [] and custom["TEXT"] == "padded"


# --- errors ----------------------------------------------------------------------------------


def assert_c3d_error(path: Path, *fragments: str) -> C3DError:
    with pytest.raises(C3DError) as caught:
        read_c3d(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert re.search(fragment, message), message
    assert "could not decode" not in message
    return caught.value


def section_boundaries(data: bytes) -> dict[str, int]:
    parameter_start = (data[0] - 1) * 512
    data_start = _data_offset(data)
    return {
        "empty": 0,
        "inside the header": 100,
        "end of the header": 512,
        "inside the parameter header": parameter_start + 3,
        "inside the first record": parameter_start + 9,
        "inside the parameter section": parameter_start + 200,
        "end of the parameter section": data_start,
        "inside the first frame": data_start + 10,
        "inside the last frame": len(data) - 512 - 1,
    }


@pytest.mark.parametrize("processor", ["intel", "dec", "mips"])
def test_truncation_at_every_section_boundary_raises(tmp_path, processor):
    spec = C3DSpec(points=np.round(RNG.uniform(-9, 9, (40, 4, 3))), processor=processor)
    data = build_c3d(spec)
    assert len(data) % 512 == 0 and len(data) - _data_offset(data) > 512
    for where, size in section_boundaries(data).items():
        path = write(tmp_path, data[:size], f"cut_{size}.c3d")
        error = assert_c3d_error(path, r"at byte offset \d+: expected")
        assert "truncated" in str(error), (where, str(error))


def test_truncated_data_names_the_missing_bytes(tmp_path):
    data = build_c3d(C3DSpec(points=np.round(RNG.uniform(-9, 9, (40, 4, 3)))))
    cut = len(data) - 600
    assert_c3d_error(
        write(tmp_path, data[:cut]),
        rf"at byte offset {cut}",
        r"40 frames of 64 bytes",
        r"data block is truncated",
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "512-byte C3D header"),
        (b"name,x,y,z\n" * 100, r"byte offset 1: expected the C3D key 0x50"),
        (bytes([2, 0x50]) + bytes(1022), "byte offset 515: expected a processor type"),
        (bytes([0, 0x50]) + bytes(1022), "byte offset 0: expected the block number"),
    ],
)
def test_not_c3d_raises(tmp_path, content, fragment):
    assert_c3d_error(write(tmp_path, content), fragment)


def test_random_bytes_raise(tmp_path):
    for seed in range(20):
        content = np.random.default_rng(seed).integers(0, 256, 4096).astype(np.uint8).tobytes()
        content = content[:1] + b"\x50" + content[2:]
        path = write(tmp_path, content, f"random_{seed}.c3d")
        try:
            read_c3d(path)
        except C3DError as error:
            assert "could not decode" not in str(error)


def test_absurd_counts_fail_before_allocating(tmp_path):
    spec = C3DSpec(
        points=POINTS,
        overrides={
            "POINT:USED": Parameter("POINT", "USED", 65000),
            "POINT:FRAMES": Parameter("POINT", "FRAMES", 65000),
        },
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_c3d_error(write(tmp_path, spec), "65000 frames of 1040000 bytes", "truncated")
    messages = [str(warning.message) for warning in caught]
    assert any("POINT:USED (65000) and header word 2" in message for message in messages)


def test_huge_parameter_dimensions_raise(tmp_path):
    spec = C3DSpec(
        points=POINTS, extra=[Parameter("BIG", "ARRAY", [], kind="float", dims=(255,) * 7)]
    )
    data = build_c3d(spec)
    assert_c3d_error(write(tmp_path, data), "value of parameter ARRAY", "truncated")


def test_missing_file_raises_c3d_error(tmp_path):
    with pytest.raises(C3DError, match="cannot read the file"):
        read_c3d(tmp_path / "absent.c3d")


FUZZ_BASE = build_c3d(
    C3DSpec(
        points=np.round(RNG.uniform(-9, 9, (5, 3, 3))),
        analog=np.ones((10, 2)),
        analog_samples_per_frame=2,
        extra=[Parameter("TRIAL", "ACTUAL_START_FIELD", np.array([1, 0]))],
    )
)


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.integers(0, len(FUZZ_BASE) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    st.integers(0, len(FUZZ_BASE)),
)
def test_corrupted_bytes_give_a_file_or_a_c3d_error(tmp_path, edits, length):
    data = bytearray(FUZZ_BASE)
    for position, value in edits:
        data[position] = value
    path = tmp_path / "fuzz.c3d"
    path.write_bytes(bytes(data[:length]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", C3DWarning)
        try:
            result = read_c3d(path)
        except C3DError as error:
            assert "could not decode" not in str(error)
            return
    assert result.points.shape == (result.n_frames, result.n_points, 3)
    assert result.residuals.shape == result.points.shape[:2]
