"""The embedded sample dataset ships with the package and is valid."""

from __future__ import annotations

from click.testing import CliRunner

import posebench
from posebench.cli import cli
from posebench.sample import sample_dataset_path


def test_sample_loads_by_name_and_validates():
    dataset = posebench.load("sample")
    for sequence in dataset:
        sequence.joints_world
    dataset.validate()
    assert dataset.name == "sample"
    assert len(dataset) == 65
    assert sorted(dataset.splits) == ["test", "train"]
    test_takes = {dataset[i].take for i in dataset.splits["test"]}
    assert test_takes == {"127_30", "18_01", "20_07"}
    assert dataset["18_01/handheld"].camera.is_moving
    assert dataset["18_01/ring_0"].subjects == ["cmu18", "cmu19"]
    assert dataset.provenance["inputs"][0]["file"] == "07_06.bvh"


def test_readme_quickstart_command_runs():
    result = CliRunner().invoke(cli, ["info", "sample"])
    assert result.exit_code == 0, result.output
    assert str(sample_dataset_path()) in result.output
    assert "train: 50 sequences / 6160 frames, test: 15 sequences / 1970 frames" in result.output
