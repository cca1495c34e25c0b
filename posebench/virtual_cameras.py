"""Virtual cameras for mocap takes: camera rigs, 2D ground truth and occlusion flags.

A motion-capture take has 3D joints but no images. This module places virtual cameras around
it (a static Human3.6M-like ring and/or a seeded hand-held path, chosen with a ``--cameras``
spec) and renders 2D keypoints through :class:`posebench.cameras.Camera`, flagging joints that
leave the image or are hidden behind a capsule body. See docs/virtual_cameras.md.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from posebench.cameras import Camera
from posebench.errors import CameraSpecError
from posebench.virtual_cameras_occlusion import (
    H36M17_CAPSULES,
    CapsuleBody,
    capsule_body,
    check_joints,
    occlusion_flags,
)
from posebench.virtual_cameras_rigs import (
    DEFAULT_COEFFICIENTS,
    handheld_camera,
    look_at,
    ring_cameras,
)
from posebench.virtual_cameras_spec import CAMERA_SPEC_GRAMMAR, CameraRequest, parse_camera_spec

__all__ = [
    "CAMERA_SPEC_GRAMMAR",
    "DEFAULT_COEFFICIENTS",
    "H36M17_CAPSULES",
    "CameraRequest",
    "CapsuleBody",
    "capsule_body",
    "handheld_camera",
    "look_at",
    "make_cameras",
    "occlusion_flags",
    "parse_camera_spec",
    "render_keypoints",
    "ring_cameras",
]


def make_cameras(spec: str, joints_world: object, seed: int = 0, fps: float = 50.0) -> list[Camera]:
    """The cameras a ``--cameras`` spec asks for, placed around ``joints_world (P, F, J, 3)``.

    A hand-held request without ``seed=`` uses ``seed``; ``fps`` is the take's frame rate (the
    time scale of hand-held paths). Camera ids must be unique across the spec.
    """
    cameras: list[Camera] = []
    for request in parse_camera_spec(spec):
        if request.kind == "ring":
            cameras += ring_cameras(
                joints_world,
                n=request.count,
                focal=request.focal,
                width=request.width,
                height=request.height,
                distortion=request.distortion,
                height_mm=request.camera_height_mm,
                id_prefix=request.camera_id,
            )
        else:
            cameras.append(
                handheld_camera(
                    joints_world,
                    seed=seed if request.seed is None else request.seed,
                    focal=request.focal,
                    width=request.width,
                    height=request.height,
                    distance=request.distance_mm,
                    camera_id=request.camera_id,
                    fps=fps,
                )
            )
    ids = [camera.camera_id for camera in cameras]
    repeated = sorted({camera_id for camera_id in ids if ids.count(camera_id) > 1})
    if repeated:
        raise CameraSpecError(
            f"invalid camera spec {spec!r}: camera ids {repeated} occur more than once; give "
            f"repeated kinds their own id= option, e.g. handheld:seed=1,id=handheld_b\n"
            f"{CAMERA_SPEC_GRAMMAR}"
        )
    return cameras


def render_keypoints(
    joints_world: object,
    camera: Camera,
    skeleton: str = "h36m17",
    radii: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """2D ground truth of world joints ``(P, F, J, 3)`` (mm) seen by ``camera``.

    Returns pixel coordinates ``xy (P, F, J, 2)`` float32 (``camera.project`` of
    ``camera.world_to_camera``; NaN for missing joints and joints behind the camera) and the
    occluded flags ``(P, F, J)`` of :func:`occlusion_flags`.
    """
    joints = check_joints(joints_world)
    xy = camera.project(camera.world_to_camera(joints)).astype(np.float32)
    return xy, occlusion_flags(joints, camera, skeleton, radii)
