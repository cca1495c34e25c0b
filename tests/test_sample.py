"""The embedded sample dataset ships with the package and is valid."""

from __future__ import annotations

import numpy as np
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


def test_multi_person_moving_camera_sample():
    dataset = posebench.load("sample-mmhuman")
    for sequence in dataset:
        sequence.joints_world
    dataset.validate()
    assert dataset.sequence_ids == ["18_01/phone1", "18_01/phone2"]
    assert sorted(dataset.keypoint_sources) == ["gt", "openpose"]
    for sequence in dataset:
        assert sequence.camera.is_moving and sequence.subjects == ["cmu18", "cmu19"]
        openpose = sequence.keypoints["openpose"]
        # detections are noisy but near the projection of the mocap joints
        error = np.nanmedian(np.linalg.norm(openpose.xy - sequence.keypoints["gt"].xy, axis=-1))
        assert 0.5 < error < 20.0


def test_every_registered_model_has_an_embedded_checkpoint():
    from posebench.checkpoints import load_checkpoint
    from posebench.models import model_names
    from posebench.runner import embedded_checkpoint

    for name in model_names():
        model, metadata = load_checkpoint(embedded_checkpoint(name))
        assert metadata["model"]["name"] == name and metadata["epochs"] == 30
        assert metadata["extra"]["options"]["train_split"] == "train"


def test_readme_main_job(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--model", "tcn", "--occlusion", "0.5", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "sample / protocol sample" in result.output and "tcn @ 0.5" in result.output
    assert (tmp_path / "run" / "summary.md").is_file()
