"""The Parquet layout: a directory with ``meta/info.json`` and one table per kind of record.

```
DIR/meta/info.json           dataset metadata (schema_version, skeleton, units, splits, provenance)
DIR/sequences.parquet        one row per sequence
DIR/cameras.parquet          one row per static camera, one row per frame of a moving camera
DIR/poses.parquet            one row per (sequence, person, frame): 3D joints, world and camera
DIR/keypoints/<src>.parquet  one row per (sequence, person, frame) of a 2D keypoint source
```

Rows of ``poses`` and ``keypoints/*`` are ordered by sequence (in ``sequences`` order), person,
frame, so the rows of any window are located from the sequence table alone and read through the
Parquet row-group index without touching the rest of the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from posebench.cameras import Camera
from posebench.dataset.model import POSE_DTYPE, TIME_DTYPE, Keypoints2D, Sequence, transiently_loaded
from posebench.dataset.validate import camera_from_fields
from posebench.errors import SchemaError

ROW_GROUP_SIZE = 16_384
INFO_PATH = Path("meta") / "info.json"

SEQUENCES_SCHEMA = pa.schema(
    [
        ("sequence_id", pa.string()),
        ("action", pa.string()),
        ("take", pa.string()),
        ("camera_id", pa.string()),
        ("fps", pa.float64()),
        ("n_frames", pa.int64()),
        ("person_ids", pa.list_(pa.int64())),
        ("subjects", pa.list_(pa.string())),
        ("keypoint_sources", pa.list_(pa.string())),
        ("attributes", pa.map_(pa.string(), pa.string())),
    ]
)

CAMERAS_SCHEMA = pa.schema(
    [
        ("camera_id", pa.string()),
        ("frame", pa.int64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("fx", pa.float64()),
        ("fy", pa.float64()),
        ("cx", pa.float64()),
        ("cy", pa.float64()),
        ("distortion", pa.string()),
        ("coefficients", pa.list_(pa.float64())),
        ("R", pa.list_(pa.float64(), 9)),
        ("t", pa.list_(pa.float64(), 3)),
    ]
)

INTRINSIC_COLUMNS = ("width", "height", "fx", "fy", "cx", "cy", "distortion", "coefficients")


def poses_schema(n_joints: int) -> pa.Schema:
    joints = pa.list_(pa.list_(pa.float32(), 3), n_joints)
    return pa.schema(
        [
            ("sequence_id", pa.string()),
            ("person_id", pa.int64()),
            ("frame", pa.int64()),
            ("timestamp", pa.float64()),
            ("joints_world", joints),
            ("joints_cam", joints),
        ]
    )


def keypoints_schema(n_keypoints: int) -> pa.Schema:
    return pa.schema(
        [
            ("sequence_id", pa.string()),
            ("person_id", pa.int64()),
            ("frame", pa.int64()),
            ("xy", pa.list_(pa.list_(pa.float32(), 2), n_keypoints)),
            ("confidence", pa.list_(pa.float32(), n_keypoints)),
            ("occluded", pa.list_(pa.bool_(), n_keypoints)),
        ]
    )


def _fixed_list(array: np.ndarray, *inner: int) -> pa.Array:
    """Nested fixed-size lists from a C-contiguous array whose trailing dims are ``inner``."""
    values: pa.Array = pa.array(np.ascontiguousarray(array).reshape(-1))
    for size in reversed(inner):
        values = pa.FixedSizeListArray.from_arrays(values, size)
    return values


def _from_fixed_list(column: pa.ChunkedArray | pa.Array, dtype: np.dtype, *inner: int) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    for _ in inner:
        array = array.flatten()
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=dtype).reshape(-1, *inner)


def _key_columns(sequence: Sequence) -> dict[str, pa.Array]:
    P, F = sequence.n_persons, sequence.n_frames
    return {
        "sequence_id": pa.array([sequence.sequence_id] * (P * F), pa.string()),
        "person_id": pa.array(np.repeat(np.asarray(sequence.person_ids, dtype=np.int64), F)),
        "frame": pa.array(np.tile(np.arange(F, dtype=np.int64), P)),
    }


class _BufferedWriter:
    """Parquet writer that groups small per-sequence tables into large row groups."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")
        self.schema = schema
        self._pending: list[pa.Table] = []
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        if self._rows >= ROW_GROUP_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=ROW_GROUP_SIZE)
            self._pending, self._rows = [], 0

    def close(self) -> None:
        self.flush()
        self._writer.close()


