"""Models and converters registered by other packages through entry points."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import torch
from click.testing import CliRunner

import converters
import posebench.models as models
from posebench.cli import cli


def test_a_model_from_an_entry_point_is_registered(monkeypatch):
    models.model_names()  # the built-ins are loaded first
    point = EntryPoint(name="zero-lifter", value="plugin_example:ZeroLifter", group=models.ENTRY_POINT_GROUP)
    monkeypatch.setattr(models, "entry_points", lambda group: [point] if group == models.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(models, "_loaded", False)
    try:
        assert "zero-lifter" in models.model_names()
        model = models.create_model("zero-lifter")
        assert model.registry_name == "zero-lifter" and model.config == {"name": "zero-lifter", "n_joints": 17}
        out = model.predict(torch.zeros(1, 5, 17, 2))
        assert out.shape == (1, 5, 17, 3)
        result = CliRunner().invoke(cli, ["models"])
        assert "zero-lifter" in result.output and "plug-in example" in result.output
    finally:
        models._REGISTRY.pop("zero-lifter", None)


def test_a_converter_from_an_entry_point_appears_under_convert(monkeypatch):
    point = EntryPoint(name="example", value="plugin_example:convert_example", group=converters.ENTRY_POINT_GROUP)
    monkeypatch.setattr(converters, "entry_points", lambda group: [point] if group == converters.ENTRY_POINT_GROUP else [])
    converters.converter_commands.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["convert", "example"])
        assert result.exit_code == 0 and "example converter ran" in result.output
        assert "example" in CliRunner().invoke(cli, ["convert", "--help"]).output
    finally:
        converters.converter_commands.cache_clear()
