"""Readers of generic raw file formats (C3D, BVH, TRC, OpenPose JSON)."""

from __future__ import annotations

from posebench.io.bvh import read_bvh
from posebench.io.c3d import read_c3d
from posebench.io.npz import load_npz
from posebench.io.openpose import read_openpose_folder, read_openpose_json
from posebench.io.trc import read_trc

__all__ = ["load_npz", "read_bvh", "read_c3d", "read_openpose_folder", "read_openpose_json", "read_trc"]
