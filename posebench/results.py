"""Long-form result tables: one row per model x occlusion x metric x stratum.

Every row carries what is needed to trust and compare it: the checkpoint hash, the dataset's name
and content hash, the protocol's name and hash, the occlusion ratio and kernel, and the seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from posebench.atomic import atomic_output
from posebench.errors import PosebenchError

RESULT_COLUMNS = (
    "model",
    "checkpoint_hash",
    "parameters",
    "dataset",
    "dataset_hash",
    "protocol",
    "protocol_hash",
    "occlusion_ratio",
    "occlusion_kernel",
    "seed",
    "metric",
    "unit",
    "stratum_kind",
    "stratum",
    "value",
    "frames",
)

STRATUM_KINDS = ("overall", "action", "subject", "subject_action", "occlusion", "mr_bucket", "joint")
METRIC_UNITS = {
    "mpjpe": "mm",
    "p_mpjpe": "mm",
    "n_mpjpe": "mm",
    "mpjpe_abs": "mm",
    "n_mpjpe_abs": "mm",
    "mpjve": "mm/frame",
    "accel_error": "mm/frame^2",
    "pck": "%",
    "auc": "%",
}
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
MANIFEST = "manifest.json"


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """A results table with the documented columns, in order, sorted for stable output."""
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    missing = frame[list(RESULT_COLUMNS)].isna().any()
    if missing.drop(labels=["checkpoint_hash"]).any():
        raise PosebenchError(f"result rows miss values in columns {list(missing[missing].index)}")
    return frame.sort_values(
        ["model", "occlusion_ratio", "metric", "stratum_kind", "stratum"], kind="stable", ignore_index=True
    )


def write_results(frame: pd.DataFrame, directory: Path) -> None:
    """Write results.csv and results.parquet into ``directory`` (each atomically)."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_output(directory / RESULTS_CSV, overwrite=True) as temporary:
        frame.to_csv(temporary, index=False, float_format="%.6f")
    with atomic_output(directory / RESULTS_PARQUET, overwrite=True) as temporary:
        frame.to_parquet(temporary, index=False)


def read_results(directory: Path) -> pd.DataFrame:
    """The results table of a run directory."""
    path = Path(directory) / RESULTS_CSV
    if not path.is_file():
        raise PosebenchError(f"{directory} holds no {RESULTS_CSV}: not a posebench run directory (run `posebench run --out DIR` first)")
    frame = pd.read_csv(path, dtype={"checkpoint_hash": str, "stratum": str})
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise PosebenchError(f"{path}: columns {missing} are missing; it was not written by posebench run")
    return frame


def read_manifest(directory: Path) -> dict:
    """The manifest of a run directory."""
    path = Path(directory) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PosebenchError(f"{directory} holds no {MANIFEST}: not a complete posebench run directory") from None
    except json.JSONDecodeError as exc:
        raise PosebenchError(f"{path} is not valid JSON: {exc}") from None
