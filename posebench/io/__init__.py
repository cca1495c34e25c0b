"""Readers of generic raw file formats (C3D, BVH, TRC, OpenPose JSON)."""
