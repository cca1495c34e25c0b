"""The :class:`Dataset` object: sequences plus dataset-level metadata, in memory or on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol

import numpy as np

from posebench.dataset.info import CONVENTIONS, SCHEMA_VERSION, UNITS
from posebench.dataset.model import POSE_DTYPE, Keypoints2D, Sequence, transiently_loaded
from posebench.errors import PosebenchError
from posebench.skeletons import Skeleton, get_skeleton

WINDOW_FIELDS = ("joints_world", "joints_cam", "timestamps")


class DatasetStore(Protocol):
    """What a physical layout offers for lazy reads."""

    def read_window(self, sequence: Sequence, person: int, start: int, stop: int, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
        ...


@dataclass
class SplitArrays:
    """A selection of a dataset as dense arrays, one row per (track, frame).

    A track is one person of one sequence; ``track_starts[i]:track_starts[i + 1]`` are the rows of
    track ``i``, so temporal windows never cross tracks.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    occluded: np.ndarray
    joints_cam: np.ndarray
    joints_world: np.ndarray
    frames: np.ndarray
    track_starts: np.ndarray
    sequence_ids: list[str]
    person_ids: list[int]
    subjects: list[str]
    actions: list[str]
    camera_ids: list[str | None]

    @property
    def n_tracks(self) -> int:
        return len(self.sequence_ids)

    def track(self, index: int) -> slice:
        """Row slice of track ``index``."""
        return slice(int(self.track_starts[index]), int(self.track_starts[index + 1]))


