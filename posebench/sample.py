"""The embedded sample dataset that ships inside the package (see docs/sample.md)."""

from __future__ import annotations

from pathlib import Path

from posebench.errors import PosebenchError

SAMPLE_NAME = "sample"
SAMPLE_DIRECTORY = Path(__file__).parent / "assets" / "sample.parquet"


def sample_dataset_path() -> Path:
    """Path of the embedded sample dataset (a Parquet directory)."""
    if not (SAMPLE_DIRECTORY / "meta" / "info.json").is_file():
        raise PosebenchError(
            f"the embedded sample is missing from this installation ({SAMPLE_DIRECTORY}); reinstall posebench"
        )
    return SAMPLE_DIRECTORY


def resolve_dataset_path(path: str | Path) -> Path:
    """A user-given dataset path; the name ``sample`` means the embedded sample unless such a path exists."""
    path = Path(path)
    if str(path) == SAMPLE_NAME and not path.exists():
        return sample_dataset_path()
    return path
