"""Fuzzing of the raw-format readers, seeded with real files, deterministic and bounded for CI.

Every mutated input must end in a valid result or the reader's own error type (a subclass of
``FormatError``); nothing else may escape. Each read must also finish in under
``TIME_LIMIT_S`` seconds and allocate (tracemalloc peak, numpy buffers included) at most
``MEMORY_FACTOR`` times the input's size plus ``MEMORY_SLACK_BYTES`` (docs/reliability.md).

Mutations: bit flips at random offsets, byte runs overwritten with 0x00 or 0xFF, truncation at
random points and at every section boundary, hostile values written into the header fields
(huge and negative counts and sizes, NaN and infinity). Inputs that once broke a reader are
kept in ``data/regressions/<reader>/`` and read again by ``test_regression_inputs``.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import time
import tracemalloc
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posebench.errors import BVHError, C3DError, FormatError, NPZError, OpenPoseError, TRCError
from posebench.io.bvh import read_bvh
from posebench.io.c3d import C3DWarning, read_c3d
from posebench.io.npz import load_npz
from posebench.io.openpose import read_openpose_folder, read_openpose_json
from posebench.io.trc import read_trc

DATA = Path(__file__).parent / "data"
REGRESSIONS = DATA / "regressions"

TIME_LIMIT_S = 5.0
MEMORY_FACTOR = 20
MEMORY_SLACK_BYTES = 10 * 2**20

FUZZ_EXAMPLES = int(os.environ.get("POSEBENCH_FUZZ_EXAMPLES", "60"))
"""Examples per fuzzed reader; raise it (e.g. to 5000) for a longer local campaign."""
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None)

C3D_SEEDS = (
    "BTKData/others/MyCube.c3d",
    "ezc3d-testFiles/FP_Type3.c3d",
    "ezc3d-testFiles/Optotrak.c3d",
    "BTKData/PiG/PiG_Calibration-FlatFoot-One.c3d",
    "BTKData/c3d.org/sample02/pc_int.c3d",
    "BTKData/c3d.org/sample02/sgi_int.c3d",
    "BTKData/c3d.org/sample02/Dec_real.c3d",
    "BTKData/c3d.org/sample02/pc_real.c3d",
)
BVH_SEEDS = ("09_03.bvh", "18_01_crlf.bvh", "35_24.bvh")
TRC_SEED = "S00_P01_T02_Participants1-2_P2_0-100.trc"
OPENPOSE_SEEDS = ("cam01.0000.json", "cam01.0007.json", "cam01.0019.json")
FUZZ_FRAMES = 12
"""Real BVH and TRC files are cut to this many frames (header counts adjusted) before mutation,
so that each example is fast; the full files are used for the boundary truncations."""

HOSTILE_NUMBERS = (
    "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e-320", "-1", "-0", "0",
    "999999999", "-999999999", "18446744073709551617", "9" * 5000, "0x10", "1_000", "", "+",
)
HOSTILE_COUNTS_16 = (0, 1, 0x7FFF, 0x8000, 0xFFFF)
HOSTILE_INT16 = (-1, -32768, 32767, 0)
HOSTILE_BYTES = (0, 1, 7, 127, 128, 255)
HOSTILE_FLOATS = (math.nan, math.inf, -math.inf, 0.0, -1.0, 3.4e38, -3.4e38, 1e-45)


@dataclass(frozen=True)
class Reader:
    """A reader under test: how to call it, its error type and the invariants of its result."""

    name: str
    read: Callable[[Path], Any]
    error: type[FormatError]
    check: Callable[[Any], None]


def _check_c3d(result: Any) -> None:
    frames, points = result.n_frames, result.n_points
    assert result.points.shape == (frames, points, 3)
    assert result.residuals.shape == result.camera_masks.shape == (frames, points)
    assert len(result.labels) == len(result.descriptions) == points
    if result.analog is not None:
        assert result.analog.ndim == 2 and result.analog.shape[1] == len(result.analog_labels)


def _read_bvh_with_positions(path: Path) -> Any:
    motion = read_bvh(path)
    motion.positions  # forward kinematics is part of what every caller needs
    return motion


def _check_bvh(result: Any) -> None:
    joints = len(result.joint_names)
    assert result.motion.shape == (result.num_frames, sum(len(c) for c in result.channels))
    assert result.positions.shape == (result.num_frames, joints + len(result.end_site_names), 3)
    assert all(parent < index for index, parent in enumerate(result.parents))
    assert math.isfinite(result.frame_time) and result.frame_time > 0


def _check_trc(result: Any) -> None:
    frames = result.num_frames
    assert result.points.shape == (frames, len(result.marker_names), 3)
    assert result.times.shape == result.frame_numbers.shape == (frames,)
    assert np.isfinite(result.times).all() and math.isfinite(result.rate) and result.rate > 0
    assert not np.isinf(result.points).any()


def _check_openpose(result: Any) -> None:
    for person in result:
        assert person.keypoints.shape == (len(person.confidence), 2)
        assert len(person.confidence) in (25, 18) and np.isfinite(person.confidence).all()


def _check_npz(result: Any) -> None:
    assert isinstance(result, dict) and all(isinstance(name, str) for name in result)


C3D = Reader("c3d", read_c3d, C3DError, _check_c3d)
BVH = Reader("bvh", _read_bvh_with_positions, BVHError, _check_bvh)
TRC = Reader("trc", read_trc, TRCError, _check_trc)
OPENPOSE = Reader("openpose", read_openpose_json, OpenPoseError, _check_openpose)
NPZ = Reader("npz", load_npz, NPZError, _check_npz)
READERS = {reader.name: reader for reader in (C3D, BVH, TRC, OPENPOSE, NPZ)}


def memory_bound(size: int) -> int:
    """Most bytes a read of a ``size``-byte input may allocate at its peak."""
    return MEMORY_FACTOR * size + MEMORY_SLACK_BYTES


def read_within_bounds(reader: Reader, path: Path) -> Any:
    """Read ``path``; returns the result or the reader's error, after checking time and memory.

    Any exception other than the reader's own error type propagates and fails the test.
    """
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.iterdir())
    outcome: Any = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", C3DWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        tracemalloc.start()
        start = time.perf_counter()
        try:
            outcome = reader.read(path)
        except reader.error as error:
            outcome = error
        finally:
            elapsed = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert elapsed < TIME_LIMIT_S, f"{reader.name}: {path.name} took {elapsed:.1f} s"
    assert peak <= memory_bound(size), f"{reader.name}: {path.name} ({size} bytes) allocated {peak} bytes"
    if isinstance(outcome, FormatError):
        assert str(outcome), "an error must say what is wrong"
    else:
        reader.check(outcome)
    return outcome


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def write(workdir: Path, content: bytes, name: str) -> Path:
    path = workdir / name
    path.write_bytes(content)
    return path


# ----- generic byte mutations ------------------------------------------------------------------


def byte_mutation(draw: Callable, content: bytes) -> bytes:
    """Bit flips, a 0x00/0xFF run or a truncation at a random point."""
    out = bytearray(content)
    kind = draw(st.sampled_from(("flip", "fill", "truncate")))
    if kind == "flip":
        flips = draw(st.lists(st.tuples(st.integers(0, len(out) - 1), st.integers(0, 7)), min_size=1, max_size=16))
        for position, bit in flips:
            out[position] ^= 1 << bit
    elif kind == "fill":
        start = draw(st.integers(0, len(out) - 1))
        length = draw(st.integers(1, 64))
        value = draw(st.sampled_from((0x00, 0xFF)))
        out[start : start + length] = bytes([value]) * len(out[start : start + length])
    else:
        del out[draw(st.integers(0, len(out) - 1)) :]
    return bytes(out)


# ----- C3D -------------------------------------------------------------------------------------


def c3d_seed(name: str) -> bytes:
    return (DATA / "c3d" / name).read_bytes()


@dataclass(frozen=True)
class Field:
    """A field of a C3D file: byte offset and how its value is encoded."""

    offset: int
    kind: str  # "u16" (count), "i16" (signed word), "byte", "f32"


def c3d_fields(content: bytes) -> list[Field]:
    """Header counts and floats, then every parameter record's size fields and first value.

    The parameter chain is walked here independently of the reader (name length, group id,
    name, offset to the next record, then for a parameter its type, dimensions and value).
    """
    fields = [Field(2 * (word - 1), "u16") for word in (2, 3, 4, 5, 9, 10)]
    fields += [Field(2 * (word - 1), "f32") for word in (7, 11)]
    start = (content[0] - 1) * 512
    order = ">" if content[start + 3] == 86 else "<"
    position = start + 4
    for _ in range(400):
        if position + 4 > len(content):
            break
        name_length, group_id = struct.unpack_from("bb", content, position)
        if name_length == 0 or group_id == 0:
            break
        length = abs(name_length)
        offset_at = position + 2 + length
        fields += [Field(position, "byte"), Field(offset_at, "i16")]
        if group_id > 0 and offset_at + 4 <= len(content):
            kind, dimensions = struct.unpack_from("bB", content, offset_at + 2)
            fields += [Field(offset_at + 2, "byte"), Field(offset_at + 3, "byte")]
            fields += [Field(offset_at + 4 + d, "byte") for d in range(dimensions)]
            value_at = offset_at + 4 + dimensions
            if kind == 2:
                fields.append(Field(value_at, "i16"))
            elif kind == 4:
                fields.append(Field(value_at, "f32"))
        (step,) = struct.unpack_from(order + "h", content, offset_at)
        if step <= 0:
            break
        position = offset_at + step
    data_start = (struct.unpack_from(order + "H", content, 16)[0] - 1) * 512
    fields += [Field(data_start + 4 * k, "f32") for k in range(4)]
    return [field for field in fields if field.offset + 4 <= len(content)]


def set_field(content: bytes, field: Field, value: float) -> bytes:
    """``content`` with ``value`` written into ``field`` in the file's byte order."""
    start = (content[0] - 1) * 512
    order = ">" if content[start + 3] == 86 else "<"
    formats = {"u16": order + "H", "i16": order + "h", "byte": "B", "f32": order + "f"}
    out = bytearray(content)
    struct.pack_into(formats[field.kind], out, field.offset, value)
    return bytes(out)


