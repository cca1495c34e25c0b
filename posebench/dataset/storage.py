"""Saving and loading datasets in either physical layout, with validation both ways."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from posebench.atomic import atomic_output
from posebench.dataset.dataset import Dataset
from posebench.dataset.model import ArrayLoader, Sequence
from posebench.dataset.hdf5_store import HDF5Store, is_hdf5, write_hdf5
from posebench.dataset.info import check_info
from posebench.dataset.parquet_store import INFO_PATH, ParquetStore, read_cameras, read_info, read_sequences, write_parquet
from posebench.dataset.validate import validate_dataset, validate_sequence_arrays
from posebench.errors import DatasetNotFoundError, PosebenchError, SchemaError
from posebench.sample import resolve_dataset_path
from posebench.skeletons import Skeleton, get_skeleton

FORMATS = ("parquet", "hdf5")


def save_dataset(dataset: Dataset, path: Path, format: str = "parquet", overwrite: bool = False) -> Path:
    """Validate ``dataset`` and write it atomically; returns the path written."""
    if format not in FORMATS:
        raise PosebenchError(f"unknown dataset format {format!r}; use one of {', '.join(FORMATS)}")
    validate_dataset(dataset)
    with atomic_output(path, overwrite=overwrite) as temporary:
        if format == "parquet":
            write_parquet(dataset, temporary)
        else:
            write_hdf5(dataset, temporary)
    return path


def detect_format(path: Path) -> str:
    """``"parquet"`` or ``"hdf5"``; raises :class:`DatasetNotFoundError` for anything else."""
    if path.is_dir():
        if (path / INFO_PATH).is_file():
            return "parquet"
        raise DatasetNotFoundError(
            f"{path} is a directory without {INFO_PATH}: not a posebench Parquet dataset; pass the directory holding "
            f"{INFO_PATH}, or convert the raw data first (`posebench convert`)"
        )
    if path.is_file():
        if is_hdf5(path):
            return "hdf5"
        raise DatasetNotFoundError(
            f"{path} is not an HDF5 file (no HDF5 signature): not a posebench dataset; pass a Parquet dataset directory "
            "or an .h5 file written by posebench"
        )
    raise DatasetNotFoundError(f"{path} does not exist")


def _skeleton_from_info(info: dict, where: str) -> Skeleton:
    value = info["skeleton"]
    try:
        if isinstance(value, str):
            return get_skeleton(value)
        return Skeleton.from_dict(value)
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(where, "skeleton", "skeleton", f"invalid skeleton definition: {exc}") from None


def load(path: str | Path, validate: bool = True) -> Dataset:
    """Open a dataset in either layout (detected from the path).

    ``path`` is a Parquet dataset directory, an HDF5 file, or ``"sample"`` for the embedded
    sample dataset. Metadata is read and checked at once; the arrays of each sequence are read when first used
    and then checked against every array rule (``validate=False`` skips the checks).
    """
    path = resolve_dataset_path(path)
    fmt = detect_format(path)
    if fmt == "parquet":
        info = read_info(path)
        where = "meta"
    else:
        store_h5 = HDF5Store(path)
        info = store_h5.read_info()
        where = "/meta"
    check_info(info, where)
    skeleton = _skeleton_from_info(info, where)
    layouts = {}
    for source, meta in info["keypoint_sources"].items():
        name = meta.get("skeleton", skeleton.name)
        try:
            layouts[source] = skeleton if name == skeleton.name else get_skeleton(name)
        except KeyError as exc:
            raise SchemaError(where, f"keypoint_sources.{source}", "keypoint_source", f"unknown keypoint layout: {exc.args[0]}") from None
    if fmt == "parquet":
        store = ParquetStore(path, skeleton.n_joints, {s: k.n_joints for s, k in layouts.items()})
        sequences = read_sequences(path, read_cameras(path), store)
    else:
        store = store_h5
        sequences = store.read_sequences(store.read_cameras())
    dataset = Dataset(
        info["name"],
        sequences,
        skeleton,
        keypoint_sources=info["keypoint_sources"],
        splits=info["splits"],
        provenance=info["provenance"],
        description=info.get("description", ""),
        store=store,
    )
    if validate:
        validate_dataset(dataset, arrays=False)
        for sequence in sequences:
            sequence._loader = _validating_loader(sequence, dataset, sequence._loader)
    return dataset


def _validating_loader(sequence: Sequence, dataset: Dataset, loader: ArrayLoader) -> ArrayLoader:
    """Wrap a lazy loader so that the arrays are checked before the sequence receives them."""

    def load_and_check() -> dict:
        arrays = loader()
        loaded = replace(
            sequence,
            _joints_world=arrays["joints_world"],
            _joints_cam=arrays["joints_cam"],
            _timestamps=arrays["timestamps"],
            _keypoints=arrays["keypoints"],
            _loader=None,
        )
        validate_sequence_arrays(loaded, dataset)
        return arrays

    return load_and_check