def write_parquet(dataset: Any, directory: Path) -> None:
    """Write ``dataset`` into the (new, empty) directory ``directory``."""
    (directory / "meta").mkdir(parents=True)
    J = dataset.skeleton.n_joints
    poses = _BufferedWriter(directory / "poses.parquet", poses_schema(J))
    keypoint_writers = {
        source: _BufferedWriter(directory / "keypoints" / f"{source}.parquet", keypoints_schema(dataset.keypoint_layout(source).n_joints))
        for source in dataset.keypoint_sources
    }
    sequence_rows: dict[str, list] = {name: [] for name in SEQUENCES_SCHEMA.names}
    cameras: dict[str, Camera] = {}
    for sequence in dataset:
        with transiently_loaded(sequence):
            _write_sequence(sequence, J, poses, keypoint_writers)
        if sequence.camera is not None:
            cameras.setdefault(sequence.camera.camera_id, sequence.camera)
        for name, value in (
            ("sequence_id", sequence.sequence_id),
            ("action", sequence.action),
            ("take", sequence.take),
            ("camera_id", sequence.camera.camera_id if sequence.camera is not None else None),
            ("fps", sequence.fps),
            ("n_frames", sequence.n_frames),
            ("person_ids", list(sequence.person_ids)),
            ("subjects", list(sequence.subjects)),
            ("keypoint_sources", list(sequence.keypoint_sources or ())),
            ("attributes", sorted(sequence.attributes.items())),
        ):
            sequence_rows[name].append(value)
    poses.close()
    for writer in keypoint_writers.values():
        writer.close()
    pq.write_table(pa.table(sequence_rows, schema=SEQUENCES_SCHEMA), directory / "sequences.parquet")
    pq.write_table(_cameras_table(list(cameras.values())), directory / "cameras.parquet")
    (directory / INFO_PATH).write_text(json.dumps(dataset.info, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _write_sequence(sequence: Sequence, J: int, poses: _BufferedWriter, keypoint_writers: dict[str, _BufferedWriter]) -> None:
    """Append one sequence's rows to the poses and keypoint tables."""
    P = sequence.n_persons
    keys = _key_columns(sequence)
    world = sequence.joints_world
    cam = sequence.joints_cam if sequence.joints_cam is not None else np.full_like(world, np.nan)
    poses.write(
        pa.table(
            {
                **keys,
                "timestamp": pa.array(np.tile(sequence.timestamps, P)),
                "joints_world": _fixed_list(world, J, 3),
                "joints_cam": _fixed_list(cam, J, 3),
            },
            schema=poses.schema,
        )
    )
    for source in sequence.keypoint_sources or ():
        keypoints = sequence.keypoints[source]
        K = keypoints.xy.shape[-2]
        keypoint_writers[source].write(
            pa.table(
                {
                    **keys,
                    "xy": _fixed_list(keypoints.xy, K, 2),
                    "confidence": _fixed_list(keypoints.confidence, K),
                    "occluded": _fixed_list(keypoints.occluded, K),
                },
                schema=keypoint_writers[source].schema,
            )
        )


def _cameras_table(cameras: list[Camera]) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in CAMERAS_SCHEMA.names}
    for camera in cameras:
        n = camera.n_poses
        columns["camera_id"] += [camera.camera_id] * n
        columns["frame"] += list(range(n)) if camera.is_moving else [None]
        for name in ("width", "height", "fx", "fy", "cx", "cy", "distortion"):
            columns[name] += [getattr(camera, name)] * n
        columns["coefficients"] += [list(camera.coefficients)] * n
        columns["R"] += list(np.asarray(camera.R, dtype=np.float64).reshape(n, 9))
        columns["t"] += list(np.asarray(camera.t, dtype=np.float64).reshape(n, 3))
    return pa.table(columns, schema=CAMERAS_SCHEMA)


def _require_columns(table: pa.Table, schema: pa.Schema, where: str) -> None:
    for field in schema:
        if field.name not in table.column_names:
            raise SchemaError(where, field.name, "required", f"column '{field.name}' is missing")
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise SchemaError(where, field.name, "dtype", f"expected Arrow type {field.type}, found {actual}")


def _read_table(path: Path, schema: pa.Schema, where: str) -> pa.Table:
    if not path.is_file():
        raise SchemaError(where, "*", "required", f"table file {path.name} is missing")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise SchemaError(where, "*", "readable", f"cannot read {path}: {exc}") from None
    _require_columns(table, schema, where)
    return table


def read_info(directory: Path) -> dict[str, Any]:
    path = directory / INFO_PATH
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError("meta", "info.json", "required", f"{path} is missing") from None
    except RecursionError:
        raise SchemaError("meta", "info.json", "readable", f"{path} is JSON nested too deeply; re-convert the dataset") from None
    except ValueError as exc:
        raise SchemaError("meta", "info.json", "readable", f"{path} is not valid JSON: {exc}") from None


def read_cameras(directory: Path) -> dict[str, Camera]:
    table = _read_table(directory / "cameras.parquet", CAMERAS_SCHEMA, "cameras")
    if table.num_rows == 0:
        return {}
    columns = table.to_pydict()
    R = _from_fixed_list(table.column("R"), np.float64, 9).reshape(-1, 3, 3)
    t = _from_fixed_list(table.column("t"), np.float64, 3)
    rows_by_camera: dict[str, list[int]] = {}
    for row, camera_id in enumerate(columns["camera_id"]):
        rows_by_camera.setdefault(camera_id, []).append(row)
    cameras = {}
    for camera_id, rows in rows_by_camera.items():
        where = f"cameras[{camera_id}]"
        frames = [columns["frame"][r] for r in rows]
        static = frames == [None]
        if not static and frames != list(range(len(rows))):
            raise SchemaError(where, "frame", "camera_ref", "a moving camera needs one row per frame, frames 0..N-1 in order; a static camera one row with frame null")
        for name in INTRINSIC_COLUMNS:
            if any(columns[name][r] != columns[name][rows[0]] for r in rows):
                raise SchemaError(where, name, "camera_intrinsics", "intrinsics must be the same in every row of a camera")
        first = rows[0]
        cameras[camera_id] = camera_from_fields(
            where,
            camera_id=camera_id,
            width=columns["width"][first],
            height=columns["height"][first],
            fx=columns["fx"][first],
            fy=columns["fy"][first],
            cx=columns["cx"][first],
            cy=columns["cy"][first],
            distortion=columns["distortion"][first],
            coefficients=tuple(columns["coefficients"][first]),
            R=R[rows],
            t=t[rows],
        )
    return cameras


def read_sequences(directory: Path, cameras: dict[str, Camera], store: ParquetStore) -> list[Sequence]:
    table = _read_table(directory / "sequences.parquet", SEQUENCES_SCHEMA, "sequences")
    sequences = []
    for row in table.to_pylist():
        camera_id = row["camera_id"]
        if camera_id is not None and camera_id not in cameras:
            raise SchemaError(f"sequences[{row['sequence_id']}]", "camera_id", "camera_ref", f"camera {camera_id!r} is not in the cameras table")
        sequence = Sequence(
            sequence_id=row["sequence_id"],
            subjects=row["subjects"],
            fps=row["fps"],
            action=row["action"],
            take=row["take"],
            camera=cameras.get(camera_id) if camera_id is not None else None,
            person_ids=row["person_ids"],
            attributes=dict(row["attributes"]),
            n_frames=row["n_frames"],
            keypoint_sources=row["keypoint_sources"],
        )
        sequences.append(sequence)
    store.index(sequences)
    for sequence in sequences:
        sequence._loader = store.loader(sequence)
    return sequences


class ParquetStore:
    """Lazy, row-group-indexed reads of the poses and keypoint tables of one dataset directory."""

    def __init__(self, directory: Path, n_joints: int, keypoint_layouts: dict[str, int]) -> None:
        self.directory = directory
        self.n_joints = n_joints
        self.keypoint_layouts = keypoint_layouts
        self._offsets: dict[tuple[str, str], int] = {}
        self._files: dict[str, pq.ParquetFile] = {}
        self._group_starts: dict[str, np.ndarray] = {}
        self._cache: dict[str, tuple[tuple[int, ...], pa.Table]] = {}

    def index(self, sequences: list[Sequence]) -> None:
        """Compute the first row of every sequence in every table."""
        totals = {"poses": 0, **{f"keypoints/{s}": 0 for s in self.keypoint_layouts}}
        for sequence in sequences:
            rows = sequence.n_persons * sequence.n_frames
            for table in ["poses"] + [f"keypoints/{s}" for s in sequence.keypoint_sources or ()]:
                if table not in totals:
                    raise SchemaError(
                        f"sequences[{sequence.sequence_id}]", "keypoint_sources", "keypoint_source",
                        f"source {table[10:]!r} is not declared in the metadata",
                    )
                self._offsets[(table, sequence.sequence_id)] = totals[table]
                totals[table] += rows
        for table, rows in totals.items():
            found = self._file(table).metadata.num_rows
            if found != rows:
                raise SchemaError(table, "*", "row_count", f"table has {found} rows; the sequences table implies {rows}")

    def _file(self, table: str) -> pq.ParquetFile:
        if table not in self._files:
            path = self.directory / f"{table}.parquet"
            if not path.is_file():
                raise SchemaError(table, "*", "required", f"table file {path.relative_to(self.directory)} is missing")
            try:
                handle = pq.ParquetFile(path)
            except (pa.ArrowException, OSError) as exc:
                raise SchemaError(table, "*", "readable", f"cannot read {path}: {exc}") from None
            schema = poses_schema(self.n_joints) if table == "poses" else keypoints_schema(self.keypoint_layouts[table[10:]])
            _require_columns(handle.schema_arrow.empty_table(), schema, table)
            sizes = [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)]
            self._files[table] = handle
            self._group_starts[table] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return self._files[table]

    def _rows(self, table: str, first: int, stop: int, columns: list[str]) -> pa.Table:
        handle = self._file(table)
        starts = self._group_starts[table]
        if stop <= first:
            return handle.schema_arrow.empty_table().select(columns)
        groups = tuple(range(int(np.searchsorted(starts, first, side="right")) - 1, int(np.searchsorted(starts, stop, side="left"))))
        cached = self._cache.get(table)
        if cached is not None and cached[0] == groups:
            data = cached[1]
        else:
            data = handle.read_row_groups(list(groups))
            self._cache[table] = (groups, data)
        offset = first - int(starts[groups[0]])
        return data.slice(offset, stop - first).select(columns)

    @staticmethod
    def _check_keys(table: str, data: pa.Table, sequence: Sequence, persons: list[int], start: int, stop: int) -> None:
        ids_match = data.num_rows == 0 or bool(pc.all(pc.equal(data.column("sequence_id"), sequence.sequence_id)).as_py())
        frames = np.tile(np.arange(start, stop, dtype=np.int64), len(persons))
        person_ids = np.repeat(np.asarray([sequence.person_ids[p] for p in persons], dtype=np.int64), stop - start)
        if not (
            ids_match
            and np.array_equal(data.column("frame").to_numpy(), frames)
            and np.array_equal(data.column("person_id").to_numpy(), person_ids)
        ):
            raise SchemaError(
                table, "sequence_id/frame", "row_order",
                f"rows of sequence {sequence.sequence_id!r} are not where the sequences table puts them "
                "(rows must be ordered by sequence, person, frame)",
            )

    def read_window(self, sequence: Sequence, person: int, start: int, stop: int, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Frames [start, stop) of person index ``person`` of ``sequence``."""
        out: dict[str, np.ndarray] = {}
        pose_fields = [f for f in fields if f in ("joints_world", "joints_cam", "timestamps")]
        F = sequence.n_frames
        if pose_fields:
            first = self._offsets[("poses", sequence.sequence_id)] + person * F + start
            data = self._rows("poses", first, first + stop - start, ["sequence_id", "person_id", "frame", "timestamp", "joints_world", "joints_cam"])
            self._check_keys("poses", data, sequence, [person], start, stop)
            for name in pose_fields:
                if name == "timestamps":
                    out[name] = data.column("timestamp").to_numpy().astype(TIME_DTYPE)
                elif name == "joints_cam" and sequence.camera is None:
                    out[name] = None
                else:
                    out[name] = _from_fixed_list(data.column(name), POSE_DTYPE, self.n_joints, 3)
        for name in fields:
            if not name.startswith("keypoints/"):
                continue
            source = name[10:]
            K = self.keypoint_layouts[source]
            first = self._offsets[(name, sequence.sequence_id)] + person * F + start
            data = self._rows(name, first, first + stop - start, ["sequence_id", "person_id", "frame", "xy", "confidence", "occluded"])
            self._check_keys(name, data, sequence, [person], start, stop)
            out[f"{name}/xy"] = _from_fixed_list(data.column("xy"), POSE_DTYPE, K, 2)
            out[f"{name}/confidence"] = _from_fixed_list(data.column("confidence"), POSE_DTYPE, K)
            out[f"{name}/occluded"] = _from_fixed_list(data.column("occluded"), np.bool_, K)
        return out

    def load_sequence(self, sequence: Sequence) -> dict[str, Any]:
        """All arrays of one sequence, shaped (P, F, ...)."""
        P, F = sequence.n_persons, sequence.n_frames
        first = self._offsets[("poses", sequence.sequence_id)]
        data = self._rows("poses", first, first + P * F, ["sequence_id", "person_id", "frame", "timestamp", "joints_world", "joints_cam"])
        self._check_keys("poses", data, sequence, list(range(P)), 0, F)
        timestamps = data.column("timestamp").to_numpy().astype(TIME_DTYPE).reshape(P, F)
        if P > 1 and not np.array_equal(timestamps, np.broadcast_to(timestamps[:1], timestamps.shape)):
            raise SchemaError(f"poses[{sequence.sequence_id}]", "timestamp", "timestamps", "every person of a sequence must have the same timestamps")
        arrays: dict[str, Any] = {
            "timestamps": timestamps[0].copy(),
            "joints_world": _from_fixed_list(data.column("joints_world"), POSE_DTYPE, self.n_joints, 3).reshape(P, F, self.n_joints, 3),
            "joints_cam": None,
            "keypoints": {},
        }
        if sequence.camera is not None:
            arrays["joints_cam"] = _from_fixed_list(data.column("joints_cam"), POSE_DTYPE, self.n_joints, 3).reshape(P, F, self.n_joints, 3)
        for source in sequence.keypoint_sources or ():
            arrays["keypoints"][source] = self._load_keypoints(sequence, source)
        return arrays

    def _load_keypoints(self, sequence: Sequence, source: str) -> Keypoints2D:
        P, F = sequence.n_persons, sequence.n_frames
        K = self.keypoint_layouts[source]
        table = f"keypoints/{source}"
        first = self._offsets[(table, sequence.sequence_id)]
        data = self._rows(table, first, first + P * F, ["sequence_id", "person_id", "frame", "xy", "confidence", "occluded"])
        self._check_keys(table, data, sequence, list(range(P)), 0, F)
        return Keypoints2D(
            xy=_from_fixed_list(data.column("xy"), POSE_DTYPE, K, 2).reshape(P, F, K, 2),
            confidence=_from_fixed_list(data.column("confidence"), POSE_DTYPE, K).reshape(P, F, K),
            occluded=_from_fixed_list(data.column("occluded"), np.bool_, K).reshape(P, F, K),
        )

    def loader(self, sequence: Sequence):
        return lambda: self.load_sequence(sequence)
