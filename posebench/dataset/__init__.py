"""The unified dataset schema: in-memory objects, the Parquet and HDF5 layouts, validation."""

from __future__ import annotations

from posebench.dataset.dataset import Dataset, SplitArrays
from posebench.dataset.info import SCHEMA_VERSION, make_provenance
from posebench.dataset.model import Keypoints2D, Sequence
from posebench.dataset.storage import FORMATS, detect_format, load

__all__ = [
    "Dataset",
    "FORMATS",
    "Keypoints2D",
    "SCHEMA_VERSION",
    "Sequence",
    "SplitArrays",
    "detect_format",
    "load",
    "make_provenance",
]
