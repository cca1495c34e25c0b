"""Peak memory of converting, loading, validating and evaluating a 1,000,000-frame dataset.

Generates 100 sequences x 10,000 frames (1 person, h36m17, one static camera, ground-truth 2D),
sequence by sequence (each sequence's arrays are produced only when it is written), saves it as
Parquet and as HDF5, validates each the way ``posebench validate`` does, and evaluates a small
``tcn`` on each through ``posebench.runner.run_benchmark`` with a protocol file. Every stage runs
in its own interpreter, so its peak resident memory (``VmHWM`` of /proc/self/status) is its own;
the ``baseline`` stage is the interpreter with posebench and torch imported.

Usage: python benchmarks/memory.py [--sequences N] [--frames F] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

STAGES = (
    "baseline",
    "save-parquet",
    "save-hdf5",
    "validate-parquet",
    "validate-hdf5",
    "evaluate-parquet",
    "evaluate-hdf5",
)
ACTIONS = ("Walking", "Turning", "Jogging", "Waving", "Sitting")


def peak_rss_mb() -> float:
    """The process's peak resident set size (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def synthetic_dataset(n_sequences: int, n_frames: int):
    """A dataset whose sequences generate their arrays on first use (deterministic per sequence).

    The motion is the embedded sample's first pose carried around a 2 m circle with swinging
    limbs and 5 mm noise, seen by one static camera 5 m away.
    """
    import posebench
    from posebench.cameras import Camera
    from posebench.dataset import Dataset, Keypoints2D, Sequence

    sample = posebench.load("sample")
    template = np.asarray(sample[0].joints_world[0, 0], dtype=np.float64)
    template = template - template[0] * np.array([1.0, 1.0, 0.0])
    camera = Camera(
        "cam0", 1000, 1000, 1145.0, 1145.0, 500.0, 500.0, "none", (),
        R=np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), t=np.array([0.0, 1000.0, 6000.0]),
    )
    fps = 50.0

    def loader(index: int):
        def arrays() -> dict:
            rng = np.random.default_rng(index)
            t = np.arange(n_frames) / fps
            angle = 0.4 * t + index
            path = np.stack([2000 * np.cos(angle), 2000 * np.sin(angle), np.zeros_like(t)], axis=-1)
            swing = 80 * np.sin(2 * np.pi * 1.2 * t)[:, None, None] * rng.uniform(-1, 1, (1, 17, 3))
            world = template[None] + path[:, None] + swing + rng.normal(0, 5, (n_frames, 17, 3))
            world = world[None].astype(np.float32)
            joints_cam = camera.world_to_camera(world.astype(np.float64))
            xy = camera.project(joints_cam)
            keypoints = Keypoints2D.create(xy)
            return {"joints_world": world, "joints_cam": joints_cam.astype(np.float32), "timestamps": t, "keypoints": {"gt": keypoints}}

        return arrays

    sequences = [
        Sequence(
            sequence_id=f"S{index % 5 + 1}/{ACTIONS[index % len(ACTIONS)]} {index}", subjects=[f"S{index % 5 + 1}"], fps=fps,
            action=ACTIONS[index % len(ACTIONS)], take=f"take{index}", camera=camera, person_ids=[0], n_frames=n_frames,
            keypoint_sources=["gt"], _loader=loader(index),
        )
        for index in range(n_sequences)
    ]
    return Dataset("memory", sequences, "h36m17", splits={"test": [s.sequence_id for s in sequences]},
                   provenance={"converter": "benchmarks/memory.py"})


def write_checkpoint_and_protocol(root: Path) -> None:
    """A small untrained tcn checkpoint and the sample protocol scoring the whole split once (no occlusion)."""
    import torch

    from posebench.checkpoints import save_checkpoint
    from posebench.data import NORMALISATION
    from posebench.models import create_model
    from posebench.protocols import get_protocol, write_protocol

    torch.manual_seed(0)
    model = create_model("tcn", filter_widths=(3, 3, 3), channels=64)
    save_checkpoint(root / "tcn.safetensors", model.eval(), skeleton="h36m17", normalisation=NORMALISATION, training_data_hash=None)
    protocol = get_protocol("sample")
    protocol = replace(protocol, name="memory", dataset="memory", occlusion=replace(protocol.occlusion, ratios=(0.0,)))
    write_protocol(protocol, root / "memory.toml")


def run_stage(stage: str, root: Path, n_sequences: int, n_frames: int) -> dict:
    """Run one stage in this process; returns its figures."""
    import posebench  # noqa: F401  (the baseline includes the import)
    import torch  # noqa: F401

    start = time.perf_counter()
    fmt = stage.rsplit("-", 1)[-1]
    path = root / ("d.parquet" if fmt == "parquet" else "d.h5")
    if stage.startswith("save"):
        synthetic_dataset(n_sequences, n_frames).save(path, format=fmt)
    elif stage.startswith("validate"):
        from posebench.cli import cli

        cli.main(["validate", str(path)], standalone_mode=False)
    elif stage.startswith("evaluate"):
        from posebench.runner import run_benchmark

        output = run_benchmark(
            ["tcn"], checkpoints=[root / "tcn.safetensors"], dataset=path, protocol=root / "memory.toml",
            out=root / f"run-{fmt}", device="cpu", progress=False,
        )
        assert output.manifest["dataset"]["scored_frames"] > 0
    return {"stage": stage, "peak_rss_mib": round(peak_rss_mb(), 1), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=100)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="Directory for the files (default: a temporary one, removed after).")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.root, args.sequences, args.frames)))
        return
    total = args.sequences * args.frames
    print(f"dataset: {args.sequences} sequences x {args.frames:,} frames = {total:,} frames, 1 person, h36m17, gt 2D")
    dense_mib = total * 17 * (3 * 4 * 2 + 2 * 4 + 4 + 1) / 2**20
    print(f"dense arrays of the whole split (xy, confidence, occluded, joints_cam, joints_world): {dense_mib:.0f} MiB")
    with tempfile.TemporaryDirectory() as temporary:
        root = args.keep or Path(temporary)
        root.mkdir(parents=True, exist_ok=True)
        write_checkpoint_and_protocol(root)
        print(f"{'stage':<18}{'peak RSS (MiB)':>16}{'seconds':>10}")
        for stage in STAGES:
            command = [sys.executable, __file__, "--stage", stage, "--root", str(root),
                       "--sequences", str(args.sequences), "--frames", str(args.frames)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{stage:<18} failed:\n{done.stderr[-3000:]}")
                continue
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{stage:<18}{figures['peak_rss_mib']:>16.0f}{figures['seconds']:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
