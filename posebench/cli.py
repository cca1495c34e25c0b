"""The ``posebench`` command line.

Exit codes: 0 success; 1 a data or user error, reported in one line (the traceback only with
``--debug``); 2 a usage error (unknown option, missing argument).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from posebench import __version__
from posebench.errors import PosebenchError


class ReportedError(click.ClickException):
    """A data or user error shown as one line, exit code 1."""

    exit_code = 1


class PosebenchGroup(click.Group):
    """A click group that turns posebench's own errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (PosebenchError, OSError) as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            raise ReportedError(_one_line(exc)) from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename:
        text = f"{exc.filename}: {exc.strerror or text}"
    return " ".join(text.split())


@click.group(cls=PosebenchGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="posebench")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """posebench: 3D human pose datasets in one schema, lifting models, explicit evaluation.

    \b
    Typical use:
      posebench convert mocap take.c3d -o take.parquet
      posebench info take.parquet
      posebench validate take.parquet
    """
    ctx.ensure_object(dict)["debug"] = debug


def dataset_argument(function):
    """The DATASET argument: a path to a Parquet directory or an HDF5 file, or 'sample'."""
    return click.argument("dataset", metavar="DATASET", type=click.Path(path_type=Path))(function)


@cli.command()
@dataset_argument
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(dataset: Path, as_json: bool) -> None:
    """Summarise DATASET: sequences, subjects, actions, frames, cameras, 2D sources, splits.

    DATASET is a Parquet dataset directory, an HDF5 file, or 'sample' for the dataset shipped
    with posebench. Only metadata is read.
    """
    from posebench.dataset import load
    from posebench.sample import resolve_dataset_path
    from posebench.summary import format_summary, summarise

    path = resolve_dataset_path(dataset)
    summary = summarise(load(path), path)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@cli.command()
@dataset_argument
def validate(dataset: Path) -> None:
    """Check every schema rule on DATASET, arrays included; exit 1 on the first violation."""
    from tqdm import tqdm

    from posebench.dataset import load
    from posebench.dataset.model import transiently_loaded
    from posebench.sample import resolve_dataset_path

    path = resolve_dataset_path(dataset)
    loaded = load(path)
    for sequence in tqdm(loaded, desc="validating", unit="seq", disable=None, file=sys.stderr):
        with transiently_loaded(sequence):
            sequence.joints_world  # loading a sequence runs every array rule on it
    loaded.validate(arrays=False)
    click.echo(f"{path}: valid posebench dataset (schema {loaded.info['schema_version']}, {len(loaded)} sequences)")