def hostile_value(draw: Callable, kind: str) -> float:
    choices = {"u16": HOSTILE_COUNTS_16, "i16": HOSTILE_INT16, "byte": HOSTILE_BYTES, "f32": HOSTILE_FLOATS}
    return draw(st.sampled_from(choices[kind]))


C3D_CONTENT = {name: c3d_seed(name) for name in C3D_SEEDS}
C3D_FIELDS = {name: c3d_fields(content) for name, content in C3D_CONTENT.items()}


def test_c3d_field_walker_finds_the_parameters():
    """The independent parameter walker sees the records the reader decodes (guards the fuzzer)."""
    for name, content in C3D_CONTENT.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", C3DWarning)
            parsed = read_c3d(DATA / "c3d" / name)
        count = sum(len(group) for group in parsed.parameters.values())
        assert len(C3D_FIELDS[name]) > 3 * count, name


@FUZZ
@given(st.data())
def test_c3d_mutations(workdir, data):
    name = data.draw(st.sampled_from(C3D_SEEDS))
    content = C3D_CONTENT[name]
    edits = data.draw(st.integers(0, 3))
    for _ in range(edits):
        field = data.draw(st.sampled_from(C3D_FIELDS[name]))
        content = set_field(content, field, hostile_value(data.draw, field.kind))
    if edits == 0 or data.draw(st.booleans()):
        content = byte_mutation(data.draw, content)
    read_within_bounds(C3D, write(workdir, content, "mutated.c3d"))


