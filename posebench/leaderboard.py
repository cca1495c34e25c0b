"""Leaderboards: merge run directories into one CSV per (dataset, protocol) and a static page.

Rows of different dataset or protocol hashes are never merged: a leaderboard compares numbers
that were produced under exactly the same data and evaluation choices.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from posebench import __version__
from posebench.atomic import atomic_output
from posebench.errors import PosebenchError
from posebench.results import read_manifest, read_results

OCCLUSION_COLUMNS = (0.0, 0.25, 0.5)
ENTRY_KEY = ["model", "checkpoint_hash", "seed"]


def _headline(frame: pd.DataFrame, metric: str, ratio: float) -> float | None:
    rows = frame[
        (frame.metric == metric) & (frame.occlusion_ratio == ratio) & (frame.stratum_kind == "overall") & (frame.stratum == "action_mean")
    ]
    return float(rows.value.iloc[0]) if len(rows) else None


def entries_from_run(frame: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """One leaderboard entry per model of a run."""
    metrics = list(dict.fromkeys(manifest.get("protocol_metrics") or frame.metric.unique()))
    headline = metrics[0]
    entries = []
    for (model, checkpoint, seed), group in frame.groupby(["model", "checkpoint_hash", "seed"], sort=True, dropna=False):
        base_ratio = 0.0 if (group.occlusion_ratio == 0.0).any() else float(group.occlusion_ratio.min())
        entry = {
            "model": model,
            "checkpoint_hash": checkpoint,
            "parameters": int(group.parameters.iloc[0]),
            "seed": int(seed),
            "headline_metric": headline,
        }
        for metric in metrics:
            entry[metric] = _headline(group, metric, base_ratio)
        for ratio in OCCLUSION_COLUMNS:
            entry[f"{headline}@occ{ratio:g}"] = _headline(group, headline, ratio)
        buckets = group[(group.metric == headline) & (group.occlusion_ratio == base_ratio) & (group.stratum_kind == "mr_bucket")]
        entry["mr_best"] = float(buckets.value.min()) if len(buckets) else None
        entry["mr_worst"] = float(buckets.value.max()) if len(buckets) else None
        entry["date"] = manifest.get("finished", datetime.now(timezone.utc).isoformat(timespec="seconds"))[:10]
        entry["posebench_version"] = manifest.get("posebench_version", __version__)
        entry["dataset_hash"] = group.dataset_hash.iloc[0]
        entry["protocol_hash"] = group.protocol_hash.iloc[0]
        entries.append(entry)
    return pd.DataFrame(entries)


def leaderboard_path(directory: Path, dataset: str, protocol: str) -> Path:
    """``<dataset>__<protocol>.csv`` with unsafe characters replaced."""
    safe = lambda text: re.sub(r"[^A-Za-z0-9._-]+", "_", text)  # noqa: E731
    return directory / f"{safe(dataset)}__{safe(protocol)}.csv"


def _check_single(frame: pd.DataFrame, column: str, what: str, where: str) -> str:
    values = sorted(frame[column].astype(str).unique())
    if len(values) != 1:
        raise PosebenchError(f"{where}: rows have different {what} hashes {values}; refusing to merge them into one leaderboard")
    return values[0]


def publish(run_dirs: list[Path], to: Path = Path("leaderboards")) -> list[Path]:
    """Merge runs into leaderboard CSVs (one per dataset x protocol) and rewrite ``index.html``."""
    if not run_dirs:
        raise PosebenchError("no run directories given")
    grouped: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for run in run_dirs:
        frame, manifest = read_results(run), read_manifest(run)
        for (dataset, protocol), part in frame.groupby(["dataset", "protocol"], sort=True):
            _check_single(part, "dataset_hash", "dataset", f"{run} ({dataset}, {protocol})")
            _check_single(part, "protocol_hash", "protocol", f"{run} ({dataset}, {protocol})")
            grouped.setdefault((dataset, protocol), []).append(entries_from_run(part, manifest))
    to.mkdir(parents=True, exist_ok=True)
    written = []
    for (dataset, protocol), parts in grouped.items():
        path = leaderboard_path(to, dataset, protocol)
        new = pd.concat(parts, ignore_index=True)
        if path.is_file():
            old = pd.read_csv(path, dtype={"checkpoint_hash": str, "dataset_hash": str, "protocol_hash": str})
            new = pd.concat([old, new], ignore_index=True)
        where = f"{path.name}"
        _check_single(new, "dataset_hash", "dataset", where)
        _check_single(new, "protocol_hash", "protocol", where)
        new = new.drop_duplicates(subset=ENTRY_KEY, keep="last")
        headline = new.headline_metric.iloc[0]
        new = new.sort_values([headline, "model"], kind="stable", ignore_index=True)
        with atomic_output(path, overwrite=True) as temporary:
            new.to_csv(temporary, index=False, float_format="%.2f")
        written.append(path)
    write_index(to)
    return written


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>posebench leaderboards</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2rem; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; white-space: nowrap; }}
.board {{ overflow-x: auto; }}
th {{ background: #f0f0f0; cursor: pointer; user-select: none; }}
td:first-child, th:first-child {{ text-align: left; }}
caption {{ text-align: left; font-weight: bold; margin-bottom: 0.4rem; }}
</style></head><body>
<h1>posebench leaderboards</h1>
<p>One table per (dataset, protocol). Errors in mm unless the metric says otherwise; lower is better
except pck and auc. Click a column header to sort. Generated by posebench {version}.</p>
{tables}
<script>
document.querySelectorAll("th").forEach(function (th) {{
  th.addEventListener("click", function () {{
    var table = th.closest("table"), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.dataset.order !== "asc";
    th.dataset.order = ascending ? "asc" : "desc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {{
      var x = a.cells[index].textContent, y = b.cells[index].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? cmp : -cmp;
    }});
    rows.forEach(function (row) {{ body.appendChild(row); }});
  }});
}});
</script>
</body></html>
"""


def _table_html(path: Path) -> str:
    frame = pd.read_csv(path, dtype=str).fillna("")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False))
    caption = html.escape(path.stem.replace("__", " / "))
    return f'<div class="board"><table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def write_index(directory: Path) -> Path:
    """Write ``index.html`` with every leaderboard CSV of ``directory`` as a sortable table."""
    tables = "\n".join(_table_html(p) for p in sorted(directory.glob("*.csv")))
    path = directory / "index.html"
    with atomic_output(path, overwrite=True) as temporary:
        temporary.write_text(_PAGE.format(version=html.escape(__version__), tables=tables or "<p>No leaderboards yet.</p>"), encoding="utf-8")
    return path
