"""Human-readable outputs of a run: summary.md tables laid out as the papers do, and plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HEADLINE = "action_mean"


def _fmt(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.1f}"


def markdown_table(frame: pd.DataFrame, index_name: str) -> str:
    """A pandas frame (index = row labels) as a Markdown table with one decimal."""
    columns = [str(c) for c in frame.columns]
    lines = [f"| {index_name} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for label, row in frame.iterrows():
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in row.tolist()) + " |")
    return "\n".join(lines)


def _overall(results: pd.DataFrame) -> pd.DataFrame:
    return results[(results.stratum_kind == "overall") & (results.stratum == HEADLINE)]


def metrics_table(results: pd.DataFrame) -> pd.DataFrame:
    """Rows model @ occlusion, columns metrics (action-wise means)."""
    overall = _overall(results).assign(row=lambda f: f.model + " @ " + f.occlusion_ratio.map(lambda r: f"{r:g}"))
    return overall.pivot_table(index="row", columns="metric", values="value", sort=False)


def occlusion_table(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows models, columns occlusion ratios (the MMHuman paper's Table III layout)."""
    rows = _overall(results)[lambda f: f.metric == metric]
    table = rows.pivot_table(index="model", columns="occlusion_ratio", values="value")
    table.columns = [f"{c:g}" for c in table.columns]
    return table


