"""Training on real mocap (CMU BVH through virtual cameras), determinism, resume, stages and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import posebench.models as models
import posebench.train as train_module
from converters.mocap import convert_mocap
from posebench.checkpoints import load_checkpoint
from posebench.cli import cli
from posebench.data import prepare_split
from posebench.errors import ModelError, PosebenchError
from posebench.models import TrainingStage, create_model, model_names
from posebench.models.tcn import TemporalConvNet
from posebench.train import parse_model_params, stage_epochs, train_model

BVH = Path(__file__).parent / "data" / "bvh"
SMALL_TCN = {"channels": 64, "filter_widths": [3, 3], "dropout": 0.1}


@pytest.fixture(scope="module")
def mocap():
    """Two subjects of CMU take 18/19 01 (walk, shake hands), 304 frames each, seen by 4 virtual
    cameras; subject 18 trains, subject 19 validates."""
    return convert_mocap([BVH / "18_01.bvh", BVH / "19_01.bvh"], cameras="ring4", splits={"train": ["18_01"], "test": ["19_01"]})


@pytest.fixture(scope="module")
def mocap_path(mocap, tmp_path_factory):
    return mocap.save(tmp_path_factory.mktemp("data") / "mocap.parquet")


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_beats_the_mean_pose_by_far(mocap, tmp_path):
    train, test = prepare_split(mocap, "train"), prepare_split(mocap, "test")
    mean_pose = train.targets.mean(axis=0)
    baseline = float(np.linalg.norm(test.targets - mean_pose, axis=-1).mean())
    result = train_model("tcn", mocap, out_dir=tmp_path, epochs=12, batch_size=32, lr=2e-3, params=SMALL_TCN, device="cpu")
    assert result.val_mpjpe < 0.7 * baseline
    assert result.history[-1].val_mpjpe < 0.6 * result.history[0].val_mpjpe
    assert [r.epoch for r in result.history] == list(range(1, 13))
    assert result.history[0].bn_momentum == 0.1 and result.history[-1].bn_momentum == pytest.approx(0.001)
    assert result.history[3].lr == pytest.approx(2e-3 * 0.95**3)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["val_mpjpe"] for h in history] == [r.val_mpjpe for r in result.history]
    loaded, metadata = load_checkpoint(result.checkpoint)
    assert metadata["epochs"] == 12 and metadata["seed"] == 0 and metadata["model"] == result.model.config
    assert metadata["extra"]["val_mpjpe"] == result.val_mpjpe
    keypoints = torch.from_numpy(test.keypoints[:100][None])
    torch.testing.assert_close(loaded.predict(keypoints), result.model.predict(keypoints))


def test_same_seed_gives_identical_weights(mocap, tmp_path):
    params = {"channels": 16, "filter_widths": [3, 3]}
    runs = [train_model("tcn", mocap, out_dir=tmp_path / name, epochs=1, batch_size=128, params=params, seed=seed, device="cpu")
            for name, seed in (("a", 4), ("b", 4), ("c", 5))]
    assert _same_weights(_weights(runs[0].model), _weights(runs[1].model))
    assert not _same_weights(_weights(runs[0].model), _weights(runs[2].model))


def test_resume_continues_exactly_like_an_uninterrupted_run(mocap, tmp_path, monkeypatch):
    options = {"epochs": 3, "batch_size": 128, "params": {"channels": 16, "filter_widths": [3, 3]}, "seed": 2, "device": "cpu",
               "occlusion_train": 0.2, "occlusion_kernel": 3}
    whole = train_model("gated-tcn", mocap, out_dir=tmp_path / "whole", **options)

    write_history = train_module._write_history

    def crash_after_second_epoch(path, history):
        write_history(path, history)
        if len(history) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_write_history", crash_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_model("gated-tcn", mocap, out_dir=tmp_path / "split", **options)
    monkeypatch.setattr(train_module, "_write_history", write_history)
    assert not (tmp_path / "split" / "checkpoint.safetensors").exists()
    with pytest.raises(PosebenchError, match="already holds a training run"):
        train_model("gated-tcn", mocap, out_dir=tmp_path / "split", **options)
    with pytest.raises(PosebenchError, match=r"cannot resume with different options \(batch_size\)"):
        train_model("gated-tcn", mocap, out_dir=tmp_path / "split", resume=True, **{**options, "batch_size": 64})
    resumed = train_model("gated-tcn", mocap, out_dir=tmp_path / "split", resume=True, **options)
    assert _same_weights(_weights(resumed.model), _weights(whole.model))
    assert [r.loss for r in resumed.history] == [r.loss for r in whole.history]
    assert [r.val_mpjpe for r in resumed.history] == [r.val_mpjpe for r in whole.history]


def test_resume_without_a_run_is_an_error(mocap, tmp_path):
    with pytest.raises(PosebenchError, match="nothing to resume"):
        train_model("tcn", mocap, out_dir=tmp_path, epochs=1, params={"channels": 8}, resume=True, device="cpu")


def test_seq2seq_trains_on_whole_decoded_sequences(mocap, tmp_path):
    result = train_model("seq2seq", mocap, out_dir=tmp_path, epochs=1, batch_size=128, params={"hidden_size": 16}, device="cpu")
    assert np.isfinite(result.history[0].loss) and np.isfinite(result.val_mpjpe)
    loaded, _ = load_checkpoint(result.checkpoint)
    assert loaded.config == result.model.config


class _TwoStageNet(TemporalConvNet):
    """A TCN whose first stage trains only the output layer, then everything at half the rate."""

    def training_stages(self):
        return [TrainingStage("head", 0.5, lambda name: name.startswith("shrink"), 1.0), TrainingStage("all", 0.5, None, 0.5)]


class _HeadOnlyNet(TemporalConvNet):
    """A TCN whose single stage trains only the output layer."""

    def training_stages(self):
        return [TrainingStage("head", 1.0, lambda name: name.startswith("shrink"))]


@pytest.fixture()
def stage_models(monkeypatch):
    for name, cls in (("two-stage-test", _TwoStageNet), ("head-only-test", _HeadOnlyNet)):
        monkeypatch.setattr(cls, "registry_name", name)
        monkeypatch.setitem(models._REGISTRY, name, cls)


def test_a_stage_trains_only_the_parameters_it_selects(mocap, tmp_path, stage_models):
    params = {"channels": 16, "filter_widths": [3, 3]}
    torch.manual_seed(0)
    initial = dict(_HeadOnlyNet(**params).named_parameters())
    result = train_model("head-only-test", mocap, out_dir=tmp_path, epochs=1, batch_size=128, params=params, val_split=None, device="cpu")
    assert [r.stage for r in result.history] == ["head"]
    for name, parameter in result.model.named_parameters():
        assert torch.equal(parameter, initial[name]) != name.startswith("shrink"), name


def test_stages_restart_the_learning_rate_schedule_with_their_scale(mocap, tmp_path, stage_models):
    params = {"channels": 16, "filter_widths": [3, 3]}
    result = train_model("two-stage-test", mocap, out_dir=tmp_path, epochs=4, batch_size=128, lr=1e-3, params=params,
                         val_split=None, device="cpu")
    assert [(r.stage, r.lr) for r in result.history] == [("head", 1e-3), ("head", 0.95e-3), ("all", 0.5e-3), ("all", 0.5 * 0.95e-3)]
    assert [r.bn_momentum for r in result.history] == [0.1, pytest.approx(0.001), 0.1, pytest.approx(0.001)]
    assert result.val_mpjpe is None


def test_stage_epochs_split_by_fractions():
    stages = [TrainingStage("a", 1.0), TrainingStage("b", 1.0), TrainingStage("c", 0.25)]
    assert stage_epochs(stages, 9) == [4, 4, 1]
    assert sum(stage_epochs(stages, 80)) == 80


def test_parse_model_params_types_values_by_the_defaults():
    assert parse_model_params("tcn", ["channels=256", "filter_widths=3,3,3", "causal=true", "dropout=0.1"]) == {
        "channels": 256, "filter_widths": [3, 3, 3], "causal": True, "dropout": 0.1}
    assert parse_model_params("seq2seq", ["input_joints=0,1,2", "input_joints=none"]) == {"input_joints": None}
    with pytest.raises(ModelError, match="has no parameter 'width'; its parameters are n_joints, filter_widths"):
        parse_model_params("tcn", ["width=3"])
    with pytest.raises(ModelError, match="channels='many': expected a number"):
        parse_model_params("tcn", ["channels=many"])
    with pytest.raises(ModelError, match="must be KEY=VALUE"):
        parse_model_params("tcn", ["channels"])


def test_cli_models_lists_every_model_with_its_columns():
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:6] == ["name", "receptive", "field", "mask", "parameters", "paper"]
    for name in model_names():
        model = create_model(name)
        row = next(line for line in lines[1:] if line.split()[0] == name)
        assert row.split()[1:4] == [str(model.receptive_field), "yes" if model.uses_mask else "no", f"{model.parameter_count():,}"]
        assert model.paper in row
    assert "16,952,371" in next(line for line in lines if line.startswith("tcn "))


def test_cli_train_writes_a_checkpoint(mocap_path, tmp_path):
    dataset_path = mocap_path
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--model", "tcn", "--dataset", str(dataset_path), "--out", str(out), "--epochs", "1",
                                      "--batch-size", "256", "--device", "cpu", "--param", "channels=16", "--param", "filter_widths=3,3"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint.safetensors").is_file() and (out / "history.json").is_file()
    model, metadata = load_checkpoint(out / "checkpoint.safetensors")
    assert metadata["model"]["filter_widths"] == [3, 3] and model.receptive_field == 9
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("tcn: validation MPJPE ") and last.endswith(f"after 1 epochs; checkpoint {out / 'checkpoint.safetensors'}")


@pytest.mark.parametrize("arguments, message", [
    (["--model", "tcn", "--param", "channels=lots"], "Error: model 'tcn' parameter channels='lots': expected a number"),
    (["--model", "tcn", "--param", "filter_widths=3,4"], "Error: model 'tcn': filter_widths must be positive odd integers"),
    (["--model", "nope"], "Error: no model named 'nope'"),
])
def test_cli_train_reports_bad_input_in_one_line(mocap_path, tmp_path, arguments, message):
    result = CliRunner().invoke(cli, ["train", "--dataset", str(mocap_path), "--out", str(tmp_path / "o"), *arguments])
    assert result.exit_code == 1
    assert result.output.strip().startswith(message) and len(result.output.strip().splitlines()) == 1
