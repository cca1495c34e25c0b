"""``posebench convert mocap``: C3D, BVH and TRC motion capture into the unified schema.

Each input file holds one or more persons (C3D/TRC labels ``Subject:MARKER`` split by prefix; a
BVH file is one person). Markers become h36m17 joints through a marker set; BVH joints through
forward kinematics and the CMU mapping. With ``--take`` all inputs form one take (persons of
several files, e.g. CMU's two-subject takes, share one world frame); otherwise each file is a take.
``--cameras`` adds virtual cameras, one sequence per (take, camera), with projected 2D ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping

import click
import numpy as np
from tqdm import tqdm

from converters.options import command_line, dataset_output_options
from posebench.dataset import Dataset, Keypoints2D, Sequence, make_provenance
from posebench.errors import PosebenchError
from posebench.io.bvh import bvh_to_h36m17, read_bvh
from posebench.io.c3d import read_c3d
from posebench.io.trc import read_trc
from posebench.markersets import resolve_markerset
from posebench.skeletons import get_skeleton
from posebench.timeseries import fill_gaps, resample
from posebench.virtual_cameras import make_cameras, render_keypoints

CONVERTER_VERSION = "1.0"
ALIASES = ("c3d",)
SUFFIXES = {".c3d": "c3d", ".bvh": "bvh", ".trc": "trc"}
SKELETON = get_skeleton("h36m17")


@dataclass
class PersonTrack:
    """One person's h36m17 joints (F, 17, 3) in mm, world frame, with their frame times."""

    subject: str
    joints: np.ndarray
    times: np.ndarray
    source: str


@dataclass
class TakeReport:
    """What happened to one take during conversion (printed and stored as provenance notes)."""

    notes: list[str] = field(default_factory=list)


def split_persons(labels: list[str]) -> dict[str, list[int]]:
    """Label indices by person: ``Subject:MARKER`` by prefix; unprefixed labels form one person ``""``."""
    persons: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        subject = label.split(":", 1)[0].strip() if ":" in label else ""
        persons.setdefault(subject, []).append(index)
    return persons


def _strip_prefix(label: str) -> str:
    return label.split(":", 1)[1].strip() if ":" in label else label.strip()


def marker_persons(
    points: np.ndarray, labels: list[str], rate: float, start_time: float, source: Path,
    markerset: str | None, report: TakeReport,
) -> list[PersonTrack]:
    """Persons of a marker recording (C3D or TRC) as h36m17 joints."""
    tracks = []
    for subject, indices in split_persons(labels).items():
        valid = np.isfinite(points[:, indices]).all(axis=-1).any(axis=0)
        dropped = [labels[i] for i, ok in zip(indices, valid) if not ok]
        if dropped:
            report.notes.append(f"{source.name}: dropped {len(dropped)} points with no valid sample: {', '.join(dropped)}")
        kept = [i for i, ok in zip(indices, valid) if ok]
        names = [_strip_prefix(labels[i]) for i in kept]
        chosen = resolve_markerset(markerset, names)
        report.notes.append(f"{source.name}: subject {subject or source.stem!r} mapped with marker set {chosen.name!r}")
        joints = chosen.apply(points[:, kept], names)
        times = start_time + np.arange(points.shape[0]) / rate
        tracks.append(PersonTrack(subject or source.stem, joints, times, source.name))
    return tracks


