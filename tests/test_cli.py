"""The command line through click's runner: info, validate, convert, exit codes."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner
from dataset_factory import make_dataset

from posebench import __version__
from posebench.cli import cli


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    dataset = make_dataset()
    return {"parquet": dataset.save(root / "ok.parquet"), "hdf5": dataset.save(root / "ok.h5", format="hdf5")}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"posebench, version {__version__}"


@pytest.mark.parametrize("layout", ["parquet", "hdf5"])
def test_info_prints_the_summary(stored, layout):
    result = run("info", stored[layout])
    assert result.exit_code == 0, result.output
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.output.splitlines())
    assert lines["dataset"] == "synthetic"
    assert lines["sequences"] == "3"
    assert lines["frames"] == "120 (200 person-frames, up to 2 persons)"
    assert lines["subjects"] == "4: alice, bob, carol, dave"
    assert lines["cameras"] == "1 static, 1 moving, 1 sequences without camera"
    assert lines["2D sources"] == "gt (h36m17), openpose (openpose25)"
    assert lines["splits"] == "train: 2 sequences / 80 frames, test: 1 sequences / 40 frames"
    assert lines["size on disk"].endswith("KiB")


def test_info_json(stored):
    result = run("info", "--json", stored["parquet"])
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["actions"] == ["ShakeHand", "Walking"]
    assert summary["fps"] == [30.0, 50.0]
    assert summary["cameras"] == {"static": 1, "moving": 1}
    assert summary["size_bytes"] == sum(p.stat().st_size for p in stored["parquet"].rglob("*") if p.is_file())


@pytest.mark.parametrize("layout", ["parquet", "hdf5"])
def test_validate_ok(stored, layout):
    result = run("validate", stored[layout])
    assert result.exit_code == 0, result.output
    assert "valid posebench dataset (schema 1.0, 3 sequences)" in result.output


def test_validate_reports_a_broken_dataset_in_one_line(stored, tmp_path):
    target = tmp_path / "broken.parquet"
    shutil.copytree(stored["parquet"], target)
    info = json.loads((target / "meta/info.json").read_text())
    info["splits"]["test"].append("ghost")
    (target / "meta/info.json").write_text(json.dumps(info))
    result = run("validate", target)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: meta.splits.test: rule 'splits' violated: split 'test' names unknown sequence 'ghost'"
    assert "Traceback" not in result.output


def test_missing_dataset_is_a_user_error(tmp_path):
    result = run("info", tmp_path / "nothing.parquet")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'nothing.parquet'} does not exist"


def test_debug_shows_the_exception(tmp_path):
    result = run("--debug", "info", tmp_path / "nothing.parquet")
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "DatasetNotFoundError"


def test_usage_errors_exit_2():
    assert run("info").exit_code == 2
    assert run("frobnicate").exit_code == 2
    assert run("info", "--bogus", "x").exit_code == 2


def test_convert_group_lists_its_help():
    result = run("convert", "--help")
    assert result.exit_code == 0
    assert "Convert raw recordings or a dataset release into the unified schema" in result.output
