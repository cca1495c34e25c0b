"""The C3D reader on every real file in tests/data/c3d, checked against ezc3d and the c3d package.

Each file is compared with a library that reads it correctly (REFERENCE below says which and
why). Files that neither library reads are checked for plausible content and for the warning
that explains what is wrong with them.
"""

from __future__ import annotations

import functools
import re
import struct
import warnings
from pathlib import Path

import c3d as c3d_package
import ezc3d
import numpy as np
import pytest

from posebench.io.c3d import C3DFile, C3DWarning, read_c3d, unit_factor

DATA = Path(__file__).parent / "data" / "c3d"
FILES = sorted(
    str(path.relative_to(DATA)) for path in DATA.rglob("*") if path.suffix.lower() == ".c3d"
)

C3D_PACKAGE = {
    # ezc3d: "MIPS processor type not supported yet".
    "BTKData/c3d.org/sample01/Eb015si.c3d",
    "BTKData/c3d.org/sample01/Eb015sr.c3d",
    "BTKData/c3d.org/sample02/sgi_int.c3d",
    "BTKData/c3d.org/sample02/sgi_real.c3d",
    # ezc3d: "OFFSET parameter is not an INT" (ANALOG:OFFSET stored as float).
    "BTKData/c3d.org/sample13/Dance.c3d",
    "BTKData/c3d.org/sample13/golfswing.c3d",
    # ezc3d: "The format is not standard" (parameter section).
    "BTKData/c3d.org/sample22/BKINtechnologies.c3d",
    # ezc3d reads these but ANALOG:RATE is missing, so it drops the analog samples from the
    # frame layout and every frame after the first is shifted (its frame 2 reads (0, -1, 0)).
    "BTKData/c3d.org/sample28/dynamic.C3D",
    "BTKData/c3d.org/sample28/standing.C3D",
    "BTKData/c3d.org/sample28/type1.C3D",
    "BTKData/others/561xxa01_anonym.C3D",
}
NEITHER = {
    # MIPS (ezc3d) and header scale 0.0551 != POINT:SCALE 0.0215 (c3d asserts).
    "BTKData/c3d.org/sample06/MACsample.c3d": (
        180,
        33,
        "POINT:SCALE .* and the header scale .* disagree",
    ),
    # A garbage record ends the parameter section (ezc3d: not standard; c3d: negative read).
    "BTKData/c3d.org/sample18/bad_parameter_section.c3d": (332, 45, "unreadable name"),
    # No parameters at all: ezc3d reads 0 points, c3d fails; the header describes 40 points.
    "BTKData/c3d.org/sample20/phasespace_sample.c3d": (701, 40, "the file has no parameters"),
    # ANALOG:UNITS claims 128 bytes but its record is 10 bytes long.
    "BTKData/others/badParameterOffset.c3d": (111, 41, "declares a value longer than its record"),
    # The description length byte of POINT:LABELS is missing; offsets still chain correctly.
    "BTKData/others/mocap36.c3d": (1380, 36, None),
}
EZC3D = [name for name in FILES if name not in C3D_PACKAGE and name not in NEITHER]

EXPECTED_WARNINGS = {
    "BTKData/PiG/PiG_Calibration-FlatFoot-Full.c3d": r"defined more than once .*PROCESSING:BODYMASS",
    "BTKData/c3d.org/sample02/sgi_real.c3d": r"offset of parameter record LABELS .* points to byte 21558",
    "BTKData/c3d.org/sample10/TYPE-2.C3D": r"belong to group id 7, which is not defined",
    "BTKData/c3d.org/sample13/Dance.c3d": r"holds 499 whole frames but 500 are declared",
    "BTKData/c3d.org/sample15/FP1.C3D": r"continue past the 3 block",
    "BTKData/c3d.org/sample24/MotionMonitorC3D.c3d": r"ANALOG:USED \(16\) x 7 samples per frame and the header \(16",
    "BTKData/c3d.org/sample28/dynamic.C3D": r"POINT:RATE is missing; the header rate \(100 Hz\)",
    "BTKData/others/parameterOverflow.c3d": r"continue past the 46 block",
    "ezc3d-testFiles/Optotrak.c3d": r"holds 29 whole frames but 1149 are declared",
    "ezc3d-testFiles/read_NOTworking2.c3d": r"POINT:DATA_START is block 0, not valid",
}


