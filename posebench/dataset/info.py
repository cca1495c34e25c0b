"""Dataset-level metadata (``meta/info.json``): version, units, conventions, provenance."""

from __future__ import annotations

import hashlib
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from posebench.errors import SchemaError, SchemaVersionError

SCHEMA_VERSION = "1.0"

UNITS: dict[str, str] = {"joints_3d": "mm", "keypoints_2d": "px", "time": "s"}

CONVENTIONS: dict[str, str] = {
    "camera_frame": "opencv: x right, y down, z forward",
    "extrinsics": "world_to_camera: X_cam = R @ X_world + t",
    "world_frame": "lab frame of the capture, right-handed, z up where the source defines it",
    "missing": "NaN",
    "joint_array_layout": "persons x frames x joints x coordinates",
}

REQUIRED_INFO_KEYS = (
    "schema_version",
    "name",
    "skeleton",
    "units",
    "conventions",
    "keypoint_sources",
    "splits",
    "provenance",
)


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def make_provenance(
    converter: str,
    converter_version: str,
    inputs: Iterable[Path] = (),
    *,
    command: str | None = None,
    notes: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Provenance record: converter, input files with SHA-256, creation time and command line."""
    from posebench import __version__

    return {
        "converter": converter,
        "converter_version": converter_version,
        "posebench_version": __version__,
        "inputs": [{"file": Path(p).name, "sha256": sha256_of(Path(p))} for p in inputs],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "notes": list(notes),
        **(extra or {}),
    }


def check_schema_version(info: dict[str, Any], where: str) -> None:
    """Raise :class:`SchemaVersionError` unless ``info`` was written with schema 1.x."""
    version = info.get("schema_version")
    if version is None:
        raise SchemaVersionError(where, "schema_version", "schema_version", "missing; this is not a posebench dataset or it predates schema 1.0")
    try:
        major, minor = (int(part) for part in str(version).split(".")[:2])
    except ValueError as exc:
        raise SchemaVersionError(where, "schema_version", "schema_version", f"unreadable version {version!r}") from exc
    own_major, own_minor = (int(part) for part in SCHEMA_VERSION.split("."))
    if major < own_major:
        raise SchemaVersionError(
            where, "schema_version", "schema_version",
            f"dataset uses the older schema {version}; this posebench reads {SCHEMA_VERSION}: convert it again from the raw files",
        )
    if major > own_major or (major == own_major and minor > own_minor):
        raise SchemaVersionError(
            where, "schema_version", "schema_version",
            f"dataset uses the newer schema {version}; this posebench reads {SCHEMA_VERSION}: upgrade posebench",
        )


def check_info(info: dict[str, Any], where: str) -> None:
    """Check the dataset-level metadata rules (version, required keys, units, conventions, types)."""
    if not isinstance(info, dict):
        raise SchemaError(where, "info", "required", f"metadata must be a JSON object, found {type(info).__name__}; re-convert the dataset")
    check_schema_version(info, where)
    for key in REQUIRED_INFO_KEYS:
        if key not in info:
            raise SchemaError(where, key, "required", f"metadata key '{key}' is missing")
    if info["units"] != UNITS:
        raise SchemaError(where, "units", "units", f"units must be {UNITS}, found {info['units']}; convert the data to mm, px and s")
    if info["conventions"] != CONVENTIONS:
        raise SchemaError(where, "conventions", "conventions", f"conventions must be {CONVENTIONS}, found {info['conventions']}")
    if not isinstance(info["name"], str) or not info["name"]:
        raise SchemaError(where, "name", "required", "dataset name must be a non-empty string")
    sources = info["keypoint_sources"]
    if not isinstance(sources, dict) or not all(isinstance(meta, dict) for meta in sources.values()):
        raise SchemaError(where, "keypoint_sources", "required", "keypoint_sources must map each source name to an object with its 'skeleton'")
    splits = info["splits"]
    if not isinstance(splits, dict) or not all(isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in splits.values()):
        raise SchemaError(where, "splits", "splits", "splits must map each split name to a list of sequence ids")
    if not isinstance(info["provenance"], dict) or not isinstance(info.get("description", ""), str):
        raise SchemaError(where, "provenance", "required", "provenance must be an object and description a string")
