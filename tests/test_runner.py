"""``posebench run``: the model x occlusion grid, result structure, independent re-scoring, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from dataset_factory import make_dataset

import posebench
from posebench.checkpoints import save_checkpoint
from posebench.cli import cli
from posebench.data import NORMALISATION
from posebench.errors import PosebenchError
from posebench.models import create_model, model_names
from posebench.protocols import get_protocol, write_protocol
from posebench.results import RESULT_COLUMNS
from posebench.runner import run_benchmark

TINY = {
    "tcn": {"filter_widths": (3, 3), "channels": 16},
    "gated-tcn": {"filter_widths": (3, 3), "channels": 16},
    "single-frame": {"channels": 16},
    "seq2seq": {"hidden_size": 16},
    "rie": {"filter_widths": (3, 3), "channels": 8, "latent_dim": 8, "fc_channels": 16},
    "anatomy": {"filter_widths": (3, 3), "channels": 16, "length_frames": 10},
}
RATIOS = [0.0, 0.25, 0.5]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("runner")
    dataset = make_dataset(n_frames=60)
    dataset_path = dataset.save(root / "tiny.parquet")
    protocol = get_protocol("sample")
    from dataclasses import replace

    protocol = replace(protocol, name="tiny", movement_range=replace(protocol.movement_range, window=9, buckets=4))
    protocol_path = root / "tiny.toml"
    write_protocol(protocol, protocol_path)
    checkpoints = []
    for index, name in enumerate(model_names()):
        torch.manual_seed(index)
        model = create_model(name, **TINY[name])
        path = root / f"{name}.safetensors"
        save_checkpoint(path, model.eval(), skeleton=dataset.skeleton, normalisation=NORMALISATION, training_data_hash="0" * 64, seed=index, epochs=0)
        checkpoints.append(path)
    return {"root": root, "dataset": dataset_path, "protocol": protocol_path, "checkpoints": checkpoints}


@pytest.fixture(scope="module")
def grid(setup):
    return run_benchmark(
        model_names(), checkpoints=setup["checkpoints"], dataset=setup["dataset"], protocol=setup["protocol"],
        occlusion=RATIOS, save_predictions=True, out=setup["root"] / "run", progress=False,
    )


def test_every_model_and_ratio_is_in_the_long_table(grid):
    results = grid.results
    assert list(results.columns) == list(RESULT_COLUMNS)
    assert sorted(results.model.unique()) == sorted(model_names())
    assert sorted(results.occlusion_ratio.unique()) == RATIOS
    overall = results[(results.stratum_kind == "overall") & (results.stratum == "action_mean")]
    assert len(overall) == len(model_names()) * len(RATIOS) * 6  # six metrics in the sample protocol
    assert set(results.stratum_kind) == {"overall", "action", "subject", "mr_bucket", "joint", "occlusion"}
    assert results.protocol.unique().tolist() == ["tiny"] and results.dataset.unique().tolist() == ["synthetic"]
    assert results.dataset_hash.nunique() == 1 and results.protocol_hash.nunique() == 1
    buckets = results[(results.stratum_kind == "mr_bucket") & (results.metric == "mpjpe")]
    assert sorted(buckets.stratum.unique()) == ["00", "01", "02", "03"]
    assert (results[results.metric == "pck"].unit == "%").all()


def test_occlusion_changes_the_inputs(grid):
    overall = grid.results[(grid.results.stratum_kind == "overall") & (grid.results.stratum == "frame_mean") & (grid.results.metric == "mpjpe")]
    tcn = overall[overall.model == "tcn"].set_index("occlusion_ratio").value
    assert tcn[0.0] != tcn[0.5]
    visible = grid.results[(grid.results.stratum_kind == "occlusion") & (grid.results.model == "tcn") & (grid.results.occlusion_ratio == 0.5)]
    assert set(visible.stratum) == {"occluded_joints", "visible_joints"}


def test_numbers_equal_an_independent_rescoring_of_saved_predictions(setup, grid):
    truth = posebench.load(setup["dataset"])
    test_ids = truth.splits["test"]
    for model in ("tcn", "gated-tcn"):
        for ratio in RATIOS:
            predicted = posebench.load(setup["root"] / "run" / "predictions" / f"{model}__occ{ratio:g}.parquet")
            pred = np.concatenate([predicted[i].joints_cam[0] for i in test_ids]).astype(np.float64)
            gt = np.concatenate([truth[i].joints_cam[0] for i in test_ids]).astype(np.float64)
            pred -= pred[:, :1]
            gt -= gt[:, :1]
            errors = np.linalg.norm(pred - gt, axis=-1)  # (frames, joints)
            rows = grid.results[(grid.results.model == model) & (grid.results.occlusion_ratio == ratio) & (grid.results.metric == "mpjpe")]
            frame_mean = rows[(rows.stratum_kind == "overall") & (rows.stratum == "frame_mean")].value.item()
            assert frame_mean == pytest.approx(errors.mean(), abs=2e-3)
            pck = grid.results[(grid.results.model == model) & (grid.results.occlusion_ratio == ratio) & (grid.results.metric == "pck")
                               & (grid.results.stratum == "frame_mean")].value.item()
            assert pck == pytest.approx(100 * (errors < 150).mean(), abs=1e-6 + 100 * (np.abs(errors - 150) < 2e-3).mean())
            per_joint = rows[rows.stratum_kind == "joint"].set_index("stratum").value
            assert per_joint["l_wrist"] == pytest.approx(errors[:, 13].mean(), abs=2e-3)


def test_run_directory_contents(setup, grid):
    run = setup["root"] / "run"
    for name in ("results.csv", "results.parquet", "summary.md", "manifest.json", "plots/occlusion.png", "plots/movement_range.png", "plots/joints.png"):
        assert (run / name).is_file(), name
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["protocol"]["name"] == "tiny"
    assert set(manifest["models"]) == set(model_names())
    assert len(manifest["mr_bucket_edges"]) == 5
    summary = (run / "summary.md").read_text()
    assert "## mpjpe by occlusion ratio" in summary and "| model | 0 | 0.25 | 0.5 |" in summary
    from_parquet = pd.read_parquet(run / "results.parquet")
    from_csv = pd.read_csv(run / "results.csv", dtype={"checkpoint_hash": str, "stratum": str})
    assert list(from_parquet.columns) == list(from_csv.columns) and len(from_parquet) == len(from_csv)
    np.testing.assert_allclose(from_parquet.value, from_csv.value, atol=1e-6)


def test_same_seed_same_results_csv(setup, grid):
    again = run_benchmark(
        ["tcn", "gated-tcn"], checkpoints=[setup["checkpoints"][model_names().index(m)] for m in ("tcn", "gated-tcn")],
        dataset=setup["dataset"], protocol=setup["protocol"], occlusion=RATIOS, out=setup["root"] / "again", progress=False,
    )
    third = run_benchmark(
        ["tcn", "gated-tcn"], checkpoints=[setup["checkpoints"][model_names().index(m)] for m in ("tcn", "gated-tcn")],
        dataset=setup["dataset"], protocol=setup["protocol"], occlusion=RATIOS, out=setup["root"] / "third", progress=False,
    )
    assert (setup["root"] / "again" / "results.csv").read_bytes() == (setup["root"] / "third" / "results.csv").read_bytes()
    different_seed = run_benchmark(
        ["gated-tcn"], checkpoints=[setup["checkpoints"][model_names().index("gated-tcn")]], dataset=setup["dataset"],
        protocol=setup["protocol"], occlusion=[0.5], seed=1, out=setup["root"] / "seed1", progress=False,
    )
    original = again.results[(again.results.model == "gated-tcn") & (again.results.occlusion_ratio == 0.5)].value.to_numpy()
    assert not np.array_equal(original, different_seed.results.value.to_numpy())


def test_user_errors(setup):
    with pytest.raises(PosebenchError, match="--checkpoint was given 1 times for 2 models"):
        run_benchmark(["tcn", "seq2seq"], checkpoints=setup["checkpoints"][:1], dataset=setup["dataset"], protocol=setup["protocol"], out=setup["root"] / "x", progress=False)
    with pytest.raises(PosebenchError, match="is a checkpoint of model"):
        run_benchmark(["tcn"], checkpoints=[setup["checkpoints"][model_names().index("seq2seq")]], dataset=setup["dataset"], protocol=setup["protocol"], out=setup["root"] / "x", progress=False)
    with pytest.raises(PosebenchError, match="has no protocol preset of the same name; pass --protocol"):
        run_benchmark(["tcn"], checkpoints=setup["checkpoints"][:1], dataset=setup["dataset"], out=setup["root"] / "x", progress=False)
    with pytest.raises(PosebenchError, match="no model named 'tcnn'"):
        run_benchmark(["tcnn"], dataset=setup["dataset"], protocol=setup["protocol"], checkpoints=setup["checkpoints"][:1], out=setup["root"] / "x", progress=False)
    assert not (setup["root"] / "x").exists()


def test_cli_run_prints_the_table(setup):
    index = model_names().index("tcn")
    result = CliRunner().invoke(cli, [
        "run", "--model", "tcn", "--checkpoint", str(setup["checkpoints"][index]), "--dataset", str(setup["dataset"]),
        "--protocol", str(setup["protocol"]), "--occlusion", "0,0.5", "--out", str(setup["root"] / "cli"),
    ])
    assert result.exit_code == 0, result.output
    assert "tcn @ 0" in result.output and "tcn @ 0.5" in result.output
    assert "mpjpe" in result.output and result.output.strip().splitlines()[-1].startswith("wrote")
    bad = CliRunner().invoke(cli, ["run", "--model", "tcn", "--occlusion", "0.5,2", "--out", str(setup["root"] / "bad")])
    assert bad.exit_code == 2 and "occlusion ratios lie in [0, 1]" in bad.output


def test_root_joint_of_the_protocol_is_the_one_subtracted(setup, grid):
    from dataclasses import replace

    from posebench.protocols import read_protocol

    thorax = replace(read_protocol(setup["protocol"]), root_joint="thorax")
    path = setup["root"] / "thorax.toml"
    write_protocol(thorax, path)
    index = model_names().index("tcn")
    run = run_benchmark(["tcn"], checkpoints=[setup["checkpoints"][index]], dataset=setup["dataset"], protocol=path,
                        occlusion=[0.0], out=setup["root"] / "thorax", progress=False)
    joints = run.results[(run.results.stratum_kind == "joint") & (run.results.metric == "mpjpe")].set_index("stratum").value
    assert joints["thorax"] == pytest.approx(0.0, abs=1e-9)
    assert joints["pelvis"] > 0
    assert run.results.protocol_hash.iloc[0] != grid.results.protocol_hash.iloc[0]
