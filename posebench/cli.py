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
    from posebench.sample import resolve_dataset_path

    path = resolve_dataset_path(dataset)
    loaded = load(path)
    for sequence in tqdm(loaded, desc="validating", unit="seq", disable=None, file=sys.stderr):
        sequence.joints_world  # loading a sequence runs every array rule on it
    loaded.validate()
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


def main() -> None:
    """Entry point of the ``posebench`` console script."""
    cli.main(prog_name="posebench")
