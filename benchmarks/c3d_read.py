"""Speed of posebench's C3D reader against ezc3d and the c3d package, on the same files.

Reads every C3D file over 1 MB in tests/data/c3d (the CMU take 49_04.c3d among them) with each
library, best of --repeat runs, and prints milliseconds, point frames per second and how many
times faster posebench is. A library that cannot read a file is skipped for that file, with
its error. Usage: python benchmarks/c3d_read.py [--repeat 5] [--min-size 1000000] [files...]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from posebench.io.c3d import read_c3d

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "c3d"


def read_with_posebench(path: Path) -> int:
    return read_c3d(path).n_frames


def read_with_ezc3d(path: Path) -> int:
    import ezc3d

    return int(ezc3d.c3d(str(path))["data"]["points"].shape[2])


def read_with_c3d_package(path: Path) -> int:
    import c3d

    with open(path, "rb") as handle:
        return sum(1 for _ in c3d.Reader(handle).read_frames())


READERS: dict[str, Callable[[Path], int]] = {
    "posebench": read_with_posebench,
    "ezc3d": read_with_ezc3d,
    "c3d": read_with_c3d_package,
}


def best_time(reader: Callable[[Path], int], path: Path, repeat: int) -> tuple[float, int]:
    """Fastest of ``repeat`` reads (seconds) and the number of frames read."""
    best = math.inf
    frames = 0
    for _ in range(repeat):
        start = time.perf_counter()
        frames = reader(path)
        best = min(best, time.perf_counter() - start)
    return best, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="C3D files (default: tests/data/c3d)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per file and library")
    parser.add_argument(
        "--min-size", type=int, default=1_000_000, help="bytes; smaller files skipped"
    )
    args = parser.parse_args()
    files = args.files or sorted(p for p in DATA.rglob("*") if p.suffix.lower() == ".c3d")
    files = [path for path in files if path.stat().st_size > args.min_size]
    warnings.simplefilter("ignore")

    print(f"{len(files)} files over {args.min_size} bytes, best of {args.repeat} runs")
    print(
        f"{'file':42s} {'frames':>6s} {'library':>9s} {'ms':>8s} {'frames/s':>10s} {'posebench x':>11s}"
    )
    totals = {name: [0.0, 0.0] for name in READERS}
    ratios: dict[str, list[float]] = {name: [] for name in READERS if name != "posebench"}
    for path in files:
        label = str(path.relative_to(DATA)) if path.is_relative_to(DATA) else path.name
        ours, frames = best_time(read_with_posebench, path, args.repeat)
        print(
            f"{label[-42:]:42s} {frames:6d} {'posebench':>9s} {ours * 1e3:8.2f} {frames / ours:10.0f}"
        )
        totals["posebench"][1] += ours
        for name, reader in READERS.items():
            if name == "posebench":
                continue
            try:
                seconds, _ = best_time(reader, path, args.repeat)
            except Exception as error:  # a third-party reader failing is reported, not fatal
                print(
                    f"{'':42s} {'':6s} {name:>9s}  skipped: cannot read ({type(error).__name__}: {str(error)[:60]})"
                )
                continue
            ratios[name].append(seconds / ours)
            totals[name][0] += seconds
            totals[name][1] += ours
            print(
                f"{'':42s} {'':6s} {name:>9s} {seconds * 1e3:8.2f} {frames / seconds:10.0f} {seconds / ours:10.1f}x"
            )
    print()
    for name, values in ratios.items():
        if not values:
            print(f"{name}: read none of the files")
            continue
        geometric = math.exp(sum(math.log(v) for v in values) / len(values))
        theirs, ours_total = totals[name]
        print(
            f"posebench vs {name} on the {len(values)} files it reads: {theirs / ours_total:.1f}x "
            f"faster in total, geometric mean {geometric:.1f}x, slowest-file ratio {min(values):.1f}x"
        )


if __name__ == "__main__":
    main()
