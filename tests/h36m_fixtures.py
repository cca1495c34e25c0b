"""Writers of small Human3.6M / HumanEva-I / VideoPose3D input files in their original formats.

Camera values are the published ones (evaluation reference §3), written out here independently
of the converters, and the geometry (quaternion rotation, Human3.6M projection) is implemented
here from the reference formulas, so that tests compare the converters with an independent
computation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cdflib.cdfwrite import CDF

# Human3.6M intrinsics: id -> (w, h, (fx, fy), (cx, cy), (k1, k2, k3), (p1, p2)).
H36M_INTRINSICS = {
    "54138969": (1000, 1002, (1145.0494384765625, 1143.7811279296875), (512.54150390625, 515.4514770507812),
                 (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043), (-0.0009756988729350269, -0.00142447161488235)),
    "55011271": (1000, 1000, (1149.6756591796875, 1147.5916748046875), (508.8486328125, 508.0649108886719),
                 (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665), (-0.0016190266469493508, -0.0027408944442868233)),
    "58860488": (1000, 1000, (1149.1407470703125, 1148.7989501953125), (519.8158569335938, 501.40264892578125),
                 (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427), (0.0014843869721516967, -0.0007599993259645998)),
    "60457274": (1000, 1002, (1145.5113525390625, 1144.77392578125), (514.9682006835938, 501.88201904296875),
                 (-0.198384091258049, 0.21832367777824402, -0.008947807364165783), (-0.0005872055771760643, -0.0018133620033040643)),
}  # fmt: skip
H36M_CAMERAS = tuple(H36M_INTRINSICS)

# Extrinsics of the two subjects the tests use: camera -> (orientation q (w, x, y, z), centre mm).
H36M_EXTRINSICS = {
    "S1": {
        "54138969": ((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088), (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
        "55011271": ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205), (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
        "58860488": ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696), (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
        "60457274": ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435), (-1794.7896728515625, -3722.698974609375, 1574.8927001953125)),
    },
    "S11": {
        "54138969": ((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467), (2098.440185546875, 4926.5546875, 1500.278564453125)),
        "55011271": ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085), (2083.182373046875, -4912.1728515625, 1561.07861328125)),
        "58860488": ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407), (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
        "60457274": ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809), (-1590.738037109375, -3854.1689453125, 1578.017578125)),
    },
}  # fmt: skip

# Kept columns of the 32-joint skeleton (reference §4), written out independently.
KEPT_32 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) by unit quaternion ``q = (w, x, y, z)``: ``v + 2(w u×v + u×(u×v))``."""
    w, u = q[0], np.broadcast_to(q[1:], v.shape)
    uv = np.cross(u, v)
    return v + 2 * (w * uv + np.cross(u, uv))


def world_to_camera_ref(points: np.ndarray, q, centre) -> np.ndarray:
    """VideoPose3D's ``world_to_camera``: rotate ``points - centre`` by the conjugate of ``q``."""
    q = np.asarray(q, dtype=np.float64)
    return qrot(np.array([q[0], -q[1], -q[2], -q[3]]), points - np.asarray(centre))


