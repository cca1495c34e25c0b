"""Crash safety: a conversion or a run killed with SIGKILL leaves no output that looks whole.

Each case starts the real command in a child interpreter, waits until it has begun writing (its
hidden ``.<name>.tmp-*`` sibling appears), kills it after a seeded delay and checks that the output
path is either absent or a complete result (a dataset that loads and validates with all its
arrays; a run directory with its manifest and results). The rerun then succeeds and removes the
leftovers of the killed writer (docs/reliability.md, "Crash safety").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from dataset_factory import make_dataset

import posebench
from posebench.atomic import atomic_output, remove_stale_leftovers
from posebench.checkpoints import save_checkpoint
from posebench.cli import cli
from posebench.data import NORMALISATION
from posebench.models import create_model
from posebench.protocols import get_protocol, write_protocol
from posebench.runner import run_benchmark

BVH = Path(__file__).parent / "data" / "bvh" / "18_01.bvh"
DELAYS = np.random.default_rng(20240611).uniform(0.05, 0.5, size=2)
"""Seeded kill delays (seconds after writing began) for the cases that are not killed at once."""
START_TIMEOUT_S = 120.0


def leftovers(output: Path) -> list[Path]:
    return sorted(output.parent.glob(f".{output.name}.*"))


def kill_while_writing(command: list[str], output: Path, delay: float) -> int | None:
    """Start ``command``, SIGKILL it ``delay`` s after its temporary output appears.

    Returns the child's exit status when it finished before the kill, else None.
    """
    before = set(leftovers(output))
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not set(output.parent.glob(f".{output.name}.tmp-*")) - before:
        if child.poll() is not None:
            raise AssertionError(f"{command[3:5]} ended ({child.returncode}) before writing: {child.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"{command[3:5]} did not start writing within {START_TIMEOUT_S} s")
        time.sleep(0.002)
    time.sleep(delay)
    finished = child.poll()
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stderr.close()
    return finished


def assert_complete_dataset(path: Path) -> None:
    """The dataset loads, every sequence's arrays load (array rules run) and every rule holds."""
    dataset = posebench.load(path)
    assert len(dataset) == 5  # 18_01 seen by ring4 + one hand-held camera
    for sequence in dataset:
        assert sequence.joints_world.shape == (1, sequence.n_frames, 17, 3)
        assert sequence.keypoints["gt"].xy.shape == (1, sequence.n_frames, 17, 2)
    dataset.validate()


def convert_command(output: Path, fmt: str, overwrite: bool = False) -> list[str]:
    command = [sys.executable, "-m", "posebench.cli", "convert", "mocap", str(BVH), "--cameras", "ring4+handheld",
               "-o", str(output), "--format", fmt]
    return command + (["--overwrite"] if overwrite else [])


def convert_in_process(output: Path, fmt: str, overwrite: bool = False) -> None:
    result = CliRunner().invoke(cli, convert_command(output, fmt, overwrite)[3:])
    assert result.exit_code == 0, result.output


def test_killed_conversion_leaves_nothing_and_the_rerun_cleans_up(tmp_path):
    output = tmp_path / "take.parquet"
    assert kill_while_writing(convert_command(output, "parquet"), output, delay=0.0) is None
    assert not output.exists(), "a conversion killed as it began writing must leave no output"
    stale = leftovers(output)
    assert len(stale) == 1 and ".tmp-" in stale[0].name
    convert_in_process(output, "parquet")
    assert_complete_dataset(output)
    assert leftovers(output) == []


def test_conversion_killed_at_a_random_point_of_an_overwrite(tmp_path):
    """Replacing an existing dataset: wherever the kill lands, the path holds a whole dataset or nothing."""
    output = tmp_path / "take.h5"
    convert_in_process(output, "hdf5")
    kill_while_writing(convert_command(output, "hdf5", overwrite=True), output, delay=float(DELAYS[0]))
    if output.exists():
        assert_complete_dataset(output)
    convert_in_process(output, "hdf5", overwrite=True)
    assert_complete_dataset(output)
    assert leftovers(output) == []


@pytest.fixture(scope="module")
def benchmark_inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("crash_run")
    dataset = make_dataset(n_frames=60).save(root / "tiny.parquet")
    protocol = get_protocol("sample")
    protocol = replace(protocol, name="tiny", occlusion=replace(protocol.occlusion, ratios=(0.0, 0.5)),
                       movement_range=replace(protocol.movement_range, window=9, buckets=4))
    write_protocol(protocol, root / "tiny.toml")
    torch.manual_seed(0)
    model = create_model("tcn", filter_widths=(3, 3), channels=16)
    checkpoint = save_checkpoint(root / "tcn.safetensors", model.eval(), skeleton="h36m17", normalisation=NORMALISATION,
                                 training_data_hash=None)
    return {"dataset": dataset, "protocol": root / "tiny.toml", "checkpoint": checkpoint}


def run_command(inputs: dict[str, Path], out: Path) -> list[str]:
    return [sys.executable, "-m", "posebench.cli", "run", "--model", "tcn", "--dataset", str(inputs["dataset"]),
            "--protocol", str(inputs["protocol"]), "--checkpoint", str(inputs["checkpoint"]), "--out", str(out)]


def assert_complete_run(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    results = pd.read_csv(out / "results.csv")
    assert manifest["occlusion_ratios"] == [0.0, 0.5]
    assert sorted(results.occlusion_ratio.unique()) == [0.0, 0.5] and results.value.notna().any()
    assert (out / "summary.md").read_text().strip() and list((out / "plots").glob("*.png"))


def test_killed_run_leaves_no_run_directory_and_reruns(tmp_path, benchmark_inputs):
    out = tmp_path / "run"
    assert kill_while_writing(run_command(benchmark_inputs, out), out, delay=0.0) is None
    assert not out.exists(), "a run killed as it began writing must leave no run directory"
    assert len(leftovers(out)) == 1
    run_benchmark(["tcn"], checkpoints=[benchmark_inputs["checkpoint"]], dataset=benchmark_inputs["dataset"],
                  protocol=benchmark_inputs["protocol"], out=out, progress=False)
    assert_complete_run(out)
    assert leftovers(out) == []
    kill_while_writing(run_command(benchmark_inputs, out), out, delay=float(DELAYS[1]))
    if out.exists():
        assert_complete_run(out)


def test_leftovers_of_live_or_foreign_writers_are_kept(tmp_path):
    """Only a dead writer's leftovers are removed: a running one (this process) or another host's stay."""
    output = tmp_path / "d.parquet"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    from posebench.atomic import _HOST

    mine = tmp_path / f".d.parquet.tmp-{_HOST}-{os.getpid()}-0123456789ab"
    foreign = tmp_path / f".d.parquet.tmp-otherhost{_HOST}-{dead.stdout.strip()}-0123456789ab"
    stale = tmp_path / f".d.parquet.old-{_HOST}-{dead.stdout.strip()}-0123456789ab"
    unrelated = tmp_path / f".e.parquet.tmp-{_HOST}-{dead.stdout.strip()}-0123456789ab"
    for path in (mine, foreign, stale, unrelated):
        path.mkdir()
    assert remove_stale_leftovers(output) == [stale]
    assert mine.exists() and foreign.exists() and unrelated.exists() and not stale.exists()
    with atomic_output(output) as temporary:
        temporary.mkdir()
        assert temporary.name.startswith(f".d.parquet.tmp-{_HOST}-")
    assert output.is_dir()
