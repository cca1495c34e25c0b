"""Converters from raw recordings and dataset releases to the unified schema.

Each module of this package converts one source and exposes a click command ``command`` (plus
optional ``ALIASES``); it is listed in :data:`CONVERTER_MODULES` and so appears as
``posebench convert <name>``. Other packages add converters through the entry-point group
``posebench.converters`` (name = subcommand, value = ``module:command``).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points

import click

CONVERTER_MODULES: tuple[str, ...] = ("mocap", "h36m", "humaneva", "mmhuman")
ENTRY_POINT_GROUP = "posebench.converters"


@lru_cache(maxsize=1)
def converter_commands() -> dict[str, click.Command]:
    """Every registered converter command by name, aliases included."""
    commands: dict[str, click.Command] = {}
    for module_name in CONVERTER_MODULES:
        module = importlib.import_module(f"converters.{module_name}")
        commands[module_name] = module.command
        for alias in getattr(module, "ALIASES", ()):
            commands[alias] = module.command
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        commands.setdefault(entry_point.name, entry_point.load())
    return commands
