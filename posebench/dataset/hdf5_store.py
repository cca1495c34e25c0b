"""The HDF5 layout: one file, metadata as attributes, one group per sequence and per camera.

```
/                      attrs: schema_version, info (the JSON of meta/info.json)
/cameras/<k>           attrs: camera_id, width, height, fx, fy, cx, cy, distortion, moving
                       datasets: coefficients (C,), R (N, 3, 3), t (N, 3)
/sequences/<k>         attrs: sequence_id, action, take, camera_id, fps, attributes (JSON)
                       datasets: timestamps (F,), person_ids (P,), subjects (P,),
                                 joints_world (P, F, J, 3), joints_cam (P, F, J, 3) when a camera,
                                 keypoints/<src>/xy (P, F, K, 2), confidence (P, F, K), occluded (P, F, K)
```

Group names are zero-padded ordinals (``000000``) that keep the sequence order; identifiers live
in attributes so that any string, ``/`` included, is a valid sequence or camera id. Per-frame
arrays are chunked along frames and compressed, so a window read decompresses only its chunks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from posebench.cameras import Camera
from posebench.dataset.model import TIME_DTYPE, Keypoints2D, Sequence, transiently_loaded
from posebench.dataset.validate import camera_from_fields
from posebench.errors import SchemaError

CHUNK_FRAMES = 1024
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _frames_dataset(group: h5py.Group, name: str, array: np.ndarray) -> None:
    """Store a (P, F, ...) array chunked by one person and up to CHUNK_FRAMES frames."""
    if array.size == 0:
        group.create_dataset(name, data=array)
        return
    chunks = (1, min(array.shape[1], CHUNK_FRAMES)) + array.shape[2:]
    group.create_dataset(name, data=array, chunks=chunks, **COMPRESSION)


def write_hdf5(dataset: Any, path: Path) -> None:
    """Write ``dataset`` to the (new) file ``path``."""
    with h5py.File(path, "w", libver="latest") as handle:
        info = dataset.info
        handle.attrs["schema_version"] = info["schema_version"]
        handle.attrs["info"] = json.dumps(info)
        camera_groups = handle.create_group("cameras")
        written: dict[str, Camera] = {}
        for sequence in dataset:
            camera = sequence.camera
            if camera is None or camera.camera_id in written:
                continue
            group = camera_groups.create_group(f"{len(written):06d}")
            for name in ("camera_id", "width", "height", "fx", "fy", "cx", "cy", "distortion"):
                group.attrs[name] = getattr(camera, name)
            group.attrs["moving"] = camera.is_moving
            group.create_dataset("coefficients", data=np.asarray(camera.coefficients, dtype=np.float64))
            group.create_dataset("R", data=np.asarray(camera.R, dtype=np.float64))
            group.create_dataset("t", data=np.asarray(camera.t, dtype=np.float64))
            written[camera.camera_id] = camera
        sequence_groups = handle.create_group("sequences")
        for index, sequence in enumerate(dataset):
            with transiently_loaded(sequence):
                group = sequence_groups.create_group(f"{index:06d}")
                group.attrs["sequence_id"] = sequence.sequence_id
                group.attrs["action"] = sequence.action
                group.attrs["take"] = sequence.take
                group.attrs["camera_id"] = sequence.camera.camera_id if sequence.camera is not None else ""
                group.attrs["has_camera"] = sequence.camera is not None
                group.attrs["fps"] = sequence.fps
                group.attrs["attributes"] = json.dumps(sorted(sequence.attributes.items()))
                group.attrs["keypoint_sources"] = json.dumps(list(sequence.keypoint_sources or ()))
                group.create_dataset("timestamps", data=sequence.timestamps)
                group.create_dataset("person_ids", data=np.asarray(sequence.person_ids, dtype=np.int64))
                group.create_dataset("subjects", data=np.asarray(sequence.subjects, dtype=object), dtype=h5py.string_dtype())
                _frames_dataset(group, "joints_world", sequence.joints_world)
                if sequence.joints_cam is not None:
                    _frames_dataset(group, "joints_cam", sequence.joints_cam)
                for source in sequence.keypoint_sources or ():
                    keypoints = sequence.keypoints[source]
                    sub = group.create_group(f"keypoints/{source}")
                    _frames_dataset(sub, "xy", keypoints.xy)
                    _frames_dataset(sub, "confidence", keypoints.confidence)
                    _frames_dataset(sub, "occluded", keypoints.occluded)


def _str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _dataset(group: h5py.Group, name: str, where: str) -> h5py.Dataset:
    if name not in group:
        raise SchemaError(where, name, "required", f"dataset '{name}' is missing")
    item = group[name]
    if not isinstance(item, h5py.Dataset):
        raise SchemaError(where, name, "required", f"'{name}' must be a dataset, found a group")
    return item


def _attr(group: h5py.Group, name: str, where: str) -> Any:
    if name not in group.attrs:
        raise SchemaError(where, name, "required", f"attribute '{name}' is missing")
    return group.attrs[name]


def _number(group: h5py.Group, name: str, where: str, kind: type) -> Any:
    """A scalar numeric attribute converted with ``kind`` (int or float); SchemaError for anything else."""
    value = _attr(group, name, where)
    try:
        if isinstance(value, (str, bytes)) or np.ndim(value) != 0:
            raise TypeError(name)
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise SchemaError(where, name, "dtype", f"attribute '{name}' must be a single {'integer' if kind is int else 'number'}, found {value!r:.80}") from None


def _integers(group: h5py.Group, name: str, where: str) -> list[int]:
    """A 1-D integer dataset as a list; SchemaError for another dtype or shape."""
    item = _dataset(group, name, where)
    if item.dtype.kind not in "iu" or item.ndim != 1:
        raise SchemaError(where, name, "dtype", f"dataset '{name}' must be a 1-D integer array, found {item.dtype} of shape {item.shape}")
    return [int(value) for value in item[()]]


class HDF5Store:
    """Lazy reads of one posebench HDF5 file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._groups: dict[str, str] = {}

    def read_info(self) -> dict[str, Any]:
        with h5py.File(self.path, "r") as handle:
            raw = _attr(handle, "info", "/meta")
        try:
            return json.loads(_str(raw))
        except RecursionError:
            raise SchemaError("/meta", "info", "readable", "the info attribute is JSON nested too deeply; re-convert the dataset") from None
        except ValueError as exc:
            raise SchemaError("/meta", "info", "readable", f"the info attribute is not valid JSON: {exc}") from None

    def read_cameras(self) -> dict[str, Camera]:
        cameras = {}
        with h5py.File(self.path, "r") as handle:
            if "cameras" not in handle:
                raise SchemaError("/cameras", "*", "required", "group /cameras is missing")
            for key in sorted(handle["cameras"]):
                group = handle["cameras"][key]
                where = f"/cameras/{key}"
                camera = camera_from_fields(
                    where,
                    camera_id=_str(_attr(group, "camera_id", where)),
                    width=_number(group, "width", where, int),
                    height=_number(group, "height", where, int),
                    fx=_number(group, "fx", where, float),
                    fy=_number(group, "fy", where, float),
                    cx=_number(group, "cx", where, float),
                    cy=_number(group, "cy", where, float),
                    distortion=_str(_attr(group, "distortion", where)),
                    coefficients=tuple(float(c) for c in _dataset(group, "coefficients", where)[()]),
                    R=np.asarray(_dataset(group, "R", where)[()], dtype=np.float64),
                    t=np.asarray(_dataset(group, "t", where)[()], dtype=np.float64),
                )
                if bool(_attr(group, "moving", where)) != camera.is_moving:
                    raise SchemaError(where, "moving", "camera_ref", "the 'moving' flag disagrees with the number of poses")
                if camera.camera_id in cameras:
                    raise SchemaError("/cameras", "camera_id", "unique_id", f"{camera.camera_id!r} appears more than once")
                cameras[camera.camera_id] = camera
        return cameras

    def read_sequences(self, cameras: dict[str, Camera]) -> list[Sequence]:
        sequences = []
        with h5py.File(self.path, "r") as handle:
            if "sequences" not in handle:
                raise SchemaError("/sequences", "*", "required", "group /sequences is missing")
            for key in sorted(handle["sequences"]):
                group = handle["sequences"][key]
                where = f"/sequences/{key}"
                camera_id = _str(_attr(group, "camera_id", where)) if bool(_attr(group, "has_camera", where)) else None
                if camera_id is not None and camera_id not in cameras:
                    raise SchemaError(where, "camera_id", "camera_ref", f"camera {camera_id!r} is not in /cameras")
                try:
                    attributes = dict(json.loads(_str(_attr(group, "attributes", where))))
                    sources = list(json.loads(_str(_attr(group, "keypoint_sources", where))))
                except (TypeError, ValueError, RecursionError) as exc:
                    raise SchemaError(where, "attributes", "readable", f"not valid JSON: {exc}") from None
                sequence = Sequence(
                    sequence_id=_str(_attr(group, "sequence_id", where)),
                    subjects=[_str(s) for s in _dataset(group, "subjects", where)[()]],
                    fps=_number(group, "fps", where, float),
                    action=_str(_attr(group, "action", where)),
                    take=_str(_attr(group, "take", where)),
                    camera=cameras.get(camera_id) if camera_id is not None else None,
                    person_ids=_integers(group, "person_ids", where),
                    attributes=attributes,
                    n_frames=int(_dataset(group, "timestamps", where).shape[0]),
                    keypoint_sources=sources,
                )
                self._groups[sequence.sequence_id] = group.name
                sequence._loader = self.loader(sequence)
                sequences.append(sequence)
        return sequences

    def read_window(self, sequence: Sequence, person: int, start: int, stop: int, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Frames [start, stop) of person index ``person``; reads only the chunks involved."""
        out: dict[str, np.ndarray] = {}
        with h5py.File(self.path, "r") as handle:
            group = handle[self._groups[sequence.sequence_id]]
            where = group.name
            for name in fields:
                if name == "timestamps":
                    out[name] = np.asarray(_dataset(group, name, where)[start:stop], dtype=TIME_DTYPE)
                elif name == "joints_cam" and sequence.camera is None:
                    out[name] = None
                elif name.startswith("keypoints/"):
                    for part in ("xy", "confidence", "occluded"):
                        out[f"{name}/{part}"] = _dataset(group, f"{name}/{part}", where)[person, start:stop]
                else:
                    out[name] = _dataset(group, name, where)[person, start:stop]
        return out

    def load_sequence(self, sequence: Sequence) -> dict[str, Any]:
        """All arrays of one sequence."""
        with h5py.File(self.path, "r") as handle:
            group = handle[self._groups[sequence.sequence_id]]
            where = group.name
            keypoints = {}
            for source in sequence.keypoint_sources or ():
                prefix = f"keypoints/{source}"
                keypoints[source] = Keypoints2D(
                    xy=_dataset(group, f"{prefix}/xy", where)[()],
                    confidence=_dataset(group, f"{prefix}/confidence", where)[()],
                    occluded=_dataset(group, f"{prefix}/occluded", where)[()],
                )
            return {
                "timestamps": _dataset(group, "timestamps", where)[()],
                "joints_world": _dataset(group, "joints_world", where)[()],
                "joints_cam": _dataset(group, "joints_cam", where)[()] if sequence.camera is not None else None,
                "keypoints": keypoints,
            }

    def loader(self, sequence: Sequence):
        return lambda: self.load_sequence(sequence)


def is_hdf5(path: Path) -> bool:
    """Whether ``path`` is a file starting with the HDF5 signature."""
    try:
        with open(path, "rb") as handle:
            return handle.read(8) == HDF5_SIGNATURE
    except OSError:
        return False

