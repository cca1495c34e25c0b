"""A dataset's summary from its metadata alone (what ``posebench info`` prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posebench.dataset import Dataset


def size_on_disk(path: Path) -> int:
    """Bytes used by a dataset file or directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def summarise(dataset: Dataset, path: Path | None = None) -> dict[str, Any]:
    """Counts and names describing ``dataset``; reads no arrays."""
    cameras = {s.camera.camera_id: s.camera for s in dataset if s.camera is not None}
    frames = sum(s.n_frames for s in dataset)
    summary: dict[str, Any] = {
        "name": dataset.name,
        "schema_version": dataset.info["schema_version"],
        "skeleton": f"{dataset.skeleton.name} ({dataset.skeleton.n_joints} joints)",
        "sequences": len(dataset),
        "frames": frames,
        "person_frames": sum(s.n_frames * s.n_persons for s in dataset),
        "max_persons": max((s.n_persons for s in dataset), default=0),
        "subjects": sorted({subject for s in dataset for subject in s.subjects}),
        "actions": sorted({s.action for s in dataset}),
        "fps": sorted({s.fps for s in dataset}),
        "cameras": {
            "static": sum(not c.is_moving for c in cameras.values()),
            "moving": sum(c.is_moving for c in cameras.values()),
        },
        "sequences_without_camera": sum(s.camera is None for s in dataset),
        "keypoint_sources": {
            source: meta.get("skeleton", dataset.skeleton.name) for source, meta in dataset.keypoint_sources.items()
        },
        "splits": {
            split: {"sequences": len(ids), "frames": sum(dataset[i].n_frames for i in ids)}
            for split, ids in dataset.splits.items()
        },
        "converter": dataset.provenance.get("converter", ""),
        "created": dataset.provenance.get("created", ""),
    }
    if path is not None:
        summary["path"] = str(path)
        summary["size_bytes"] = size_on_disk(path)
    return summary


def _human_bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _names(values: list, limit: int = 12) -> str:
    shown = ", ".join(str(v) or "(none)" for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as aligned text lines."""
    sources = ", ".join(f"{k} ({v})" for k, v in summary["keypoint_sources"].items()) or "(none)"
    splits = ", ".join(
        f"{k}: {v['sequences']} sequences / {v['frames']} frames" for k, v in summary["splits"].items()
    ) or "(none)"
    rows = [
        ("dataset", summary["name"]),
        ("path", summary.get("path", "(in memory)")),
        ("schema", summary["schema_version"]),
        ("skeleton", summary["skeleton"]),
        ("sequences", str(summary["sequences"])),
        ("frames", f"{summary['frames']} ({summary['person_frames']} person-frames, up to {summary['max_persons']} persons)"),
        ("fps", _names(summary["fps"])),
        ("subjects", f"{len(summary['subjects'])}: {_names(summary['subjects'])}"),
        ("actions", f"{len(summary['actions'])}: {_names(summary['actions'])}"),
        (
            "cameras",
            f"{summary['cameras']['static']} static, {summary['cameras']['moving']} moving"
            + (f", {summary['sequences_without_camera']} sequences without camera" if summary["sequences_without_camera"] else ""),
        ),
        ("2D sources", sources),
        ("splits", splits),
        ("converter", summary["converter"] or "(unknown)"),
        ("created", summary["created"] or "(unknown)"),
    ]
    if "size_bytes" in summary:
        rows.append(("size on disk", _human_bytes(summary["size_bytes"])))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
