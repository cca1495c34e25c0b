"""Human3.6M camera calibration: the published tables, built in, and the check against ``metadata.xml``.

The tables are VideoPose3D's (``common/h36m_dataset.py``), restated in the evaluation reference §3:
intrinsics per camera (the same for every subject), and per subject a camera→world quaternion
``(w, x, y, z)`` with the camera centre in world millimetres. They are float32 roundings of the
official calibration in the release's ``metadata.xml``; :func:`check_metadata` compares the two
within float32 precision. Formats and sources: docs/converters/h36m.md.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posebench.cameras import Camera, extrinsics_from_orientation_centre, quaternion_to_matrix
from posebench.errors import FormatError

__all__ = [
    "CAMERA_NAMES",
    "EXTRINSICS",
    "INTRINSICS",
    "CameraParameters",
    "builtin_parameters",
    "check_metadata",
    "h36m_camera",
    "read_metadata_cameras",
]


@dataclass(frozen=True)
class Intrinsics:
    """One camera's pixel intrinsics and Human3.6M distortion (k1, k2, k3, p1, p2)."""

    name: str
    width: int
    height: int
    centre: tuple[float, float]
    focal: tuple[float, float]
    radial: tuple[float, float, float]
    tangential: tuple[float, float]


INTRINSICS: tuple[Intrinsics, ...] = (
    Intrinsics("54138969", 1000, 1002, (512.54150390625, 515.4514770507812), (1145.0494384765625, 1143.7811279296875),
               (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043), (-0.0009756988729350269, -0.00142447161488235)),
    Intrinsics("55011271", 1000, 1000, (508.8486328125, 508.0649108886719), (1149.6756591796875, 1147.5916748046875),
               (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665), (-0.0016190266469493508, -0.0027408944442868233)),
    Intrinsics("58860488", 1000, 1000, (519.8158569335938, 501.40264892578125), (1149.1407470703125, 1148.7989501953125),
               (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427), (0.0014843869721516967, -0.0007599993259645998)),
    Intrinsics("60457274", 1000, 1002, (514.9682006835938, 501.88201904296875), (1145.5113525390625, 1144.77392578125),
               (-0.198384091258049, 0.21832367777824402, -0.008947807364165783), (-0.0005872055771760643, -0.0018133620033040643)),
)  # fmt: skip

CAMERA_NAMES: tuple[str, ...] = tuple(intrinsics.name for intrinsics in INTRINSICS)

#: subject -> per camera (in CAMERA_NAMES order): (camera->world quaternion (w, x, y, z), centre mm).
EXTRINSICS: dict[str, tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]] = {
    "S1": (
        ((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088), (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
        ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205), (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
        ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696), (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
        ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435), (-1794.7896728515625, -3722.698974609375, 1574.8927001953125)),
    ),
    "S5": (
        ((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332), (2097.3916015625, 4880.94482421875, 1605.732421875)),
        ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915), (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
        ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576), (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
        ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092), (-1637.1737060546875, -3867.3173828125, 1547.033203125)),
    ),
    "S6": (
        ((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938), (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
        ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428), (1969.803955078125, -5128.73876953125, 1632.77880859375)),
        ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334), (-1769.596435546875, 5185.361328125, 1476.993408203125)),
        ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802), (-1721.668701171875, -3884.13134765625, 1540.4879150390625)),
    ),
    "S7": (
        ((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778), (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
        ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508), (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
        ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278), (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
        ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523), (-1734.7105712890625, -3832.42138671875, 1548.5830078125)),
    ),
    "S8": (
        ((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773), (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
        ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615), (2219.965576171875, -5148.453125, 1613.0440673828125)),
        ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755), (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
        ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708), (-1476.913330078125, -3896.7412109375, 1547.97216796875)),
    ),
    "S9": (
        ((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243), (2044.45849609375, 4935.1171875, 1481.2275390625)),
        ((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801), (1990.959716796875, -5123.810546875, 1568.8048095703125)),
        ((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915), (-1670.9921875, 5211.98583984375, 1528.387939453125)),
        ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822), (-1696.04345703125, -3827.099853515625, 1591.4127197265625)),
    ),
    "S11": (
        ((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467), (2098.440185546875, 4926.5546875, 1500.278564453125)),
        ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085), (2083.182373046875, -4912.1728515625, 1561.07861328125)),
        ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407), (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
        ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809), (-1590.738037109375, -3854.1689453125, 1578.017578125)),
    ),
}  # fmt: skip