class Dataset:
    """A dataset in the unified schema: named sequences, one skeleton, splits and provenance.

    Build one in memory from :class:`Sequence` objects (converters do this), or get one from
    :func:`posebench.load`, which reads metadata eagerly and arrays lazily.
    """

    def __init__(
        self,
        name: str,
        sequences: Iterable[Sequence],
        skeleton: str | Skeleton = "h36m17",
        *,
        keypoint_sources: Mapping[str, Mapping[str, str]] | None = None,
        splits: Mapping[str, Iterable[str]] | None = None,
        provenance: Mapping[str, Any] | None = None,
        description: str = "",
        store: DatasetStore | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.skeleton = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
        self._sequences = list(sequences)
        self._index = {s.sequence_id: i for i, s in enumerate(self._sequences)}
        if keypoint_sources is None:
            names = sorted({src for s in self._sequences for src in (s.keypoint_sources or ())})
            keypoint_sources = {src: {"skeleton": self.skeleton.name} for src in names}
        self.keypoint_sources = {src: dict(meta) for src, meta in keypoint_sources.items()}
        self.splits = {split: list(ids) for split, ids in (splits or {}).items()}
        self.provenance = dict(provenance or {})
        self._store = store

    def __iter__(self) -> Iterator[Sequence]:
        return iter(self._sequences)

    def __len__(self) -> int:
        return len(self._sequences)

    def __getitem__(self, key: str | int) -> Sequence:
        if isinstance(key, int):
            return self._sequences[key]
        try:
            return self._sequences[self._index[key]]
        except KeyError:
            raise KeyError(f"no sequence {key!r} in dataset {self.name!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, sequences={len(self)}, skeleton={self.skeleton.name!r}, "
            f"keypoints={sorted(self.keypoint_sources)}, splits={sorted(self.splits)})"
        )

    @property
    def sequence_ids(self) -> list[str]:
        return [s.sequence_id for s in self._sequences]

    def keypoint_layout(self, source: str) -> Skeleton:
        """Skeleton (joint layout) of a 2D keypoint source."""
        name = self.keypoint_sources[source].get("skeleton", self.skeleton.name)
        return self.skeleton if name == self.skeleton.name else get_skeleton(name)

    def split_of(self, sequence_id: str) -> str | None:
        """Name of the split holding a sequence, or None."""
        for split, members in self.splits.items():
            if sequence_id in members:
                return split
        return None

    @property
    def info(self) -> dict[str, Any]:
        """The metadata written as ``meta/info.json`` (Parquet) or the ``/meta`` attribute (HDF5)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "description": self.description,
            "skeleton": self.skeleton.to_dict(),
            "units": dict(UNITS),
            "conventions": dict(CONVENTIONS),
            "keypoint_sources": self.keypoint_sources,
            "splits": self.splits,
            "provenance": self.provenance,
            "stats": {
                "sequences": len(self._sequences),
                "frames": int(sum(s.n_frames for s in self._sequences)),
                "person_frames": int(sum(s.n_frames * s.n_persons for s in self._sequences)),
                "subjects": sorted({subject for s in self._sequences for subject in s.subjects}),
                "actions": sorted({s.action for s in self._sequences}),
            },
        }

    def select(
        self,
        split: str | Iterable[str] | None = None,
        subject: str | Iterable[str] | None = None,
        action: str | Iterable[str] | None = None,
        sequence_ids: Iterable[str] | None = None,
    ) -> Dataset:
        """Sequences matching every given filter (a value or a collection of values).

        ``subject`` keeps a sequence when any of its persons is one of the subjects. The result
        shares the sequences (and their lazily loaded arrays) with this dataset.
        """
        splits = _as_set(split)
        subjects = _as_set(subject)
        actions = _as_set(action)
        ids = set(sequence_ids) if sequence_ids is not None else None
        if splits is not None:
            unknown = splits - set(self.splits)
            if unknown:
                raise PosebenchError(f"dataset {self.name!r} has no split {sorted(unknown)}; its splits are {sorted(self.splits)}")
        kept = [
            s for s in self._sequences
            if (splits is None or self.split_of(s.sequence_id) in splits)
            and (subjects is None or subjects.intersection(s.subjects))
            and (actions is None or s.action in actions)
            and (ids is None or s.sequence_id in ids)
        ]
        kept_ids = {s.sequence_id for s in kept}
        return Dataset(
            self.name,
            kept,
            self.skeleton,
            keypoint_sources=self.keypoint_sources,
            splits={name: [i for i in members if i in kept_ids] for name, members in self.splits.items()},
            provenance=self.provenance,
            description=self.description,
            store=self._store,
        )

    def read_window(
        self,
        sequence_id: str,
        person: int = 0,
        start: int = 0,
        stop: int | None = None,
        fields: Iterable[str] = WINDOW_FIELDS,
    ) -> dict[str, np.ndarray]:
        """Frames ``[start, stop)`` of one person of one sequence, without loading the rest.

        ``person`` is the index of the person within the sequence. ``fields`` are among
        ``joints_world``, ``joints_cam``, ``timestamps`` and ``keypoints/<source>`` (which gives
        ``keypoints/<source>/xy``, ``/confidence`` and ``/occluded``).
        """
        sequence = self[sequence_id]
        stop = sequence.n_frames if stop is None else stop
        if not (0 <= start <= stop <= sequence.n_frames):
            raise PosebenchError(
                f"window [{start}, {stop}) is outside sequence {sequence_id!r} of {sequence.n_frames} frames"
            )
        if not 0 <= person < sequence.n_persons:
            raise PosebenchError(f"sequence {sequence_id!r} has {sequence.n_persons} persons; person index {person} is out of range")
        fields = tuple(fields)
        for name in fields:
            if name not in WINDOW_FIELDS and not (name.startswith("keypoints/") and name[10:] in (sequence.keypoint_sources or ())):
                raise PosebenchError(
                    f"unknown field {name!r} for sequence {sequence_id!r}; use {list(WINDOW_FIELDS)} or "
                    f"{['keypoints/' + s for s in sequence.keypoint_sources or ()]}"
                )
        if self._store is not None and not sequence.is_loaded:
            return self._store.read_window(sequence, person, start, stop, fields)
        return window_from_memory(sequence, person, start, stop, fields)

    def arrays(self, split: str | None = None, source: str = "gt") -> SplitArrays:
        """A split (or the whole dataset) as dense arrays for training and evaluation.

        Only sequences that have the 2D source ``source`` and a camera are included. The arrays are
        allocated once and filled sequence by sequence; a stored sequence is read for the copy and
        not kept, so the peak is the dense arrays plus one sequence.
        """
        selection = self.select(split=split) if split is not None else self
        chosen = [s for s in selection if source in (s.keypoint_sources or ()) and s.camera is not None]
        if not chosen:
            raise PosebenchError(
                f"dataset {self.name!r}{'' if split is None else f' split {split!r}'} has no sequence with a camera "
                f"and 2D source {source!r}; sources: {sorted(self.keypoint_sources)}"
            )
        lengths = [s.n_frames for s in chosen for _ in range(s.n_persons)]
        rows, J, K = sum(lengths), self.skeleton.n_joints, self.keypoint_layout(source).n_joints
        arrays = {
            "keypoints": np.empty((rows, K, 2), POSE_DTYPE), "confidence": np.empty((rows, K), POSE_DTYPE),
            "occluded": np.empty((rows, K), bool), "joints_cam": np.empty((rows, J, 3), POSE_DTYPE),
            "joints_world": np.empty((rows, J, 3), POSE_DTYPE), "frames": np.empty(rows, np.int64),
        }
        meta: dict[str, list] = {k: [] for k in ("sequence_ids", "person_ids", "subjects", "actions", "camera_ids")}
        row = 0
        for sequence in chosen:
            with transiently_loaded(sequence):
                keypoints = sequence.keypoints[source]
                for p in range(sequence.n_persons):
                    track = slice(row, row + sequence.n_frames)
                    arrays["keypoints"][track] = keypoints.xy[p]
                    arrays["confidence"][track] = keypoints.confidence[p]
                    arrays["occluded"][track] = keypoints.occluded[p]
                    arrays["joints_cam"][track] = sequence.joints_cam[p]
                    arrays["joints_world"][track] = sequence.joints_world[p]
                    arrays["frames"][track] = np.arange(sequence.n_frames)
                    meta["sequence_ids"].append(sequence.sequence_id)
                    meta["person_ids"].append(sequence.person_ids[p])
                    meta["subjects"].append(sequence.subjects[p])
                    meta["actions"].append(sequence.action)
                    meta["camera_ids"].append(sequence.camera.camera_id)
                    row = track.stop
        return SplitArrays(track_starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), **arrays, **meta)

    def validate(self, arrays: bool = True) -> None:
        """Check every schema rule; raises :class:`~posebench.errors.SchemaError` on the first violation."""
        from posebench.dataset.validate import validate_dataset

        validate_dataset(self, arrays=arrays)

    def save(self, path: str | Path, format: str = "parquet", overwrite: bool = False) -> Path:
        """Validate and write the dataset atomically as a Parquet directory or an HDF5 file."""
        from posebench.dataset.storage import save_dataset

        return save_dataset(self, Path(path), format=format, overwrite=overwrite)


def window_from_memory(sequence: Sequence, person: int, start: int, stop: int, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Slice a window out of a sequence whose arrays are in memory."""
    out: dict[str, np.ndarray] = {}
    for name in fields:
        if name == "timestamps":
            out[name] = sequence.timestamps[start:stop].copy()
        elif name.startswith("keypoints/"):
            keypoints: Keypoints2D = sequence.keypoints[name[10:]]
            out[f"{name}/xy"] = keypoints.xy[person, start:stop].copy()
            out[f"{name}/confidence"] = keypoints.confidence[person, start:stop].copy()
            out[f"{name}/occluded"] = keypoints.occluded[person, start:stop].copy()
        else:
            array = getattr(sequence, name)
            out[name] = None if array is None else array[person, start:stop].copy()
    return out


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {value}
    return set(value)
