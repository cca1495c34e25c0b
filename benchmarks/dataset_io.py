"""Write/read throughput of the two dataset layouts, and windowed reads against full loads.

Builds a synthetic dataset (default 200 sequences x 2 persons x 1,000 frames, h36m17, one 2D
source), saves it as Parquet and as HDF5, and prints frames/s for save, full load and 243-frame
window reads, plus sizes on disk. Usage: python benchmarks/dataset_io.py [--sequences N] [--frames F]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import posebench
from posebench.cameras import Camera
from posebench.dataset import Dataset, Keypoints2D, Sequence
from posebench.summary import size_on_disk


def build(n_sequences: int, n_frames: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    camera = Camera("cam", 1000, 1000, 1145.0, 1145.0, 500.0, 500.0, R=np.eye(3), t=np.array([0.0, 0.0, 5000.0]))
    sequences = []
    for i in range(n_sequences):
        world = rng.normal(0, 400, (2, n_frames, 17, 3)).astype(np.float32)
        xy = rng.uniform(0, 1000, (2, n_frames, 17, 2))
        sequences.append(
            Sequence.create(f"seq{i:05d}", ["a", "b"], world, 50.0, camera=camera, keypoints={"gt": Keypoints2D.create(xy)})
        )
    return Dataset("benchmark", sequences, "h36m17", splits={"test": [s.sequence_id for s in sequences]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=200)
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()
    dataset = build(args.sequences, args.frames)
    person_frames = 2 * args.sequences * args.frames
    print(f"dataset: {args.sequences} sequences x 2 persons x {args.frames} frames = {person_frames:,} person-frames")
    with tempfile.TemporaryDirectory() as root:
        for fmt, name in (("parquet", "d.parquet"), ("hdf5", "d.h5")):
            path = Path(root) / name
            start = time.perf_counter()
            dataset.save(path, format=fmt)
            save_s = time.perf_counter() - start

            start = time.perf_counter()
            loaded = posebench.load(path)
            for sequence in loaded:
                sequence.keypoints
            load_s = time.perf_counter() - start

            loaded = posebench.load(path)
            rng = np.random.default_rng(1)
            n_windows = 200
            start = time.perf_counter()
            for _ in range(n_windows):
                index = int(rng.integers(args.sequences))
                first = int(rng.integers(args.frames - 243))
                loaded.read_window(f"seq{index:05d}", 1, first, first + 243, ["joints_cam", "keypoints/gt"])
            window_s = time.perf_counter() - start
            print(
                f"{fmt:8s} size {size_on_disk(path) / 2**20:7.1f} MiB | save {person_frames / save_s:11,.0f} frames/s | "
                f"full load+validate {person_frames / load_s:11,.0f} frames/s | "
                f"243-frame windows {n_windows / window_s:8,.1f} windows/s ({window_s / n_windows * 1e3:.2f} ms each)"
            )


if __name__ == "__main__":
    main()