def action_table(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows model @ occlusion, columns actions, plus the action-wise average (VideoPose3D's layout)."""
    rows = results[(results.metric == metric) & (results.stratum_kind == "action")]
    rows = rows.assign(row=rows.model + " @ " + rows.occlusion_ratio.map(lambda r: f"{r:g}"))
    table = rows.pivot_table(index="row", columns="stratum", values="value", sort=False)
    average = _overall(results)[lambda f: f.metric == metric]
    table["Avg"] = average.assign(row=average.model + " @ " + average.occlusion_ratio.map(lambda r: f"{r:g}")).set_index("row").value
    return table


def bucket_table(results: pd.DataFrame, metric: str, ratio: float) -> pd.DataFrame:
    """Rows models, columns movement-range buckets from smallest to largest motion (RIE Fig. 7)."""
    rows = results[(results.metric == metric) & (results.stratum_kind == "mr_bucket") & (results.occlusion_ratio == ratio)]
    return rows.pivot_table(index="model", columns="stratum", values="value")


def joint_table(results: pd.DataFrame, metric: str, ratio: float, joint_order: list[str]) -> pd.DataFrame:
    """Rows models, columns joints in skeleton order."""
    rows = results[(results.metric == metric) & (results.stratum_kind == "joint") & (results.occlusion_ratio == ratio)]
    table = rows.pivot_table(index="model", columns="stratum", values="value")
    return table[[j for j in joint_order if j in table.columns]]


def summary_markdown(results: pd.DataFrame, manifest: dict, joint_order: list[str]) -> str:
    """The run's summary.md."""
    metrics = manifest["protocol_metrics"]
    headline = metrics[0]
    ratios = sorted(results.occlusion_ratio.unique())
    base = 0.0 if 0.0 in ratios else ratios[0]
    edges = manifest.get("mr_bucket_edges", [])
    parts = [
        f"# posebench run on {manifest['dataset']['name']} — protocol {manifest['protocol']['name']}",
        "",
        f"Dataset hash `{manifest['dataset']['hash'][:16]}`, protocol hash `{manifest['protocol']['hash']}`, "
        f"seed {manifest['seed']}, occlusion kernel {manifest['occlusion_kernel']}, device {manifest['device']}. "
        f"Errors in mm (MPJVE mm/frame, PCK and AUC in %); `{HEADLINE}` = unweighted mean over actions of frame-weighted means.",
        "",
        "## Every metric (action-wise average)",
        "",
        markdown_table(metrics_table(results)[[m for m in metrics if m in metrics_table(results).columns]], "model @ occlusion"),
        "",
        f"## {headline} by occlusion ratio",
        "",
        markdown_table(occlusion_table(results, headline), "model"),
        "",
        f"## {headline} by action",
        "",
        markdown_table(action_table(results, headline), "model @ occlusion"),
        "",
    ]
    buckets = bucket_table(results, headline, base)
    if not buckets.empty:
        parts += [
            f"## {headline} by movement-range bucket (occlusion {base:g})",
            "",
            "Bucket 00 holds the frames with the least 2D motion; bucket edges (normalised screen units): "
            + ", ".join(f"{e:.4g}" for e in edges),
            "",
            markdown_table(buckets, "model"),
            "",
        ]
    joints = joint_table(results, headline, base, joint_order)
    if not joints.empty:
        parts += [f"## {headline} per joint (occlusion {base:g})", "", markdown_table(joints, "model"), ""]
    return "\n".join(parts)


def write_plots(results: pd.DataFrame, manifest: dict, joint_order: list[str], directory: Path) -> list[Path]:
    """plots/occlusion.png, plots/movement_range.png, plots/joints.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    headline = manifest["protocol_metrics"][0]
    unit = results[results.metric == headline].unit.iloc[0]
    ratios = sorted(results.occlusion_ratio.unique())
    base = 0.0 if 0.0 in ratios else ratios[0]
    written = []

    table = occlusion_table(results, headline)
    figure, axis = plt.subplots(figsize=(7.5, 4))
    for model, row in table.iterrows():
        axis.plot([float(c) for c in table.columns], row.values, marker="o", label=model)
    axis.set(xlabel="synthetic occlusion ratio", ylabel=f"{headline} ({unit})", title=f"{headline} vs occlusion")
    axis.grid(alpha=0.3)
    axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    written.append(_save(figure, directory / "occlusion.png"))

    buckets = bucket_table(results, headline, base)
    if not buckets.empty:
        figure, axis = plt.subplots(figsize=(8.5, 4))
        for model, row in buckets.iterrows():
            axis.plot(range(len(row)), row.values, marker="o", label=model)
        axis.set(xlabel="movement-range bucket (small → large motion)", ylabel=f"{headline} ({unit})",
                 title=f"{headline} per movement-range bucket (occlusion {base:g})")
        axis.set_xticks(range(len(buckets.columns)), list(buckets.columns))
        axis.grid(alpha=0.3)
        axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
        written.append(_save(figure, directory / "movement_range.png"))

    joints = joint_table(results, headline, base, joint_order)
    if not joints.empty:
        figure, axis = plt.subplots(figsize=(11.5, 4))
        width = 0.8 / max(len(joints), 1)
        for i, (model, row) in enumerate(joints.iterrows()):
            axis.bar([k + i * width for k in range(len(row))], row.values, width=width, label=model)
        axis.set_xticks([k + 0.4 - width / 2 for k in range(len(joints.columns))], list(joints.columns), rotation=45, ha="right")
        axis.set(ylabel=f"{headline} ({unit})", title=f"{headline} per joint (occlusion {base:g})")
        axis.grid(alpha=0.3, axis="y")
        axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
        written.append(_save(figure, directory / "joints.png"))
    return written


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def console_table(results: pd.DataFrame, manifest: dict) -> str:
    """The short table printed at the end of ``posebench run``."""
    metrics = [m for m in manifest["protocol_metrics"]]
    table = metrics_table(results)
    table = table[[m for m in metrics if m in table.columns]]
    width = max([len(str(i)) for i in table.index] + [len("model @ occlusion")])
    header = f"{'model @ occlusion':<{width}}  " + "  ".join(f"{m:>10}" for m in table.columns)
    lines = [header, "-" * len(header)]
    for label, row in table.iterrows():
        lines.append(f"{label:<{width}}  " + "  ".join(f"{v:>10.1f}" for v in row.tolist()))
    return "\n".join(lines)
