"""``posebench leaderboard publish``: merging runs, refusing mixed hashes, the static page."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from dataset_factory import make_dataset

from posebench.checkpoints import save_checkpoint
from posebench.cli import cli
from posebench.data import NORMALISATION
from posebench.errors import PosebenchError
from posebench.leaderboard import publish
from posebench.models import create_model
from posebench.protocols import get_protocol, write_protocol
from posebench.runner import run_benchmark


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("leaderboard")
    dataset = make_dataset(n_frames=50)
    data_path = dataset.save(root / "tiny.parquet")
    shifted = make_dataset(seed=1, n_frames=50)
    shifted_path = shifted.save(root / "shifted.parquet")
    protocol = get_protocol("sample")
    protocol = replace(protocol, name="tiny", movement_range=replace(protocol.movement_range, window=9, buckets=3))
    write_protocol(protocol, root / "tiny.toml")
    checkpoints = {}
    for name, params in {"tcn": {"filter_widths": (3, 3), "channels": 16}, "single-frame": {"channels": 16}}.items():
        torch.manual_seed(0)
        path = root / f"{name}.safetensors"
        save_checkpoint(path, create_model(name, **params).eval(), skeleton=dataset.skeleton, normalisation=NORMALISATION,
                        training_data_hash="0" * 64, seed=0, epochs=0)
        checkpoints[name] = path

    def run(models, data, out):
        return run_benchmark(models, checkpoints=[checkpoints[m] for m in models], dataset=data, protocol=root / "tiny.toml",
                             occlusion=[0.0, 0.25, 0.5], out=root / out, progress=False).directory

    return {
        "root": root,
        "a": run(["tcn"], data_path, "run_a"),
        "b": run(["single-frame"], data_path, "run_b"),
        "other_data": run(["tcn"], shifted_path, "run_c"),
    }


def test_publish_merges_runs_into_one_csv_per_dataset_and_protocol(runs):
    target = runs["root"] / "boards"
    written = publish([runs["a"], runs["b"]], target)
    assert [p.name for p in written] == ["synthetic__tiny.csv"]
    board = pd.read_csv(written[0])
    assert sorted(board.model) == ["single-frame", "tcn"]
    for column in ("checkpoint_hash", "parameters", "mpjpe", "p_mpjpe", "mpjpe@occ0", "mpjpe@occ0.25", "mpjpe@occ0.5",
                   "mr_best", "mr_worst", "date", "posebench_version", "protocol_hash", "dataset_hash"):
        assert column in board.columns, column
    assert (board.mr_best <= board.mr_worst).all()
    assert board.mpjpe.is_monotonic_increasing  # best first
    results = pd.read_csv(runs["a"] / "results.csv")
    tcn = results[(results.metric == "mpjpe") & (results.stratum == "action_mean") & (results.occlusion_ratio == 0.5)].value.item()
    assert board.set_index("model").loc["tcn", "mpjpe@occ0.5"] == pytest.approx(tcn, abs=0.01)


def test_publishing_again_replaces_the_same_entry(runs):
    target = runs["root"] / "boards2"
    publish([runs["a"]], target)
    publish([runs["a"], runs["b"]], target)
    board = pd.read_csv(target / "synthetic__tiny.csv")
    assert len(board) == 2


def test_mixed_dataset_hashes_are_refused(runs):
    target = runs["root"] / "boards3"
    publish([runs["a"]], target)
    with pytest.raises(PosebenchError, match="different dataset hashes .* refusing to merge"):
        publish([runs["other_data"]], target)
    with pytest.raises(PosebenchError, match="refusing to merge"):
        publish([runs["a"], runs["other_data"]], runs["root"] / "boards4")


def test_index_html_is_self_contained_and_sortable(runs):
    target = runs["root"] / "boards5"
    publish([runs["a"], runs["b"]], target)
    page = (target / "index.html").read_text()
    assert "<caption>synthetic / tiny</caption>" in page
    assert "<td>tcn</td>" in page and "<td>single-frame</td>" in page
    assert "addEventListener" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page and "src=" not in page


def test_cli_publish_and_errors(runs):
    target = runs["root"] / "boards6"
    result = CliRunner().invoke(cli, ["leaderboard", "publish", str(runs["a"]), "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert "synthetic__tiny.csv" in result.output and "index.html" in result.output
    missing = CliRunner().invoke(cli, ["leaderboard", "publish", str(runs["root"] / "nothing"), "--to", str(target)])
    assert missing.exit_code == 1
    assert "holds no results.csv: not a posebench run directory" in missing.output
