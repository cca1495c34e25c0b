"""HumanEva-I's calibration (``.cal``) and synchronisation (``.ofs``) files, and its built-in tables.

Sources (details and uncertainty in docs/converters/humaneva.md): the number layout of ``.cal``
and ``.ofs`` follows a public Python port of the HumanEva toolbox's readers; the meaning of the
calibration numbers follows the Bouguet camera calibration toolbox that HumanEva used; the
extrinsics table, the image size and the train/validate frame ranges are VideoPose3D's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posebench.cameras import Camera, extrinsics_from_orientation_centre
from posebench.errors import FormatError

__all__ = [
    "CAMERAS", "EXTRINSICS", "FRAME_RANGES", "IMAGE_SIZE", "Sync", "builtin_extrinsics", "check_extrinsics", "read_cal", "read_ofs",
]

CAMERAS = ("C1", "C2", "C3")
IMAGE_SIZE = (640, 480)

#: subject -> per camera: (camera->world quaternion (w, x, y, z), camera centre mm) (VideoPose3D).
EXTRINSICS: dict[str, tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]] = {
    "S1": (((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.227, 663.2477, 1528.397)),
           ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
           ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.67377, 3916.3174, 1433.6602))),
    "S2": (((0.4214752, -0.4961493, -0.5838273, 0.4851187), (4112.9121, 626.4929, 1545.2988)),
           ((0.6501393, -0.7476588, -0.0954617, 0.0959808), (923.574, -3877.9243, 1504.5518)),
           ((0.0699353, -0.0712403, 0.7421637, -0.662742), (-781.4915, 3838.8853, 1444.9929))),
    "S3": (((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.2271, 663.2477, 1528.397)),
           ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
           ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.6738, 3916.3174, 1433.6602))),
}  # fmt: skip

#: VideoPose3D's ``index`` table for trial 1: (subject, action) -> (first, boundary, end), 0-based
#: frames of the synchronised timeline; Validate = [first, boundary), Train = [boundary, end).
FRAME_RANGES: dict[tuple[str, str], tuple[int, int, int]] = {
    ("S1", "Walking"): (5, 590, 1203), ("S1", "Jog"): (5, 367, 740), ("S1", "ThrowCatch"): (5, 473, 945),
    ("S1", "Gestures"): (5, 395, 801), ("S1", "Box"): (5, 385, 789),
    ("S2", "Walking"): (5, 438, 876), ("S2", "Jog"): (5, 398, 795), ("S2", "ThrowCatch"): (5, 550, 1128),
    ("S2", "Gestures"): (5, 500, 901), ("S2", "Box"): (5, 382, 734),
    ("S3", "Walking"): (5, 448, 939), ("S3", "Jog"): (5, 401, 842), ("S3", "ThrowCatch"): (5, 493, 1027),
    ("S3", "Gestures"): (5, 533, 1102), ("S3", "Box"): (5, 512, 1021),
}  # fmt: skip

_CAL_NUMBERS = 22
#: Largest accepted difference between a .cal file's pose and the built-in table.
EXTRINSICS_TOLERANCE = {"R": 1e-3, "centre_mm": 1.0}


def _numbers(path: Path, count: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise FormatError(f"{path}: no such file ({what})")
    tokens = path.read_text(encoding="latin-1").split()
    try:
        values = np.array([float(token) for token in tokens])
    except ValueError as error:
        raise FormatError(f"{path}: {what} must hold only numbers ({error})") from None
    if values.size != count or not np.all(np.isfinite(values)):
        raise FormatError(f"{path}: {what} must hold exactly {count} finite numbers, found {values.size}")
    return values


def read_cal(path: str | Path, camera_id: str) -> Camera:
    """A camera from a HumanEva-I ``.cal`` file: 22 numbers separated by white space.

    In order: focal lengths fc (2, px), principal point cc (2, px), skew alpha_c, distortion kc
    (5: k1, k2, p1, p2, k3, Bouguet's order, the same model and order as OpenCV's), rotation Rc
    (3x3, row by row) and translation Tc (3, mm), with ``X_cam = Rc·X_world + Tc``. The image is
    640 x 480. posebench's cameras have no skew: a non-zero alpha_c is an error.
    """
    path = Path(path)
    values = _numbers(path, _CAL_NUMBERS, "a calibration file (fc 2, cc 2, alpha_c 1, kc 5, Rc 9, Tc 3)")
    fc, cc, alpha, kc, Rc, Tc = values[0:2], values[2:4], values[4], values[5:10], values[10:19].reshape(3, 3), values[19:22]
    if alpha != 0:
        raise FormatError(f"{path}: skew alpha_c = {alpha:g}; posebench cameras have no skew term")
    try:
        return Camera(camera_id, *IMAGE_SIZE, *fc, *cc, "opencv", tuple(kc), Rc, Tc)
    except ValueError as error:
        raise FormatError(f"{path}: invalid calibration: {error}") from None


@dataclass(frozen=True)
class Sync:
    """Mocap <-> video synchronisation of one camera: video frame ``im_st`` shows mocap frame ``mc_st``.

    Both are 1-based; one video frame lasts ``mc_sc`` mocap frames.
    """

    im_st: float
    mc_st: float
    mc_sc: float

    def mocap_frame(self, video_frame: np.ndarray) -> np.ndarray:
        """1-based (fractional) mocap frame shown in 1-based ``video_frame``."""
        return self.mc_st + (np.asarray(video_frame, dtype=np.float64) - self.im_st) * self.mc_sc


def read_ofs(path: str | Path) -> Sync:
    """A HumanEva-I ``.ofs`` file: three numbers, image start frame, mocap start frame, mocap frames per image frame."""
    path = Path(path)
    im_st, mc_st, mc_sc = _numbers(path, 3, "a synchronisation file (image start frame, mocap start frame, scale)")
    if mc_sc <= 0:
        raise FormatError(f"{path}: the mocap frames per video frame must be positive, found {mc_sc:g}")
    return Sync(float(im_st), float(mc_st), float(mc_sc))


def builtin_extrinsics(subject: str, camera: str) -> tuple[np.ndarray, np.ndarray]:
    """World->camera ``(R, t)`` of the built-in table."""
    orientation, centre = EXTRINSICS[subject][CAMERAS.index(camera)]
    R, t = extrinsics_from_orientation_centre(np.array(orientation), np.array(centre))
    return np.asarray(R), np.asarray(t)


def check_extrinsics(camera: Camera, subject: str, name: str, path: Path) -> float:
    """Raise unless a ``.cal`` camera's pose agrees with the built-in table; returns the centre difference (mm)."""
    R, t = builtin_extrinsics(subject, name)
    rotation = float(np.max(np.abs(camera.R[0] - R)))
    centre = float(np.linalg.norm(-camera.R[0].T @ camera.t[0] - (-R.T @ t)))
    if not (rotation <= EXTRINSICS_TOLERANCE["R"] and centre <= EXTRINSICS_TOLERANCE["centre_mm"]):
        raise FormatError(
            f"{path}: camera {name} of {subject} differs from the built-in extrinsics (rotation entries by up to "
            f"{rotation:.3g}, centre by {centre:.3g} mm; tolerances {EXTRINSICS_TOLERANCE['R']}, "
            f"{EXTRINSICS_TOLERANCE['centre_mm']} mm); is this HumanEva-I's calibration of {subject}?"
        )
    return centre