def read_persons(path: Path, markerset: str | None, report: TakeReport) -> list[PersonTrack]:
    """The persons of one mocap file, joints in mm in the file's own world axes."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind == "c3d":
        recording = read_c3d(path)
        if not recording.rate > 0:
            raise PosebenchError(f"{path}: the file states no frame rate (POINT:RATE and the header are 0); it cannot be converted to timed poses")
        start = (recording.first_frame - 1) / recording.rate
        return marker_persons(recording.points, list(recording.labels), recording.rate, start, path, markerset, report)
    if kind == "trc":
        recording = read_trc(path)
        return marker_persons(recording.points, list(recording.marker_names), recording.rate, float(recording.times[0]), path, markerset, report)
    if kind == "bvh":
        motion = read_bvh(path)
        report.notes.append(f"{path.name}: BVH units taken as {motion.units_assumed!r} ({motion.mm_per_unit:g} mm per unit)")
        times = np.arange(motion.num_frames) * motion.frame_time
        return [PersonTrack(path.stem, bvh_to_h36m17(motion), times, path.name)]
    raise PosebenchError(f"{path}: unknown mocap format {path.suffix!r}; posebench reads .c3d, .bvh and .trc")


AXES = np.eye(3)


def up_axis_rotation(joints: np.ndarray) -> np.ndarray:
    """The proper rotation taking the recording's up axis to +z.

    The up axis is the signed coordinate axis closest to the median direction from the ankles to
    the head top over all frames and persons; the rotation maps it to +z by a quarter or half turn,
    keeping the coordinate system right-handed.
    """
    head = joints[..., SKELETON.index("head_top"), :]
    feet = joints[..., [SKELETON.index("l_ankle"), SKELETON.index("r_ankle")], :].mean(axis=-2)
    direction = np.nanmedian((head - feet).reshape(-1, 3), axis=0)
    if not np.all(np.isfinite(direction)):
        return np.eye(3)
    axis = int(np.argmax(np.abs(direction)))
    up = AXES[axis] * np.sign(direction[axis])
    if np.allclose(up, [0, 0, 1]):
        return np.eye(3)
    if np.allclose(up, [0, 0, -1]):
        return np.diag([1.0, -1.0, -1.0])
    pivot = np.cross(up, [0.0, 0.0, 1.0])
    pivot /= np.linalg.norm(pivot)
    # rotation by +90 degrees about ``pivot`` (Rodrigues with sin = 1, cos = 0)
    K = np.array([[0, -pivot[2], pivot[1]], [pivot[2], 0, -pivot[0]], [-pivot[1], pivot[0], 0]])
    return np.eye(3) + K + K @ K


def nominal_rate(times: np.ndarray) -> float:
    """Frame rate from frame times, snapped to the nearest integer within 0.01 %.

    Files store the frame period with a few digits (CMU's BVH: 0.0083333 s), which would make
    120 Hz read as 120.0005 Hz.
    """
    if len(times) < 2:
        return 1.0
    rate = 1.0 / float(np.median(np.diff(times)))
    return float(round(rate)) if abs(rate - round(rate)) <= 1e-4 * rate else rate


def align_take(tracks: list[PersonTrack], report: TakeReport) -> tuple[np.ndarray, np.ndarray]:
    """Stack persons on their common time range: joints (P, F, 17, 3) and times (F,)."""
    rates = {round(1.0 / np.median(np.diff(t.times)), 6) if len(t.times) > 1 else None for t in tracks}
    if len(rates) > 1:
        raise PosebenchError(
            f"inputs of one take have different frame rates {sorted(r for r in rates if r)} Hz; "
            "convert them as separate takes or resample them first"
        )
    start = max(t.times[0] for t in tracks)
    stop = min(t.times[-1] for t in tracks)
    if stop < start:
        raise PosebenchError("inputs of one take do not overlap in time; convert them as separate takes")
    step = np.median(np.diff(tracks[0].times)) if len(tracks[0].times) > 1 else 1.0
    stacked = []
    for track in tracks:
        keep = (track.times >= start - step / 2) & (track.times <= stop + step / 2)
        stacked.append(track.joints[keep])
        if not keep.all():
            report.notes.append(f"{track.source}: {int((~keep).sum())} frames outside the take's common time range dropped")
    frames = {len(s) for s in stacked}
    if len(frames) != 1:
        raise PosebenchError(f"inputs of one take have different frame counts on their common range: {sorted(frames)}")
    times = tracks[0].times[(tracks[0].times >= start - step / 2) & (tracks[0].times <= stop + step / 2)]
    return np.stack(stacked), times - times[0]


def group_inputs(inputs: list[str], take: str | None) -> dict[str, list[Path]]:
    """Inputs grouped into takes.

    With ``take`` every input belongs to that take. Otherwise each input is a take named after
    its file stem, except that ``a.bvh+b.bvh`` (files joined by ``+``, when no file has that
    literal name) is one take named after its first file: several subjects in one world frame.
    """
    if not inputs:
        raise PosebenchError("no input files given")
    if take is not None:
        return {take: [Path(p) for p in inputs]}
    groups: dict[str, list[Path]] = {}
    for item in inputs:
        members = [Path(item)] if Path(item).exists() or "+" not in item else [Path(p) for p in item.split("+")]
        name = members[0].stem
        if name in groups:
            raise PosebenchError(f"two takes would both be named {name!r}; pass --take, join files with '+', or rename them")
        groups[name] = members
    return groups


def convert_mocap(
    inputs: Iterable[str | Path],
    *,
    take: str | None = None,
    action: str | Mapping[str, str] | None = None,
    subjects: list[str] | Mapping[str, list[str]] | None = None,
    markerset: str | None = None,
    fps: float | None = None,
    max_gap: int = 10,
    cameras: str | None = None,
    seed: int = 0,
    splits: dict[str, list[str]] | None = None,
    name: str = "mocap",
    command: str | None = None,
    progress: bool = False,
) -> Dataset:
    """Convert mocap files into a :class:`Dataset` (see the module docstring)."""
    groups = group_inputs([str(p) for p in inputs], take)
    paths = [p for members in groups.values() for p in members]
    for option, value in (("--action", action), ("--subjects", subjects)):
        unknown = sorted(set(value) - set(groups)) if isinstance(value, Mapping) else []
        if unknown:
            raise PosebenchError(f"{option} names takes {unknown} that are not among the takes {sorted(groups)}")
    notes: list[str] = []
    sequences: list[Sequence] = []
    bar = tqdm(total=len(paths), desc="converting", unit="file", disable=not progress)
    for take_index, (take_name, take_paths) in enumerate(groups.items()):
        report = TakeReport()
        tracks = []
        for path in take_paths:
            tracks.extend(read_persons(path, markerset, report))
            bar.update(1)
        joints, times = align_take(tracks, report)
        rotation = up_axis_rotation(joints)
        if not np.allclose(rotation, np.eye(3)):
            joints = joints @ rotation.T
            report.notes.append(f"take {take_name!r}: rotated so that the recording's up axis becomes +z")
        joints, filled = fill_gaps(joints.transpose(1, 0, 2, 3), max_gap=max_gap)
        joints = joints.transpose(1, 0, 2, 3)
        filled = filled.transpose(1, 0, 2)
        if filled.any():
            report.notes.append(f"take {take_name!r}: {int(filled.sum())} joint samples filled by cubic interpolation (gaps <= {max_gap} frames)")
        rate = nominal_rate(times)
        if fps is not None:
            resampled, times = resample(joints.transpose(1, 0, 2, 3), times, fps)
            joints = resampled.transpose(1, 0, 2, 3)
            report.notes.append(f"take {take_name!r}: resampled from {rate:.6g} Hz to {fps:g} Hz")
            rate = fps
        names = [t.subject for t in tracks]
        chosen = subjects.get(take_name) if isinstance(subjects, Mapping) else subjects
        if chosen is not None:
            if len(chosen) != len(names):
                raise PosebenchError(f"--subjects names {len(chosen)} persons but take {take_name!r} has {len(names)}: {names}")
            names = list(chosen)
        label = action.get(take_name) if isinstance(action, Mapping) else action
        sequences.extend(_take_sequences(take_name, label or take_name, names, joints, times, rate, cameras, seed + take_index))
        notes.extend(report.notes)
    bar.close()
    return Dataset(
        name,
        sequences,
        SKELETON,
        keypoint_sources={"gt": {"skeleton": SKELETON.name, "description": "projection of the mocap joints through the virtual camera"}} if cameras else {},
        splits=_splits(splits, sequences),
        provenance=make_provenance("mocap", CONVERTER_VERSION, paths, command=command, notes=notes,
                                   extra={"options": {"markerset": markerset, "fps": fps, "max_gap": max_gap, "cameras": cameras, "seed": seed}}),
        description=f"motion capture converted from {len(paths)} file(s)",
    )


def _take_sequences(take: str, action: str, subjects: list[str], joints: np.ndarray, times: np.ndarray,
                    rate: float, cameras: str | None, seed: int) -> list[Sequence]:
    world = joints.astype(np.float32)
    if cameras is None:
        return [Sequence.create(take, subjects, world, rate, timestamps=times, action=action, take=take)]
    sequences = []
    for camera in make_cameras(cameras, joints, seed=seed, fps=rate):
        camera = replace(camera, camera_id=f"{take}/{camera.camera_id}")
        xy, occluded = render_keypoints(joints, camera)
        confidence = np.where(np.isnan(xy).any(axis=-1), 0.0, 1.0)
        sequences.append(
            Sequence.create(
                camera.camera_id, subjects, world, rate, timestamps=times, action=action, take=take,
                camera=camera, keypoints={"gt": Keypoints2D.create(xy, confidence, occluded)},
            )
        )
    return sequences


def _splits(splits: dict[str, list[str]] | None, sequences: list[Sequence]) -> dict[str, list[str]]:
    if not splits:
        return {}
    takes = {s.take for s in sequences}
    result = {}
    for split, members in splits.items():
        unknown = sorted(set(members) - takes)
        if unknown:
            raise PosebenchError(f"split {split!r} names takes {unknown} that are not among the converted takes {sorted(takes)}")
        result[split] = [s.sequence_id for s in sequences if s.take in members]
    return result


def _parse_split(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, list[str]]:
    splits: dict[str, list[str]] = {}
    for value in values:
        split, sep, takes = value.partition("=")
        if not sep or not split or not takes:
            raise click.BadParameter(f"{value!r}: expected SPLIT=TAKE[,TAKE...], e.g. test=18_01")
        splits.setdefault(split, []).extend(t for t in takes.split(",") if t)
    return splits


@click.command("mocap")
@dataset_output_options
@click.argument("inputs", nargs=-1, required=True)
@click.option("--take", help="Merge all inputs into one take of this name (persons share one world frame).")
@click.option("--action", "actions", multiple=True, help="Action label of every take, or TAKE=LABEL for one take (repeatable; default: the take name).")
@click.option("--subjects", "subjects", multiple=True, help="Subject names A,B (one per person, input order) for every take, or TAKE=A,B for one take (repeatable).")
@click.option("--markerset", help="Built-in marker set name or a TOML/YAML mapping file (default: detected).")
@click.option("--fps", type=float, help="Resample to this frame rate (Hz).")
@click.option("--max-gap", type=click.IntRange(min=0), default=10, show_default=True, help="Fill gaps up to this many frames by cubic interpolation.")
@click.option("--cameras", help="Virtual cameras, e.g. ring4, handheld, ring4+handheld:seed=3 (see docs/virtual_cameras.md).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the hand-held camera paths (take i uses seed + i).")
@click.option("--split", "splits", multiple=True, callback=_parse_split, help="SPLIT=TAKE[,TAKE...]; repeatable.")
def command(inputs, output, fmt, take, actions, subjects, markerset, fps, max_gap, cameras, seed, splits, name, overwrite):
    """Convert C3D, BVH or TRC motion capture (INPUT...) into a dataset.

    Each INPUT is a take; join files with '+' (a.bvh+b.bvh) to make the subjects of several files
    one take, or pass --take to make all inputs one take.

    \b
    Examples:
      posebench convert mocap walk.c3d -o walk.parquet
      posebench convert mocap 18_01.bvh 19_01.bvh --take 18_01 -o shake.parquet --cameras ring4
      posebench convert mocap 09_03.bvh 18_01.bvh+19_01.bvh -o two_takes.parquet
    """
    for path in (p for members in group_inputs([str(i) for i in inputs], take).values() for p in members):
        if not path.is_file():
            raise PosebenchError(f"{path}: no such file")
    dataset = convert_mocap(
        inputs, take=take, action=_per_take(actions, lambda v: v, "--action"),
        subjects=_per_take(subjects, lambda v: v.split(","), "--subjects"),
        markerset=markerset, fps=fps, max_gap=max_gap, cameras=cameras, seed=seed, splits=splits,
        name=name or output.stem, command=command_line(), progress=len(inputs) > 1,
    )
    dataset.save(output, format=fmt, overwrite=overwrite)
    click.echo(_summary(dataset, output))


def _per_take(values: tuple[str, ...], convert, option: str):
    """One value for every take (``V``), or a mapping from ``TAKE=V`` values; not both."""
    if not values:
        return None
    keyed = [v for v in values if "=" in v]
    if not keyed:
        if len(values) > 1:
            raise PosebenchError(f"{option} was given {len(values)} times without TAKE=; give it once, or as TAKE=VALUE per take")
        return convert(values[0])
    if len(keyed) != len(values):
        raise PosebenchError(f"{option}: mix of TAKE=VALUE and plain values; use one form")
    return {take: convert(value) for take, _, value in (v.partition("=") for v in values)}


def _summary(dataset: Dataset, output: Path) -> str:
    lines = [f"wrote {output} ({len(dataset)} sequences)"]
    for sequence in dataset:
        world = sequence.joints_world
        gaps = np.isnan(world).any(axis=-1)
        joints_with_gaps = [SKELETON.joints[j] for j in np.flatnonzero(gaps.any(axis=(0, 1)))]
        lines.append(
            f"  {sequence.sequence_id}: {sequence.n_persons} persons ({', '.join(sequence.subjects)}), "
            f"{sequence.n_frames} frames at {sequence.fps:g} Hz, "
            + (f"joints with gaps: {', '.join(joints_with_gaps)}" if joints_with_gaps else "no gaps")
        )
    lines.extend(f"  note: {n}" for n in dataset.provenance.get("notes", []))
    return "\n".join(lines)
