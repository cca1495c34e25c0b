"""Command-line options every converter shares: where and how the dataset is written."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Callable

import click

from posebench.dataset import FORMATS, Dataset


def dataset_output_options(command: Callable) -> Callable:
    """Add ``-o/--output``, ``--format``, ``--name`` and ``--overwrite`` (parameters output, fmt, name, overwrite)."""
    options = [
        click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output dataset path."),
        click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="parquet", show_default=True, help="Output layout."),
        click.option("--name", help="Dataset name (default: the output file stem)."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def command_line() -> str:
    """The command line as the user typed it, for provenance records."""
    return shlex.join(["posebench", *sys.argv[1:]])


def save_and_report(dataset: Dataset, output: Path, fmt: str, overwrite: bool) -> None:
    """Write the converted dataset and print what was written and the provenance notes."""
    dataset.save(output, format=fmt, overwrite=overwrite)
    click.echo(f"wrote {output}: {len(dataset)} sequences, 2D sources {', '.join(dataset.keypoint_sources) or 'none'}")
    for note in dataset.provenance["notes"]:
        click.echo(f"  note: {note}")
