"""The embedded sample datasets that ship inside the package (see docs/sample.md).

``sample`` is the CMU mocap sample seen by virtual cameras (train and test splits);
``sample-mmhuman`` is the CMU two-person take filmed by two simulated hand-held phones with
OpenPose-style detections, converted by ``posebench convert mmhuman`` (test split only).
"""

from __future__ import annotations

from pathlib import Path

from posebench.errors import PosebenchError

ASSETS = Path(__file__).parent / "assets"
EMBEDDED = {"sample": ASSETS / "sample.parquet", "sample-mmhuman": ASSETS / "sample-mmhuman.parquet"}
SAMPLE_NAME = "sample"


def sample_dataset_path(name: str = SAMPLE_NAME) -> Path:
    """Path of an embedded dataset (a Parquet directory)."""
    path = EMBEDDED[name]
    if not (path / "meta" / "info.json").is_file():
        raise PosebenchError(f"the embedded dataset {name!r} is missing from this installation ({path}); reinstall posebench")
    return path


def resolve_dataset_path(path: str | Path) -> Path:
    """A user-given dataset path; an embedded dataset's name means that dataset unless such a path exists."""
    path = Path(path)
    if str(path) in EMBEDDED and not path.exists():
        return sample_dataset_path(str(path))
    return path