def project_h36m_ref(points_cam: np.ndarray, camera: str) -> np.ndarray:
    """Human3.6M projection of camera-frame points (reference §3, without VideoPose3D's clip)."""
    _, _, f, c, k, p = H36M_INTRINSICS[camera]
    m = points_cam[..., :2] / points_cam[..., 2:]
    r2 = (m**2).sum(-1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tangential = p[0] * m[..., :1] + p[1] * m[..., 1:]
    distorted = m * (radial + tangential) + np.array(p) * r2
    return distorted * np.array(f) + np.array(c)


def make_motion(frames: int, joints: int, seed: int) -> np.ndarray:
    """A smooth seeded motion (frames, joints, 3) in mm: a body-sized point cloud walking near the origin."""
    rng = np.random.default_rng(seed)
    body = rng.uniform([-250, -250, 50], [250, 250, 1750], size=(joints, 3))
    t = np.arange(frames)[:, None]
    path = np.concatenate([400 * np.sin(t / 25.0), 300 * np.cos(t / 30.0), 10 * np.sin(t / 7.0)], axis=1)
    wobble = 15 * np.sin(t[:, :, None] / 5.0 + rng.uniform(0, 6, size=(1, joints, 3)))
    return body[None] + path[:, None] + wobble


def write_pose_cdf(path: Path, poses: np.ndarray, dtype=np.float64) -> None:
    """A release-style CDF file: one record of variable ``Pose`` with dims (frames, values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = poses.reshape(1, poses.shape[0], -1).astype(dtype)
    kind = CDF.CDF_DOUBLE if dtype == np.float64 else CDF.CDF_FLOAT
    cdf = CDF(str(path), delete=True)
    spec = {"Variable": "Pose", "Data_Type": kind, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": list(data.shape[1:])}
    cdf.write_var(spec, var_data=data)
    cdf.close()


def write_release(root: Path, takes: dict[tuple[str, str], np.ndarray], folders: tuple[str, str, str],
                  mono: bool = True, d2: bool = True, dtype=np.float64) -> None:
    """Write (subject, file action) -> world (F, 32, 3) mm as a release tree; ``folders`` = (world, mono, 2D)."""
    world_dir, mono_dir, d2_dir = folders
    for (subject, action), world in takes.items():
        write_pose_cdf(root / subject / world_dir / f"{action}.cdf", world.reshape(len(world), -1), dtype)
        for camera in H36M_CAMERAS:
            q, centre = H36M_EXTRINSICS[subject][camera]
            cam = world_to_camera_ref(world, q, centre)
            if mono:
                write_pose_cdf(root / subject / mono_dir / f"{action}.{camera}.cdf", cam.reshape(len(world), -1), dtype)
            if d2:
                write_pose_cdf(root / subject / d2_dir / f"{action}.{camera}.cdf", project_h36m_ref(cam, camera).reshape(len(world), -1), dtype)


def write_npz(path: Path, **members) -> None:
    """An npz file the way VideoPose3D writes them (dicts stored as pickled 0-d object arrays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **members)


def euler_xyz_angles(M: np.ndarray) -> tuple[float, float, float]:
    """Angles (a, b, c) with ``M = Rx(a) Ry(b) Rz(c)``."""
    return float(np.arctan2(-M[1, 2], M[2, 2])), float(np.arcsin(M[0, 2])), float(np.arctan2(-M[0, 1], M[0, 0]))


def quaternion_matrix(q) -> np.ndarray:
    """Rotation matrix of ``q`` built column by column with :func:`qrot`."""
    q = np.asarray(q, dtype=np.float64)
    return np.stack([qrot(q, e) for e in np.eye(3)], axis=1)


def write_metadata_xml(path: Path, overrides: dict[tuple[str, str, int], float] | None = None) -> None:
    """A ``metadata.xml`` with the camera vector ``<w0>`` of the subjects in :data:`H36M_EXTRINSICS`.

    ``overrides`` replaces single numbers: ``(subject, camera, offset)`` with offsets 0-5 into the
    6 extrinsic numbers (3 angles, centre), or ``("", camera, 6 + i)`` into the 9 intrinsic numbers.
    """
    overrides = overrides or {}
    w0 = np.zeros(4 * 11 * 6 + 4 * 9)
    for c, camera in enumerate(H36M_CAMERAS):
        for subject, cameras in H36M_EXTRINSICS.items():
            q, centre = cameras[camera]
            start = 6 * (11 * c + int(subject[1:]) - 1)
            w0[start:start + 3] = euler_xyz_angles(quaternion_matrix(q))
            w0[start + 3:start + 6] = centre
            for offset in range(6):
                if (subject, camera, offset) in overrides:
                    w0[start + offset] = overrides[(subject, camera, offset)]
        _, _, f, cc, k, p = H36M_INTRINSICS[camera]
        start = 264 + 9 * c
        w0[start:start + 9] = [*f, *cc, *k, p[1], p[0]]
        for offset in range(9):
            if ("", camera, 6 + offset) in overrides:
                w0[start + offset] = overrides[("", camera, 6 + offset)]
    ids = "".join(f"<id>{camera}</id>" for camera in H36M_CAMERAS)
    numbers = " ".join(repr(float(v)) for v in w0)
    path.write_text(f'<?xml version="1.0"?>\n<data><dbcameras><index2id>{ids}</index2id></dbcameras><w0>[{numbers}]</w0></data>\n')


# HumanEva-I extrinsics of S1 (reference §3): camera -> (orientation q, centre mm).
HE_EXTRINSICS_S1 = {
    "C1": ((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.227, 663.2477, 1528.397)),
    "C2": ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
    "C3": ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.67377, 3916.3174, 1433.6602)),
}
# Plausible intrinsics for fixtures: fc (2), cc (2), kc (k1, k2, p1, p2, k3).
HE_INTRINSICS = {
    "C1": ((766.2, 768.1), (323.4, 247.9), (-0.31, 0.12, 0.0011, -0.0007, 0.01)),
    "C2": ((760.5, 761.9), (318.0, 240.6), (-0.29, 0.10, -0.0004, 0.0009, 0.0)),
    "C3": ((771.0, 772.4), (316.2, 251.3), (-0.33, 0.15, 0.0002, 0.0003, -0.02)),
}


def write_cal(path: Path, camera: str, alpha: float = 0.0, centre_shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A HumanEva ``.cal`` file (22 numbers, one per line) for S1's ``camera``; returns (Rc, Tc)."""
    q, centre = HE_EXTRINSICS_S1[camera]
    Rc = quaternion_matrix(q).T
    Tc = -Rc @ (np.asarray(centre) + centre_shift)
    fc, cc, kc = HE_INTRINSICS[camera]
    numbers = [*fc, *cc, alpha, *kc, *Rc.reshape(-1), *Tc]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(repr(float(v)) for v in numbers) + "\n")
    return Rc, Tc


def write_ofs(path: Path, im_st: float, mc_st: float, mc_sc: float) -> None:
    """A HumanEva ``.ofs`` file: image start frame, mocap start frame, mocap frames per image frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{im_st!r}\n{mc_st!r}\n{mc_sc!r}\n")


def project_opencv_ref(points_cam: np.ndarray, camera: str) -> np.ndarray:
    """Bouguet / OpenCV projection with the fixture intrinsics of ``camera``."""
    fc, cc, (k1, k2, p1, p2, k3) = HE_INTRINSICS[camera]
    x, y = points_cam[..., 0] / points_cam[..., 2], points_cam[..., 1] / points_cam[..., 2]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([fc[0] * xd + cc[0], fc[1] * yd + cc[1]], -1)
