"""Command-line options every converter shares: where and how the dataset is written."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from posebench.dataset import FORMATS


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
