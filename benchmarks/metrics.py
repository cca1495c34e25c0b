"""Throughput and peak memory of the streaming pose metrics.

Scores N frames (default 1,000,000 frames of 17 joints) in chunks through the accumulators, so
memory stays bounded by the chunk size, once per backend. Each backend runs in its own
subprocess so that its peak resident memory (``ru_maxrss``) is its own; for numpy the largest
``tracemalloc`` peak of one ``update`` call (the chunk's input arrays plus the scoring's
temporaries) is printed too (torch allocations are invisible to tracemalloc). Data generation is excluded from the timed part.

    python benchmarks/metrics.py [--frames 1000000] [--chunk 65536] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import torch

from posebench import metrics

N_JOINTS = 17
METRICS = {"p_mpjpe": metrics.PMPJPE, "mpjpe": metrics.MPJPE, "n_mpjpe": metrics.NMPJPE}


def _chunk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    gt = rng.normal(scale=300.0, size=(n, N_JOINTS, 3))
    return gt + rng.normal(scale=40.0, size=gt.shape), gt


def run_backend(backend: str, metric: str, n_frames: int, chunk: int, device: str) -> dict:
    """Score ``n_frames`` with one accumulator; returns timing and memory figures."""
    rss_after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(0)
    accumulator = METRICS[metric]()
    if backend == "numpy":
        tracemalloc.start()
    elapsed = 0.0
    traced_peak = 0
    for start in range(0, n_frames, chunk):
        pred, gt = _chunk(rng, min(chunk, n_frames - start))
        if backend == "torch":
            pred = torch.from_numpy(pred).to(device)
            gt = torch.from_numpy(gt).to(device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
        if backend == "numpy":
            tracemalloc.reset_peak()
        begin = time.perf_counter()
        accumulator.update(pred, gt)
        if backend == "torch" and device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - begin
        if backend == "numpy":
            traced_peak = max(traced_peak, tracemalloc.get_traced_memory()[1])
    value = accumulator.compute()
    return {
        "backend": backend if backend == "numpy" else f"torch-{device}",
        "metric": metric,
        "frames": n_frames,
        "value_mm": value,
        "seconds": elapsed,
        "frames_per_s": n_frames / elapsed,
        "tracemalloc_peak_mib": traced_peak / 2**20 if backend == "numpy" else None,
        "rss_after_imports_mib": rss_after_imports,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=65_536)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--metrics", default="p_mpjpe,mpjpe,n_mpjpe")
    parser.add_argument("--single", nargs=2, metavar=("BACKEND", "METRIC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(run_backend(args.single[0], args.single[1], args.frames, args.chunk, args.device)))
        return
    threads = torch.get_num_threads()
    print(f"{args.frames} frames x {N_JOINTS} joints, chunks of {args.chunk}, torch threads {threads}")
    header = (
        "metric",
        "backend",
        "frames/s",
        "seconds",
        "value mm",
        "tracemalloc MiB",
        "RSS start MiB",
        "max RSS MiB",
    )
    print("{:<9} {:<11} {:>12} {:>8} {:>10} {:>16} {:>14} {:>12}".format(*header))
    for metric in args.metrics.split(","):
        for backend in ("numpy", "torch"):
            options = ["--frames", str(args.frames), "--chunk", str(args.chunk), "--device", args.device]
            command = [sys.executable, __file__, *options, "--single", backend, metric]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            traced = result["tracemalloc_peak_mib"]
            print(
                f"{metric:<9} {result['backend']:<11} {result['frames_per_s']:>12,.0f} "
                f"{result['seconds']:>8.2f} {result['value_mm']:>10.4f} "
                f"{'-' if traced is None else f'{traced:.1f}':>16} "
                f"{result['rss_after_imports_mib']:>14.1f} {result['max_rss_mib']:>12.1f}"
            )


if __name__ == "__main__":
    main()