def c3d_boundaries(content: bytes) -> list[int]:
    """Header end, parameter section start and its first records, data start, inside the data."""
    start = (content[0] - 1) * 512
    order = ">" if content[start + 3] == 86 else "<"
    data_start = (struct.unpack_from(order + "H", content, 16)[0] - 1) * 512
    records = sorted({f.offset for f in c3d_fields(content) if start <= f.offset < data_start})[:12]
    points = {1, 2, 511, 512, start, start + 1, start + 3, start + 4, data_start - 1, data_start, data_start + 1}
    points |= {data_start + 7, (data_start + len(content)) // 2, len(content) - 1} | set(records)
    return sorted(p for p in points if 0 <= p < len(content))


@pytest.mark.parametrize("name", C3D_SEEDS)
def test_c3d_truncation_at_every_section_boundary(workdir, name):
    content = C3D_CONTENT[name]
    for size in c3d_boundaries(content):
        outcome = read_within_bounds(C3D, write(workdir, content[:size], "cut.c3d"))
        if isinstance(outcome, C3DError):
            assert "truncated" in str(outcome) or "expected" in str(outcome), (size, str(outcome))


# ----- BVH -------------------------------------------------------------------------------------


def trim_bvh(text: str, frames: int) -> str:
    """The file with only its first ``frames`` motion rows and the Frames line to match."""
    lines = text.splitlines()
    motion = next(i for i, line in enumerate(lines) if line.strip() == "MOTION")
    lines[motion + 1] = f"Frames: {frames}"
    return "\n".join(lines[: motion + 3 + frames]) + "\n"


BVH_TEXT = {name: (DATA / "bvh" / name).read_text() for name in BVH_SEEDS}
BVH_SMALL = {name: trim_bvh(text, FUZZ_FRAMES) for name, text in BVH_TEXT.items()}
NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def replace_numbers(draw: Callable, text: str) -> str:
    """Some numeric tokens of ``text`` replaced by hostile ones (NaN, inf, huge, negative, empty)."""
    matches = list(NUMBER.finditer(text))
    chosen = sorted(set(draw(st.lists(st.integers(0, len(matches) - 1), min_size=1, max_size=4))), reverse=True)
    for index in chosen:
        match = matches[index]
        text = text[: match.start()] + draw(st.sampled_from(HOSTILE_NUMBERS)) + text[match.end() :]
    return text


def bvh_structural(draw: Callable, text: str) -> str:
    lines = text.split("\n")
    frames_line = next(i for i, line in enumerate(lines) if line.startswith("Frames:"))
    kind = draw(st.sampled_from(("frames", "frame_time", "channels", "numbers", "drop_line", "repeat_line", "drop_brace")))
    if kind == "frames":
        lines[frames_line] = f"Frames: {draw(st.sampled_from(HOSTILE_NUMBERS))}"
    elif kind == "frame_time":
        lines[frames_line + 1] = f"Frame Time: {draw(st.sampled_from(HOSTILE_NUMBERS))}"
    elif kind == "channels":
        index = draw(st.sampled_from([i for i, line in enumerate(lines) if "CHANNELS" in line]))
        lines[index] = re.sub(r"CHANNELS\s+\d+", f"CHANNELS {draw(st.sampled_from(HOSTILE_NUMBERS))}", lines[index])
    elif kind == "numbers":
        return replace_numbers(draw, text)
    elif kind == "drop_line":
        del lines[draw(st.integers(0, len(lines) - 1))]
    elif kind == "repeat_line":
        index = draw(st.integers(0, len(lines) - 1))
        lines[index:index] = [lines[index]] * draw(st.integers(1, 50))
    else:
        braces = [i for i, line in enumerate(lines) if line.strip() in ("{", "}")]
        del lines[draw(st.sampled_from(braces))]
    return "\n".join(lines)


@FUZZ
@given(st.data())
def test_bvh_mutations(workdir, data):
    text = BVH_SMALL[data.draw(st.sampled_from(BVH_SEEDS))]
    if data.draw(st.booleans()):
        content = bvh_structural(data.draw, text).encode("utf-8")
    else:
        content = byte_mutation(data.draw, text.encode("utf-8"))
    read_within_bounds(BVH, write(workdir, content, "mutated.bvh"))


def text_boundaries(text: str, marker: str) -> list[int]:
    """Every line start up to ``marker``'s line, the next lines, cuts inside them and mid-file.

    A cut inside the digits of the very last value leaves a shorter number and a complete file,
    which no reader can tell from an intact one, so the last row is not cut.
    """
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    at = text.index(marker)
    before = [s for s in starts if s <= at]
    after = [s for s in starts if s > at][:6]
    middle = [s + 3 for s in after] + [(at + len(text)) // 2]
    return sorted(set(before + after + middle))


@pytest.mark.parametrize("name", BVH_SEEDS)
def test_bvh_truncation_at_every_section_boundary(workdir, name):
    """Before MOTION, inside the hierarchy, after the Frames lines, mid-row: always an error."""
    text = BVH_TEXT[name]
    for size in text_boundaries(text, "MOTION"):
        if not text[:size].strip() or not text[size:].strip():
            continue
        outcome = read_within_bounds(BVH, write(workdir, text[:size].encode(), "cut.bvh"))
        assert isinstance(outcome, BVHError), size


@pytest.mark.parametrize("frames", ["999999999", "-5", "18446744073709551617"])
def test_bvh_huge_and_negative_frame_counts_fail_before_allocating(workdir, frames):
    text = BVH_TEXT["09_03.bvh"]
    text = re.sub(r"Frames:\s*\d+", f"Frames: {frames}", text)
    outcome = read_within_bounds(BVH, write(workdir, text.encode(), "frames.bvh"))
    assert isinstance(outcome, BVHError)
    assert re.search(r"truncated: 'Frames: \d+' declared|non-negative integer after 'Frames:'", str(outcome))


# ----- TRC -------------------------------------------------------------------------------------


def trim_trc(text: str, frames: int) -> str:
    lines = text.split("\n")
    keys, values = lines[1].split("\t"), lines[2].split("\t")
    values[keys.index("NumFrames")] = str(frames)
    lines[2] = "\t".join(values)
    return "\n".join(lines[: 5 + frames]) + "\n"


TRC_TEXT = (DATA / "trc" / TRC_SEED).read_text()
TRC_SMALL = trim_trc(TRC_TEXT, FUZZ_FRAMES)


def trc_structural(draw: Callable, text: str) -> str:
    lines = text.split("\n")
    kind = draw(st.sampled_from(("header_value", "numbers", "drop_tab", "drop_line", "repeat_line")))
    if kind == "header_value":
        values = lines[2].split("\t")
        values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from(HOSTILE_NUMBERS + ("mm", "furlong")))
        lines[2] = "\t".join(values)
    elif kind == "numbers":
        return replace_numbers(draw, text)
    elif kind == "drop_tab":
        tabs = [m.start() for m in re.finditer("\t", text)]
        at = draw(st.sampled_from(tabs))
        return text[:at] + text[at + 1 :]
    elif kind == "drop_line":
        del lines[draw(st.integers(0, len(lines) - 1))]
    else:
        index = draw(st.integers(0, len(lines) - 1))
        lines[index:index] = [lines[index]] * draw(st.integers(1, 50))
    return "\n".join(lines)


@FUZZ
@given(st.data())
def test_trc_mutations(workdir, data):
    if data.draw(st.booleans()):
        content = trc_structural(data.draw, TRC_SMALL).encode("utf-8")
    else:
        content = byte_mutation(data.draw, TRC_SMALL.encode("utf-8"))
    read_within_bounds(TRC, write(workdir, content, "mutated.trc"))


def test_trc_truncation_at_every_header_line_and_mid_row(workdir):
    for size in text_boundaries(TRC_TEXT, "\n1\t"):
        if not TRC_TEXT[:size].strip() or not TRC_TEXT[size:].strip():
            continue
        outcome = read_within_bounds(TRC, write(workdir, TRC_TEXT[:size].encode(), "cut.trc"))
        assert isinstance(outcome, TRCError), size


@pytest.mark.parametrize(("key", "value"), [("NumFrames", "999999999999"), ("NumMarkers", "99999999"), ("NumFrames", "-3")])
def test_trc_huge_and_negative_header_counts(workdir, key, value):
    lines = TRC_TEXT.split("\n")
    values = lines[2].split("\t")
    values[lines[1].split("\t").index(key)] = value
    lines[2] = "\t".join(values)
    outcome = read_within_bounds(TRC, write(workdir, "\n".join(lines).encode(), "counts.trc"))
    assert isinstance(outcome, TRCError) and key in str(outcome)


# ----- OpenPose JSON ---------------------------------------------------------------------------

OPENPOSE_TEXT = {name: (DATA / "openpose" / "cam01_json" / name).read_text() for name in OPENPOSE_SEEDS}
JSON_VALUES = ("NaN", "Infinity", "-Infinity", "1e999", "-1", "9" * 5000, "true", "null", '"x"', "[]", "{}", "[[1]]")


def openpose_structural(draw: Callable, text: str) -> str:
    kind = draw(st.sampled_from(("numbers", "value", "nest", "rename")))
    if kind == "numbers":
        return replace_numbers(draw, text)
    if kind == "value":
        matches = list(NUMBER.finditer(text))
        match = draw(st.sampled_from(matches))
        return text[: match.start()] + draw(st.sampled_from(JSON_VALUES)) + text[match.end() :]
    if kind == "nest":
        depth = draw(st.sampled_from((2, 50, 5000)))
        return "[" * depth + text + "]" * depth
    key = draw(st.sampled_from(("people", "pose_keypoints_2d", "person_id")))
    return text.replace(f'"{key}"', f'"{key}_"', 1)


@FUZZ
@given(st.data())
def test_openpose_mutations(workdir, data):
    text = OPENPOSE_TEXT[data.draw(st.sampled_from(OPENPOSE_SEEDS))]
    if data.draw(st.booleans()):
        content = openpose_structural(data.draw, text).encode("utf-8")
    else:
        content = byte_mutation(data.draw, text.encode("utf-8"))
    read_within_bounds(OPENPOSE, write(workdir, content, "mutated.json"))


def test_openpose_truncation_at_every_byte(workdir):
    """Every cut of a real frame file, mid-token included, is an OpenPoseError."""
    content = OPENPOSE_TEXT["cam01.0007.json"].rstrip().encode()
    path = workdir / "cut.json"
    for size in range(len(content)):
        path.write_bytes(content[:size])
        with pytest.raises(OpenPoseError, match="invalid JSON"):
            read_openpose_json(path)


def test_openpose_folder_with_one_mutated_file(workdir):
    folder = workdir / "cam01_json"
    folder.mkdir()
    for name in sorted((DATA / "openpose" / "cam01_json").iterdir()):
        (folder / name.name).write_bytes(name.read_bytes())
    (folder / "cam01.0005.json").write_text(OPENPOSE_TEXT["cam01.0000.json"].replace("[", "[" * 3000, 1))
    with pytest.raises(OpenPoseError, match=r"cam01\.0005\.json: JSON nested too deeply"):
        read_openpose_folder(folder)
    (folder / "cam01.0005.json").write_text('{"people": [{"pose_keypoints_2d": [' + "1" * 5000 + "]}]}")
    with pytest.raises(OpenPoseError, match=r"cam01\.0005\.json: JSON holds an integer with thousands of digits"):
        read_openpose_folder(folder)


# ----- npz -------------------------------------------------------------------------------------


def npz_seed(compressed: bool) -> bytes:
    """An npz the way VideoPose3D writes its 2D files (nested dict as an object array) or plain arrays."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    if compressed:
        positions = {"S9": {"Walking 1": [rng.normal(500, 100, (40, 17, 2)).astype(np.float32) for _ in range(2)]}}
        metadata = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6], [1, 2, 3]]}
        np.savez_compressed(buffer, positions_2d=positions, metadata=metadata)
    else:
        np.savez(buffer, poses=rng.normal(0, 1, (40, 17, 3)), frames=np.arange(40), names=np.array(["a", "bb"]))
    return buffer.getvalue()


NPZ_SEEDS = {"compressed": npz_seed(True), "plain": npz_seed(False)}
NPY_HEADER_EDITS = (
    ("'shape': (", "'shape': (1000000000000, "),
    ("'shape': (", "'shape': (-1, "),
    ("'shape': (", "'shape': (99999999999999999999, "),
    ("'descr': '", "'descr': '>"),
    ("'descr': '", "'descr': 'V99999999"),
    ("'descr': '", "'descr': '|O"),
    ("'descr': '<f8'", "'descr': '<U1000000000'"),
    ("'fortran_order': False", "'fortran_order': 7"),
    ("{", "{'x': __import__('os'), "),
)


def rewrite_members(content: bytes, change: Callable[[str, bytes], bytes], method: int) -> bytes:
    """The archive with every member passed through ``change(name, bytes)``, re-zipped with ``method``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w", method) as target:
        for info in source.infolist():
            target.writestr(info.filename, change(info.filename, source.read(info)))
    return out.getvalue()


def npz_structural(draw: Callable, content: bytes) -> bytes:
    kind = draw(st.sampled_from(("header", "member_bytes", "member_truncate")))
    method = draw(st.sampled_from((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)))
    if kind == "header":
        old, new = draw(st.sampled_from(NPY_HEADER_EDITS))
        return rewrite_members(content, lambda name, raw: _edit_npy_header(raw, old, new), method)
    if kind == "member_bytes":
        return rewrite_members(content, lambda name, raw: byte_mutation(draw, raw), method)
    cut = draw(st.integers(0, 400))
    return rewrite_members(content, lambda name, raw: raw[:cut], method)


def _edit_npy_header(raw: bytes, old: str, new: str) -> bytes:
    """Replace text in a .npy header and fix the header length field (version 1.0)."""
    length = struct.unpack_from("<H", raw, 8)[0]
    header = raw[10 : 10 + length].decode("latin1").replace(old, new, 1)
    return raw[:8] + struct.pack("<H", len(header)) + header.encode("latin1") + raw[10 + length :]


@FUZZ
@given(st.data())
def test_npz_mutations(workdir, data):
    content = NPZ_SEEDS[data.draw(st.sampled_from(sorted(NPZ_SEEDS)))]
    if data.draw(st.booleans()):
        content = npz_structural(data.draw, content)
    else:
        content = byte_mutation(data.draw, content)
    read_within_bounds(NPZ, write(workdir, content, "mutated.npz"))


@pytest.mark.parametrize("edit", NPY_HEADER_EDITS, ids=lambda edit: edit[1][:24])
def test_npz_hostile_array_headers_are_refused(workdir, edit):
    """Huge, negative and nonsensical shapes and dtypes in a member's header end in an NPZError."""
    content = rewrite_members(NPZ_SEEDS["plain"], lambda name, raw: _edit_npy_header(raw, *edit), zipfile.ZIP_STORED)
    outcome = read_within_bounds(NPZ, write(workdir, content, "header.npz"))
    assert isinstance(outcome, NPZError), edit


# ----- dense adversarial text ------------------------------------------------------------------

ADVERSARIAL_FACTOR = 64
"""Text readers hold per-token indices and float64 values: inputs made only of one-character
tokens reach 30-50 times their size (linear, measured in docs/reliability.md), above the fuzz bound."""


def adversarial_texts() -> dict[str, tuple[Reader, str]]:
    rows = 40_000
    braces = "HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\n" + "} " * 150_000 + "\nMOTION\nFrames: 0\nFrame Time: 1\n"
    digits = (
        "HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation\n"
        f"End Site\n{{\nOFFSET 0 100 0\n}}\n}}\nMOTION\nFrames: {rows}\nFrame Time: 1\n" + "0 0 0 0 0 0\n" * rows
    )
    header = "PathFileType\t4\t(X/Y/Z)\tx.trc\nDataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\n"
    empty_fields = header + f"60\t60\t{rows}\t1\tmm\nFrame#\tTime\tA\t\t\n\t\tX1\tY1\tZ1\n" + "1\t0\t\t\t\n" * rows
    return {"braces.bvh": (BVH, braces), "digits.bvh": (BVH, digits), "empty_fields.trc": (TRC, empty_fields)}


@pytest.mark.parametrize("name", sorted(adversarial_texts()))
def test_dense_adversarial_text_stays_linear_in_the_file_size(workdir, name):
    reader, text = adversarial_texts()[name]
    path = write(workdir, text.encode(), name)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        try:
            reader.read(path)
        except reader.error:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= ADVERSARIAL_FACTOR * size + MEMORY_SLACK_BYTES, f"{peak / size:.0f} x the file size"


# ----- kept regressions ------------------------------------------------------------------------

REGRESSION_CASES = [
    ("bvh", "deep_hierarchy.bvh", r"line \d+: joints are nested more than 256 deep"),
    ("openpose", "deep_nesting.json", r"deep_nesting\.json: JSON nested too deeply"),
    ("openpose", "long_integer.json", r"long_integer\.json: JSON holds an integer with thousands of digits"),
    ("npz", "huge_declared_shape.npz", r"member 'poses\.npy' declares a float64 array of shape \(1000000000000, 17, 3\)"),
    ("npz", "corrupt_deflate_stream.npz", r"member 'positions_2d\.npy' cannot be read \(Error -3 while decompressing"),
    ("npz", "unbalanced_array_header.npz", r"member 'positions_2d\.npy' is not a \.npy array \(unreadable header"),
    ("npz", "local_header_name_not_utf8.npz", r"member 'positions_2d\.npy' cannot be read \('utf-8' codec can't decode"),
    ("npz", "truncated_pickle.npz", r"member 'positions_2d\.npy' holds a corrupt pickle \(unpack requires a buffer of \d+ bytes\)"),
    ("npz", "pickle_allocates_petabytes.npz", r"member 'positions_2d\.npy' holds a corrupt pickle \('_ArrayType' object is not callable\)"),
    ("npz", "pickle_object_array_short_list.npz", r"corrupt pickle \(array data does not match its shape \(1000000,\) and dtype object\)"),
]


@pytest.mark.parametrize(("reader", "name", "message"), REGRESSION_CASES, ids=[case[1] for case in REGRESSION_CASES])
def test_regression_inputs(reader, name, message):
    """Inputs that once escaped with another exception (or allocated gigabytes) now give the reader's error."""
    path = REGRESSIONS / reader / name
    outcome = read_within_bounds(READERS[reader], path)
    assert isinstance(outcome, READERS[reader].error)
    assert re.search(message, str(outcome)), str(outcome)


def test_every_kept_regression_input_is_tested():
    kept = {(path.parent.name, path.name) for path in REGRESSIONS.glob("*/*") if path.is_file()}
    assert kept == {(reader, name) for reader, name, _ in REGRESSION_CASES}