class ConvertGroup(PosebenchGroup):
    """The ``convert`` group: its subcommands are the registered converters, loaded on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from converters import converter_commands

        return sorted(converter_commands())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from converters import converter_commands

        return converter_commands().get(name)


@cli.group(cls=ConvertGroup)
def convert() -> None:
    """Convert raw recordings or a dataset release into the unified schema.

    Each source has its own subcommand; see `posebench convert SOURCE --help`.
    """


@cli.command()
@click.option("--model", "model_name", required=True, metavar="NAME", help="Registered model (see `posebench models`).")
@click.option("--dataset", "dataset", required=True, type=click.Path(path_type=Path), help="Dataset path (Parquet directory or HDF5 file) or 'sample'.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output directory for checkpoints and history.")
@click.option("--epochs", type=int, default=60, show_default=True)
@click.option("--batch-size", type=int, default=1024, show_default=True, help="Training windows per batch.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Initial learning rate (Amsgrad).")
@click.option("--lr-decay", type=float, default=0.95, show_default=True, help="Learning-rate factor per epoch.")
@click.option("--source", default="gt", show_default=True, help="2D keypoint source.")
@click.option("--train-split", default="train", show_default=True)
@click.option("--val-split", default="test", show_default=True, help="Split for the per-epoch validation MPJPE.")
@click.option("--no-val", is_flag=True, help="Skip validation.")
@click.option("--occlusion-train", type=float, default=0.0, show_default=True, help="Synthetic occlusion ratio R for training and validation.")
@click.option("--occlusion-kernel", type=int, default=1, show_default=True, help="Occlusion kernel length K (frames).")
@click.option("--natural-occlusion", is_flag=True, help="Also mask keypoints the dataset flags as occluded.")
@click.option("--fill", type=click.Choice(["interpolate", "zero"]), default="interpolate", show_default=True,
              help="How masked joints reach models that take no mask.")
@click.option("--no-flip", is_flag=True, help="Disable horizontal-flip augmentation.")
@click.option("--chunk", type=int, default=1, show_default=True, help="Output frames per training window.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Model hyper-parameter, repeatable (e.g. channels=256, filter_widths=3,3,3).")
def train(model_name, dataset, out_dir, epochs, batch_size, lr, lr_decay, source, train_split, val_split, no_val,
          occlusion_train, occlusion_kernel, natural_occlusion, fill, no_flip, chunk, device, seed, resume, params) -> None:
    """Train a registered model on a dataset's train split; writes OUT/checkpoint.safetensors.

    Amsgrad with exponential learning-rate decay, VideoPose3D's batch-norm momentum schedule,
    flip augmentation, optional synthetic occlusion; validation MPJPE each epoch; resumable.
    """
    from posebench.dataset import load
    from posebench.sample import resolve_dataset_path
    from posebench.train import parse_model_params, train_model

    hyperparameters = parse_model_params(model_name, params)
    result = train_model(
        model_name, load(resolve_dataset_path(dataset)), out_dir=out_dir, epochs=epochs, batch_size=batch_size, lr=lr,
        lr_decay=lr_decay, params=hyperparameters, source=source, train_split=train_split, val_split=None if no_val else val_split,
        occlusion_train=occlusion_train, occlusion_kernel=occlusion_kernel, natural_occlusion=natural_occlusion, fill=fill,
        flip=not no_flip, chunk=chunk, device=device, seed=seed, resume=resume, progress=True,
    )
    score = "no validation" if result.val_mpjpe is None else f"validation MPJPE {result.val_mpjpe:.1f} mm"
    click.echo(f"{model_name}: {score} after {len(result.history)} epochs; checkpoint {result.checkpoint}")


@cli.command("models")
def models_command() -> None:
    """List the registered models: paper, receptive field, mask input, parameters (default hyper-parameters)."""
    from posebench.models import create_model, model_names

    rows = [("name", "receptive field", "mask", "parameters", "paper")]
    for name in model_names():
        model = create_model(name)
        rows.append((name, str(model.receptive_field), "yes" if model.uses_mask else "no", f"{model.parameter_count():,}", model.paper))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4])


def _comma_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise click.BadParameter("expected a comma-separated list")
    return items


def _float_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    items = _comma_list(ctx, param, value)
    if items is None:
        return None
    try:
        ratios = [float(item) for item in items]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected numbers such as 0,0.25,0.5") from None
    if not all(0.0 <= r <= 1.0 for r in ratios):
        raise click.BadParameter(f"{value!r}: occlusion ratios lie in [0, 1]")
    return ratios


@cli.command()
@click.option("--model", "models", required=True, callback=_comma_list, metavar="NAME[,NAME...]", help="Registered models (see `posebench models`).")
@click.option("--checkpoint", "checkpoints", multiple=True, type=click.Path(path_type=Path), help="Checkpoint per model, in order (default: the embedded checkpoints).")
@click.option("--dataset", type=click.Path(path_type=Path), help="Dataset path (default: the embedded sample).")
@click.option("--protocol", help="Preset name or protocol TOML file (default: the preset named like the dataset).")
@click.option("--occlusion", callback=_float_list, metavar="R[,R...]", help="Synthetic occlusion ratios (overrides the protocol).")
@click.option("--occlusion-kernel", type=click.IntRange(min=1), help="Occlusion kernel length K in frames (overrides the protocol).")
@click.option("--mr-buckets", type=click.IntRange(min=1), help="Number of movement-range buckets (overrides the protocol).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic occlusion masks.")
@click.option("--save-predictions", is_flag=True, help="Also write the predictions in the dataset schema.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/latest"), show_default=True, help="Run directory to write.")
def run(models, checkpoints, dataset, protocol, occlusion, occlusion_kernel, mr_buckets, device, seed, save_predictions, out) -> None:
    """Evaluate models under a protocol; write results, summary, plots and manifest to OUT.

    \b
    With no --dataset and no --checkpoint it evaluates the embedded checkpoints on the embedded
    sample, e.g.:
      posebench run --model tcn --occlusion 0.5
      posebench run --model tcn,gated-tcn --occlusion 0,0.25,0.5 --out runs/occlusion
    """
    import shlex

    from posebench.runner import run_benchmark

    output = run_benchmark(
        models, checkpoints=list(checkpoints) or None, dataset=dataset, protocol=protocol, occlusion=occlusion,
        occlusion_kernel=occlusion_kernel, mr_buckets=mr_buckets, device=device, seed=seed,
        save_predictions=save_predictions, out=out, command=shlex.join(["posebench", *sys.argv[1:]]),
    )
    manifest = output.manifest
    click.echo(
        f"{manifest['dataset']['name']} / protocol {manifest['protocol']['name']} ({manifest['protocol']['hash']}), "
        f"{manifest['dataset']['scored_frames']} scored frames, action-wise averages:"
    )
    click.echo(output.console)
    click.echo(f"wrote {output.directory}/ (results.csv, summary.md, plots/, manifest.json)")


@cli.group(cls=PosebenchGroup)
def leaderboard() -> None:
    """Publish run results as leaderboard CSVs and a static HTML page."""


@leaderboard.command("publish")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True, help="Leaderboard directory.")
def leaderboard_publish(runs, target) -> None:
    """Merge RUN_DIR... into one CSV per (dataset, protocol) and rewrite index.html.

    Rows whose dataset or protocol hashes differ are never merged.
    """
    from posebench.leaderboard import publish

    for path in publish(list(runs), target):
        click.echo(f"wrote {path}")
    click.echo(f"wrote {target / 'index.html'}")


class SimulateGroup(PosebenchGroup):
    """The ``simulate`` group: simulators of raw capture layouts, loaded on demand."""

    SIMULATORS = {"mmhuman": "converters.mmhuman_simulator"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.SIMULATORS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        import importlib

        if name not in self.SIMULATORS:
            return None
        return importlib.import_module(self.SIMULATORS[name]).command


@cli.group(cls=SimulateGroup)
def simulate() -> None:
    """Write raw capture layouts from mocap (test beds for the converters)."""


def main() -> None:
    """Entry point of the ``posebench`` console script."""
    cli.main(prog_name="posebench")


if __name__ == "__main__":
    main()
