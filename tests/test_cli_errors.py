"""Every user-error path of every command: exit code 1 and one line ``Error: <problem>; <fix>``.

Usage errors (an unknown option, a missing argument, a value outside a declared range) are
click's: exit code 2 with a usage line; one case checks that they stay so. Everything else a user
can get wrong is a posebench error printed as exactly one line, without a traceback.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from dataset_factory import make_dataset

from posebench.checkpoints import save_checkpoint
from posebench.cli import cli
from posebench.data import NORMALISATION
from posebench.models import create_model

DATA = Path(__file__).parent / "data"
BVH = DATA / "bvh" / "09_03.bvh"


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli_errors")
    make_dataset(n_frames=40).save(root / "d.parquet")
    torch.manual_seed(0)
    save_checkpoint(root / "gated.safetensors", create_model("gated-tcn", filter_widths=(3, 3), channels=16),
                    skeleton="h36m17", normalisation=NORMALISATION, training_data_hash=None)
    (root / "afile").write_text("not a dataset\n")
    (root / "notes.txt").write_text("not mocap\n")
    (root / "bad.c3d").write_bytes(bytes(600))
    (root / "empty").mkdir()
    (root / "exists.parquet").mkdir()
    shutil.copy(BVH, root / "take.bvh")
    return {"root": str(root), "dataset": str(root / "d.parquet"), "checkpoint": str(root / "gated.safetensors"),
            "afile": str(root / "afile"), "empty": str(root / "empty"), "bvh": str(root / "take.bvh")}


TRAIN = ["train", "--model", "tcn", "--dataset", "{dataset}", "--epochs", "1"]
RUN = ["run", "--out", "{root}/run", "--model", "gated-tcn", "--dataset", "{dataset}", "--protocol", "sample", "--checkpoint", "{checkpoint}"]
MOCAP = ["convert", "mocap", "{bvh}", "-o", "{root}/out.parquet"]

# (command line, regex of the problem, regex of the fix); {name} are the fixture's paths.
CASES = {
    "info-missing": (["info", "{root}/nothing.parquet"], r"nothing\.parquet does not exist", r""),
    "info-directory": (["info", "{empty}"], r"empty is a directory without meta/info\.json", r"pass the directory holding meta/info\.json, or convert"),
    "info-not-hdf5": (["info", "{afile}"], r"afile is not an HDF5 file", r"pass a Parquet dataset directory or an \.h5 file"),
    "validate-missing": (["validate", "{root}/nothing.h5"], r"nothing\.h5 does not exist", r""),
    "validate-directory": (["validate", "{empty}"], r"directory without meta/info\.json", r"convert the raw data first"),
    "mocap-missing-input": (["convert", "mocap", "{root}/absent.c3d", "-o", "{root}/o.parquet"], r"absent\.c3d: no such file", r""),
    "mocap-unknown-format": (["convert", "mocap", "{root}/notes.txt", "-o", "{root}/o.parquet"], r"unknown mocap format '\.txt'", r"posebench reads \.c3d, \.bvh and \.trc"),
    "mocap-not-c3d": (["convert", "mocap", "{root}/bad.c3d", "-o", "{root}/o.parquet"], r"bad\.c3d: at byte offset 1: expected the C3D key 0x50", r"this is not a C3D file"),
    "mocap-output-exists": (["convert", "mocap", "{bvh}", "-o", "{root}/exists.parquet"], r"exists\.parquet already exists", r"choose another output path or pass overwrite \(--overwrite\)"),
    "mocap-camera-spec": ([*MOCAP, "--cameras", "ring99x"], r"invalid camera spec 'ring99x': unknown camera kind", r"use ringN or handheld"),
    "mocap-subjects-count": ([*MOCAP, "--subjects", "a,b"], r"--subjects names 2 persons but take 'take' has 1", r""),
    "mocap-action-twice": ([*MOCAP, "--action", "a", "--action", "b"], r"--action was given 2 times without TAKE=", r"give it once, or as TAKE=VALUE per take"),
    "mocap-action-unknown-take": ([*MOCAP, "--action", "other=walk"], r"--action names takes \['other'\] that are not among the takes \['take'\]", r""),
    "mocap-split-unknown-take": ([*MOCAP, "--split", "test=nope"], r"split 'test' names takes \['nope'\] that are not among the converted takes", r""),
    "mocap-fps": ([*MOCAP, "--fps", "0"], r"target frame rate must be positive, got 0\.0", r""),
    "h36m-no-data": (["convert", "h36m", "{empty}", "-o", "{root}/o.parquet"], r"empty: no Human3\.6M data found", r"Expected one of: release: ROOT/S1/MyPoseFeatures"),
    "humaneva-no-data": (["convert", "humaneva", "{empty}", "-o", "{root}/o.parquet"], r"empty: no HumanEva-I data found", r"Expected one of: VideoPose3D"),
    "mmhuman-no-takes": (["convert", "mmhuman", "{empty}", "-o", "{root}/o.parquet"], r"empty/takes\.csv: missing", r"every raw folder needs takes\.csv"),
    "simulate-missing-input": (["simulate", "mmhuman", "{root}/absent.bvh", "-o", "{root}/raw"], r"absent\.bvh: no such file", r""),
    "train-unknown-model": (["train", "--model", "nope", "--dataset", "{dataset}", "--out", "{root}/t"], r"no model named 'nope'", r"registered models: anatomy, gated-tcn"),
    "train-missing-dataset": (["train", "--model", "tcn", "--dataset", "{root}/absent", "--out", "{root}/t"], r"absent does not exist", r""),
    "train-param-form": ([*TRAIN, "--out", "{root}/t", "--param", "channels"], r"model parameter 'channels' must be KEY=VALUE", r"e\.g\. channels=256"),
    "train-param-name": ([*TRAIN, "--out", "{root}/t", "--param", "nope=3"], r"model 'tcn' has no parameter 'nope'", r"its parameters are n_joints, filter_widths"),
    "train-param-value": ([*TRAIN, "--out", "{root}/t", "--param", "channels=abc"], r"parameter channels='abc'", r"expected a number like the default"),
    "train-param-range": ([*TRAIN, "--out", "{root}/t", "--param", "channels=-5"], r"channels must be a positive integer, got -5", r""),
    "train-split": ([*TRAIN, "--out", "{root}/t", "--train-split", "nope"], r"has no split \['nope'\]", r"its splits are \['test', 'train'\]"),
    "train-source": ([*TRAIN, "--out", "{root}/t", "--source", "nope"], r"has no 2D source 'nope'", r"its sources are \['gt', 'openpose'\]"),
    "train-resume-nothing": ([*TRAIN, "--out", "{root}/t", "--resume"], r"t: nothing to resume", r"start without --resume"),
    "train-epochs": (["train", "--model", "tcn", "--dataset", "{dataset}", "--out", "{root}/t", "--epochs", "0"], r"epochs must be a positive integer, got 0", r""),
    "train-batch-size": ([*TRAIN, "--out", "{root}/t", "--batch-size", "0"], r"batch size must be a positive integer, got 0", r""),
    "train-lr": ([*TRAIN, "--out", "{root}/t", "--lr", "-1"], r"learning rate must be > 0, got -1\.0", r""),
    "train-lr-decay": ([*TRAIN, "--out", "{root}/t", "--lr-decay", "2"], r"learning-rate decay must lie in \(0, 1\], got 2\.0", r""),
    "train-occlusion": ([*TRAIN, "--out", "{root}/t", "--occlusion-train", "2"], r"training occlusion ratio must lie in \[0, 1\), got 2\.0", r""),
    "train-chunk": ([*TRAIN, "--out", "{root}/t", "--chunk", "0"], r"chunk \(output frames per training window\) must be a positive integer", r""),
    "train-out-is-a-file": ([*TRAIN, "--out", "{afile}"], r"afile exists and is not a directory", r"choose another --out directory"),
    "run-unknown-model": (["run", "--out", "{root}/run", "--model", "nope"], r"no model named 'nope'", r"registered models"),
    "run-checkpoint-without-dataset": (["run", "--out", "{root}/run", "--model", "tcn", "--checkpoint", "{checkpoint}"], r"--checkpoint needs --dataset",
                                       r"the embedded checkpoints go with the embedded sample"),
    "run-no-preset": (["run", "--out", "{root}/run", "--model", "gated-tcn", "--dataset", "{dataset}", "--checkpoint", "{checkpoint}"],
                      r"dataset 'synthetic' has no protocol preset of the same name", r"pass --protocol with one of"),
    "run-unknown-protocol": ([*RUN[:-4], "--protocol", "nope"], r"no protocol preset or file 'nope'", r"presets: \['h36m'"),
    "run-missing-checkpoint": ([*RUN[:-1], "{root}/absent.safetensors"], r"absent\.safetensors: no such checkpoint file", r""),
    "run-not-safetensors": ([*RUN[:-1], "{afile}"], r"afile: not a safetensors file", r"files in other formats .* are never loaded"),
    "run-checkpoint-count": (["run", "--out", "{root}/run", "--model", "gated-tcn,tcn", "--dataset", "{dataset}", "--protocol", "sample", "--checkpoint", "{checkpoint}"],
                             r"--checkpoint was given 1 times for 2 models", r"give one checkpoint per model, in order"),
    "run-wrong-model": (["run", "--out", "{root}/run", "--model", "tcn", "--dataset", "{dataset}", "--protocol", "sample", "--checkpoint", "{checkpoint}"],
                        r"gated\.safetensors is a checkpoint of model 'gated-tcn', not 'tcn'", r""),
    "run-source-missing": ([*RUN[:-4], "--protocol", "h36m", *RUN[-2:]], r"has no 2D source 'cpn_ft_h36m_dbb'", r"its sources are \['gt', 'openpose'\]"),
    "run-out-not-a-run": (["run", "--out", "{afile}", *RUN[3:]], r"afile exists and is not a posebench run directory \(no manifest\.json\)", r"choose another --out"),
    "leaderboard-not-a-run": (["leaderboard", "publish", "{empty}"], r"empty holds no results\.csv: not a posebench run directory", r"run `posebench run --out DIR` first"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_user_error_is_one_line_with_exit_code_1(paths, name):
    arguments, problem, fix = CASES[name]
    result = CliRunner().invoke(cli, [argument.format(**paths) for argument in arguments])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for pattern in (problem, fix):
        assert re.search(pattern, lines[0]), (pattern, lines[0])


def test_run_without_an_embedded_checkpoint_says_how_to_train_one(paths, tmp_path, monkeypatch):
    import posebench.runner

    monkeypatch.setattr(posebench.runner, "CHECKPOINT_DIRECTORY", tmp_path)
    arguments = ["run", "--out", f"{paths['root']}/run", "--model", "gated-tcn", "--dataset", paths["dataset"], "--protocol", "sample"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1
    assert result.output == (
        "Error: no embedded checkpoint for model 'gated-tcn'; train one with `posebench train --model gated-tcn ...` "
        "and pass it with --checkpoint\n"
    )


def test_user_errors_leave_no_output_behind(paths):
    """Failed conversions and runs write nothing under the output paths (checked after every case)."""
    root = Path(paths["root"])
    assert not any((root / name).exists() for name in ("o.parquet", "out.parquet", "raw", "run", "t"))
    assert Path(paths["afile"]).read_text() == "not a dataset\n"
    assert not list(root.glob(".*.tmp-*"))


def test_usage_errors_stay_clicks_with_exit_code_2(paths):
    result = CliRunner().invoke(cli, ["run", "--model", "tcn", "--occlusion", "2"])
    assert result.exit_code == 2
    assert "Usage: " in result.output and "occlusion ratios lie in [0, 1]" in result.output


def test_debug_flag_shows_the_traceback(paths):
    result = CliRunner().invoke(cli, ["--debug", "info", paths["empty"]])
    assert result.exit_code == 1 and type(result.exception).__name__ == "DatasetNotFoundError"