def h36m_camera(subject: str, camera_name: str) -> Camera:
    """The built-in camera ``camera_name`` of ``subject``, with id ``"{subject}/{camera_name}"``."""
    if subject not in EXTRINSICS:
        raise FormatError(f"Human3.6M subject {subject!r} has no camera calibration; calibrated subjects: {', '.join(EXTRINSICS)}")
    if camera_name not in CAMERA_NAMES:
        raise FormatError(f"unknown Human3.6M camera {camera_name!r}; cameras: {', '.join(CAMERA_NAMES)}")
    index = CAMERA_NAMES.index(camera_name)
    intrinsics = INTRINSICS[index]
    orientation, centre = EXTRINSICS[subject][index]
    R, t = extrinsics_from_orientation_centre(np.array(orientation), np.array(centre))
    return Camera(
        f"{subject}/{camera_name}", intrinsics.width, intrinsics.height, *intrinsics.focal, *intrinsics.centre,
        "h36m", intrinsics.radial + intrinsics.tangential, R, t,
    )


@dataclass(frozen=True)
class CameraParameters:
    """Calibration of one (subject, camera): world→camera ``R``, centre (mm) and intrinsics.

    ``distortion`` is (k1, k2, k3, p1, p2) in posebench's ``h36m`` model.
    """

    R: np.ndarray
    centre: np.ndarray
    focal: np.ndarray
    principal_point: np.ndarray
    distortion: np.ndarray


def builtin_parameters(subject: str, camera_name: str) -> CameraParameters:
    """The built-in calibration of (``subject``, ``camera_name``) as :class:`CameraParameters`."""
    index = CAMERA_NAMES.index(camera_name)
    intrinsics = INTRINSICS[index]
    orientation, centre = EXTRINSICS[subject][index]
    return CameraParameters(
        np.asarray(quaternion_to_matrix(np.array(orientation))).T, np.array(centre), np.array(intrinsics.focal),
        np.array(intrinsics.centre), np.array(intrinsics.radial + intrinsics.tangential),
    )


_W0 = re.compile(r"<w0>\s*\[([^\]]*)\]\s*</w0>", re.S)
#: Calibrated subjects of the release are numbered 1..11 in metadata.xml's camera vector.
_METADATA_SUBJECTS = 11
_EXTRINSIC_SIZE = 6
_INTRINSIC_SIZE = 9
_INTRINSICS_START = len(CAMERA_NAMES) * _METADATA_SUBJECTS * _EXTRINSIC_SIZE


def _euler_xyz(a: float, b: float, c: float) -> np.ndarray:
    """``Rx(a) @ Ry(b) @ Rz(c)`` with right-handed elementary rotations."""
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rx @ ry @ rz