@functools.lru_cache(maxsize=None)
def ours(name: str) -> C3DFile:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", C3DWarning)
        return read_c3d(DATA / name)


@functools.lru_cache(maxsize=None)
def ezc3d_file(name: str) -> dict:
    return ezc3d.c3d(str(DATA / name))


@functools.lru_cache(maxsize=None)
def c3d_package_file(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(points (frames, points, 5), analog (samples, channels), labels) from the c3d package."""
    with open(DATA / name, "rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = c3d_package.Reader(handle)
        frames = [(points, analog) for _, points, analog in reader.read_frames(check_nan=False)]
        labels = [label.strip() for label in reader.point_labels]
    points = np.stack([points for points, _ in frames]).astype(np.float64)
    analog = np.concatenate([analog.T for _, analog in frames]).astype(np.float64)
    return points, analog, labels


def is_float_storage(result: C3DFile) -> bool:
    return result.scale < 0


def test_every_file_has_a_reference():
    assert len(FILES) == 74
    assert set(C3D_PACKAGE) | set(NEITHER) <= set(FILES)


@pytest.mark.parametrize("name", EZC3D)
def test_points_labels_rate_match_ezc3d(name):
    result, reference = ours(name), ezc3d_file(name)
    point_group = reference["parameters"]["POINT"]
    units = point_group.get("UNITS", {}).get("value", [])
    factor = unit_factor(units[0]) if units else 1.0
    expected = reference["data"]["points"][:3].transpose(2, 1, 0) * (factor or 1.0)
    assert result.points.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(result.points), np.isnan(expected))
    if is_float_storage(result):
        np.testing.assert_allclose(result.points, expected, rtol=0, atol=1e-4)
    elif factor in (None, 1.0):
        np.testing.assert_array_equal(result.points, expected)
    else:
        np.testing.assert_allclose(result.points, expected, rtol=1e-12, atol=0)
    labels = []
    for suffix in ["", *[str(i) for i in range(2, 10)]]:
        labels += [
            label.strip() for label in point_group.get(f"LABELS{suffix}", {}).get("value", [])
        ]
    assert result.labels == labels[: result.n_points]
    if "RATE" in result.parameters.get("POINT", {}):
        assert result.rate == pytest.approx(float(point_group["RATE"]["value"][0]), rel=1e-6)
    else:
        assert result.processor == "intel"
        header_rate = struct.unpack("<f", (DATA / name).read_bytes()[20:24])[0]
        assert result.rate == header_rate > 0


@pytest.mark.parametrize("name", sorted(C3D_PACKAGE))
def test_points_labels_residuals_match_the_c3d_package(name):
    result = ours(name)
    points, _, labels = c3d_package_file(name)
    invalid = points[..., 3] < 0
    factor = unit_factor(result.units) or 1.0
    expected = np.where(invalid[..., None], np.nan, points[..., :3] * factor)
    np.testing.assert_array_equal(np.isnan(result.points), np.isnan(expected))
    np.testing.assert_allclose(result.points, expected, rtol=1e-6, atol=1e-4)
    residuals = np.where(invalid, np.nan, points[..., 3] * factor)
    np.testing.assert_allclose(result.residuals, residuals, rtol=1e-6, atol=1e-5)
    assert result.labels == labels[: result.n_points]


@pytest.mark.parametrize(
    "name",
    [
        "BTKData/c3d.org/sample02/sgi_int.c3d",
        "BTKData/c3d.org/sample02/Dec_real.c3d",
        "BTKData/others/shd01.c3d",
        "BTKData/others/Analysis.c3d",
        "BTKData/others/FunctionalWalk.c3d",
        "BTKData/others/Res16bits.c3d",
        "ezc3d-testFiles/Qualisys.c3d",
        "BTKData/c3d.org/sample22/BKINtechnologies.c3d",
        "BTKData/c3d.org/sample28/type1.C3D",
    ],
)
def test_analog_matches_the_c3d_package(name):
    _, analog, _ = c3d_package_file(name)
    np.testing.assert_allclose(ours(name).analog, analog, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name",
    [
        "ezc3d-testFiles/Kistler.c3d",
        "BTKData/others/1123x01EMG.c3d",
        "BTKData/c3d.org/sample15/FP1.C3D",
        "BTKData/c3d.org/sample24/MotionMonitorC3D.c3d",
    ],
)
def test_analog_matches_ezc3d_where_the_c3d_package_fails(name):
    reference = ezc3d_file(name)
    assert (reference["parameters"]["ANALOG"]["OFFSET"]["value"] >= 0).all()
    np.testing.assert_allclose(
        ours(name).analog, reference["data"]["analogs"][0].T, rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize(("name", "counts"), sorted(NEITHER.items()))
def test_files_neither_library_reads_give_plausible_points(name, counts):
    frames, points, pattern = counts
    result = ours(name)
    assert (result.n_frames, result.n_points) == (frames, points)
    valid = ~np.isnan(result.points).any(axis=-1)
    assert valid.mean() > 0.3
    assert np.abs(result.points[valid]).max() < 5000.0
    steps = np.nanmedian(np.linalg.norm(np.diff(result.points, axis=0), axis=-1))
    spacing = np.nanmedian(np.linalg.norm(np.diff(result.points, axis=1), axis=-1))
    assert steps < 0.2 * spacing, "a point moves little between frames when the layout is right"
    assert all(label and label.isprintable() for label in result.labels)
    if pattern is None:
        assert result.warnings == []
    else:
        assert any(re.search(pattern, message) for message in result.warnings), result.warnings


def test_mocap36_labels_survive_the_missing_description_byte():
    labels = ours("BTKData/others/mocap36.c3d").labels
    assert labels[:2] == ["Skeleton_Hip2", "Skeleton_Hip1"] and len(set(labels)) == 36


@pytest.mark.parametrize(("name", "pattern"), sorted(EXPECTED_WARNINGS.items()))
def test_known_deviations_are_reported(name, pattern):
    with pytest.warns(C3DWarning) as caught:
        read_c3d(DATA / name)
    messages = [str(warning.message) for warning in caught]
    assert any(re.search(pattern, message) for message in messages), messages
    assert all(message.startswith(str(DATA / name)) for message in messages)


@pytest.mark.parametrize(
    "name",
    ["BTKData/c3d.org/sample02/pc_real.c3d", "cmu/02_01.c3d", "ezc3d-testFiles/Vicon.c3d"],
)
def test_conforming_files_read_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", C3DWarning)
        assert read_c3d(DATA / name).warnings == []


@pytest.mark.parametrize("sample", ["sample01", "sample02"])
def test_processor_types_give_the_same_coordinates(sample):
    folder = DATA / "BTKData" / "c3d.org" / sample
    results = {
        path.name.lower(): ours(str(path.relative_to(DATA)))
        for path in folder.iterdir()
        if path.suffix.lower() == ".c3d"
    }
    assert {result.processor for result in results.values()} == {"intel", "dec", "mips"}
    reals = [result for result in results.values() if is_float_storage(result)]
    integers = [result for result in results.values() if not is_float_storage(result)]
    assert len(reals) == 3 and len(integers) == 3
    step = abs(integers[0].scale)
    for result in results.values():
        np.testing.assert_array_equal(np.isnan(result.points), np.isnan(reals[0].points))
        np.testing.assert_allclose(result.points, reals[0].points, rtol=0, atol=step + 1e-9)
        assert result.labels == reals[0].labels and result.rate == reals[0].rate
    for result in reals[1:]:
        np.testing.assert_array_equal(result.points, reals[0].points)
    intel_int = results["pc_int.c3d" if sample == "sample02" else "eb015pi.c3d"]
    mips_int = results["sgi_int.c3d" if sample == "sample02" else "eb015si.c3d"]
    np.testing.assert_array_equal(intel_int.points, mips_int.points)


def test_cmu_49_04_has_330_labels_from_labels2():
    result = ours("cmu/49_04.c3d")
    point = result.parameters["POINT"]
    assert result.n_points == 330 and len(result.labels) == 330
    assert len(point["LABELS"]) == 255
    assert result.labels[255:] == point["LABELS2"][:75]
    assert len(set(result.labels)) == 330
    assert result.rate == 120.0 and result.n_frames == 251