def read_metadata_cameras(path: str | Path) -> tuple[list[str] | None, dict[tuple[str, str], CameraParameters]]:
    """Camera ids (``dbcameras/index2id``, if present) and calibration per (subject, camera) of ``metadata.xml``.

    The camera vector ``<w0>[...]</w0>`` holds, for camera c (0-based) and subject s (1-based),
    6 numbers at ``6·(11·c + s - 1)``: Euler angles (a, b, c) in radians and the camera centre T
    (mm); then from index 264, 9 numbers per camera: f (2), c (2), k (3), p (2). The world→camera
    rotation is ``(Rx(a)·Ry(b)·Rz(c))ᵀ`` and ``X_cam = R·(X - T)``. The release's projection
    (``ProjectPointRadial``) uses ``p`` swapped relative to posebench's ``h36m`` model, so its
    ``(p(1), p(2))`` become ``(p2, p1)`` here.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FormatError(
            f"{path}: declares a DTD (<!DOCTYPE> or <!ENTITY>), which Human3.6M's metadata.xml never has; "
            "its entities are refused rather than expanded. Use the release's original file"
        )
    match = _W0.search(text)
    if match is None:
        raise FormatError(f"{path}: no camera vector <w0>[...]</w0>; is this Human3.6M's metadata.xml?")
    try:
        w0 = np.array([float(v) for v in match.group(1).split()])
    except ValueError as error:
        raise FormatError(f"{path}: the camera vector <w0> holds a non-number ({error})") from None
    expected = _INTRINSICS_START + len(CAMERA_NAMES) * _INTRINSIC_SIZE
    if w0.size != expected:
        raise FormatError(f"{path}: the camera vector <w0> has {w0.size} numbers, expected {expected} (4 cameras x 11 subjects x 6 + 4 x 9)")
    ids = None
    try:
        node = ET.fromstring(text).find("dbcameras/index2id")
    except ET.ParseError as error:
        raise FormatError(f"{path}: not well-formed XML ({error})") from None
    if node is not None:
        ids = [(element.text or "").strip() for element in node]
    cameras = {}
    for c, name in enumerate(CAMERA_NAMES):
        intrinsic = w0[_INTRINSICS_START + c * _INTRINSIC_SIZE:][:_INTRINSIC_SIZE]
        p_first, p_second = intrinsic[7], intrinsic[8]
        distortion = np.array([*intrinsic[4:7], p_second, p_first])
        for s in range(1, _METADATA_SUBJECTS + 1):
            extrinsic = w0[_EXTRINSIC_SIZE * (_METADATA_SUBJECTS * c + s - 1):][:_EXTRINSIC_SIZE]
            R = _euler_xyz(*extrinsic[:3]).T
            cameras[(f"S{s}", name)] = CameraParameters(R, extrinsic[3:6].copy(), intrinsic[:2].copy(), intrinsic[2:4].copy(), distortion)
    return ids, cameras


#: Largest accepted difference between the built-in float32 tables and metadata.xml's doubles.
TOLERANCES = {"R": 1e-5, "centre": 0.01, "focal": 1e-3, "principal_point": 1e-3, "distortion": 1e-6}


def check_metadata(path: str | Path, subjects: list[str]) -> str:
    """Compare ``metadata.xml`` with the built-in tables for ``subjects``; raise on any disagreement.

    Returns a one-line summary of the largest differences found (for the provenance notes).
    """
    path = Path(path)
    ids, cameras = read_metadata_cameras(path)
    if ids is not None and tuple(ids) != CAMERA_NAMES:
        raise FormatError(f"{path}: dbcameras/index2id lists cameras {ids}, the built-in order is {list(CAMERA_NAMES)}")
    largest = dict.fromkeys(TOLERANCES, 0.0)
    for subject in subjects:
        for name in CAMERA_NAMES:
            builtin = builtin_parameters(subject, name)
            found = cameras[(subject, name)]
            for field, tolerance in TOLERANCES.items():
                difference = float(np.max(np.abs(getattr(builtin, field) - getattr(found, field))))
                largest[field] = max(largest[field], difference)
                if not difference <= tolerance:
                    raise FormatError(
                        f"{path}: camera {name} of subject {subject}: {field} differs from the built-in "
                        f"calibration by {difference:.3g} (tolerance {tolerance:g}): metadata.xml "
                        f"{np.round(getattr(found, field), 6).tolist()}, built-in {np.round(getattr(builtin, field), 6).tolist()}. "
                        "The release's calibration and posebench's tables disagree; check that the file is "
                        "Human3.6M's own metadata.xml"
                    )
    return "metadata.xml agrees with the built-in cameras (largest differences: " + ", ".join(
        f"{field} {value:.2g}" for field, value in largest.items()) + ")"
