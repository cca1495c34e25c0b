"""``posebench convert mmhuman``: multi-person captures filmed by hand-held (or static) cameras.

Reads the raw layout of docs/converters/mmhuman.md (mocap per take, one folder per video with
``camera.json``, a camera trajectory and OpenPose JSON, ``takes.csv``), synchronises each video
with the mocap, associates detected people with mocap subjects and writes one sequence per
(take, video) with the subjects' 3D joints, the per-frame camera, an ``openpose`` 2D source and a
``gt`` 2D source projected from the mocap. ``--pose2sim`` converts a Pose2Sim trial (static
calibrated cameras) through the same path.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from converters.mmhuman_associate import Association, associate, link_tracks, map_detections, pose_costs, subject_depth
from converters.mmhuman_layout import CameraSpec, TakeRow, read_camera_json, read_takes, take_videos
from converters.mmhuman_mocap import TakeMocap, camera_track, read_take_mocap, sample_at
from converters.mmhuman_pose2sim import pose2sim_layout
from converters.mmhuman_sync import SyncEstimate, estimate_offset, focal_length, frame_times, project_subjects
from converters.options import command_line, dataset_output_options
from posebench.cameras import Camera
from posebench.dataset import Dataset, Keypoints2D, Sequence, make_provenance
from posebench.dataset.info import sha256_of
from posebench.errors import LayoutError
from posebench.io.openpose import OpenPoseSequence, read_openpose_folder
from posebench.skeletons import get_skeleton
from posebench.virtual_cameras import render_keypoints

CONVERTER_VERSION = "1.0"
SKELETON = get_skeleton("h36m17")
#: Frame times within this many seconds outside the mocap range still count as inside.
RANGE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Options:
    """Conversion options (see :func:`convert_mmhuman`)."""

    estimate_sync: bool = False
    conf_threshold: float = 0.3
    max_gap: int = 10
    gate: float = 600.0
    hold: int = 5
    sync_window: float = 2.0
    markerset: str | None = None


@dataclass
class VideoReport:
    """What happened to one video: frames, sync and association figures."""

    sequence_id: str
    frames: int
    dropped: int
    offset: float
    sync_source: str
    estimate: SyncEstimate | None
    matched: dict[str, float]
    discarded: int
    tracks: int
    gates: dict[str, float]

    def as_dict(self) -> dict:
        """JSON-ready form stored in the provenance under ``videos``."""
        sync = {"frame0_mocap_time": self.offset, "source": self.sync_source}
        if self.estimate is not None:
            sync.update(score=self.estimate.score, second_best=self.estimate.second_score,
                        confidence=self.estimate.confidence, searched=[self.estimate.searched_from, self.estimate.searched_to])
        return {"frames": self.frames, "dropped_frames": self.dropped, "sync": sync, "matched_fraction": self.matched,
                "discarded_detections": self.discarded, "tracks": self.tracks, "gates_mm": self.gates}


def _openpose(spec: CameraSpec) -> OpenPoseSequence:
    if not spec.openpose.is_dir():
        raise LayoutError(f"{spec.openpose}: missing; each video folder needs its OpenPose JSON files in openpose/")
    sequence = read_openpose_folder(spec.openpose)
    if not np.array_equal(sequence.frames, np.arange(sequence.num_frames)):
        gaps = np.setdiff1d(np.arange(int(sequence.frames.max()) + 1), sequence.frames)[:5]
        raise LayoutError(
            f"{spec.openpose}: frame files must be numbered 0..F-1 without gaps (missing e.g. {gaps.tolist()}); "
            "OpenPose writes one file per video frame, also for frames without people"
        )
    return sequence


def _lens(spec: CameraSpec, camera_id: str, R: np.ndarray | None = None, t: np.ndarray | None = None) -> Camera:
    pose = {} if R is None else {"R": R, "t": t}
    return Camera(camera_id, spec.width, spec.height, spec.fx, spec.fy, spec.cx, spec.cy, spec.distortion, spec.coefficients, **pose)


def _subject_keypoints(association: Association, det_xy: np.ndarray, det_conf: np.ndarray, threshold: float) -> Keypoints2D:
    """The ``openpose`` source ``(P, F, 17)`` from the matched detection of each subject and frame."""
    match = association.match
    slot = np.maximum(match, 0)
    frames = np.arange(match.shape[0])[:, None]
    matched = (match >= 0)[..., None]
    xy = np.where(matched[..., None], det_xy[frames, slot], np.nan).transpose(1, 0, 2, 3)
    conf = np.where(matched, det_conf[frames, slot], 0.0).transpose(1, 0, 2)
    xy = np.where((conf > 0)[..., None], xy, np.nan)
    return Keypoints2D.create(xy, conf, (conf < threshold) | np.isnan(xy).any(axis=-1))


def convert_video(row: TakeRow, video: Path, spec: CameraSpec, mocap: TakeMocap, options: Options) -> tuple[Sequence, VideoReport]:
    """One sequence from one video of a take (steps in the module docstring)."""
    sequence_id = f"{row.take}/{video.name}"
    openpose = _openpose(spec)
    n_frames = openpose.num_frames
    track, trajectory_frames = camera_track(spec, mocap)
    if trajectory_frames is not None and trajectory_frames != n_frames:
        raise LayoutError(
            f"{spec.trajectory_csv}: {trajectory_frames} poses but {spec.openpose} has {n_frames} frame files; "
            "the trajectory needs one row per video frame"
        )
    lens = _lens(spec, sequence_id)
    det_xy, det_conf = map_detections(openpose.keypoints, openpose.confidence, openpose.layout)
    estimate = None
    if options.estimate_sync or spec.frame0_mocap_time is None:
        estimate = estimate_offset(mocap, track, lens, det_xy, det_conf, fps=spec.fps, clock_ratio=spec.clock_ratio,
                                   threshold=options.conf_threshold, gate=options.gate, recorded=spec.frame0_mocap_time,
                                   window=options.sync_window, where=str(video))
        offset = estimate.offset
    else:
        offset = spec.frame0_mocap_time
    times = frame_times(offset, spec.clock_ratio, spec.fps, np.arange(n_frames))
    keep = np.flatnonzero((times >= mocap.times[0] - RANGE_TOLERANCE) & (times <= mocap.times[-1] + RANGE_TOLERANCE))
    if keep.size == 0:
        raise LayoutError(
            f"{video}: no video frame falls inside the mocap's time range [{mocap.times[0]:.3f}, {mocap.times[-1]:.3f}] s "
            f"with frame0_mocap_time {offset:.3f} s; check the sync block of camera.json"
        )
    joints = sample_at(mocap.joints.transpose(1, 0, 2, 3), mocap.times, np.clip(times[keep], mocap.times[0], mocap.times[-1]))
    R, t = track.poses(keep, times[keep])
    joints_cam, pixels = project_subjects(joints, R, t, lens)
    present = np.arange(det_xy.shape[1])[None, :] < openpose.people_count[keep, None]
    cost = pose_costs(pixels, subject_depth(joints_cam), focal_length(lens), det_xy[keep], det_conf[keep], options.conf_threshold)
    tracks = link_tracks(det_xy[keep], present, openpose.person_ids[keep])
    association = associate(cost, present, tracks, options.gate, options.hold)
    static = bool(np.isfinite(R).all() and np.all(R == R[0]) and np.all(t == t[0]))
    camera = _lens(spec, sequence_id, R[:1] if static else R, t[:1] if static else t)
    world = joints.transpose(1, 0, 2, 3)
    gt_xy, gt_occluded = render_keypoints(world, camera)
    keypoints = {
        "openpose": _subject_keypoints(association, det_xy[keep], det_conf[keep], options.conf_threshold),
        "gt": Keypoints2D.create(gt_xy, np.where(np.isnan(gt_xy).any(axis=-1), 0.0, 1.0), gt_occluded),
    }
    sequence = Sequence.create(
        sequence_id, list(row.subjects), world, spec.fps / spec.clock_ratio, timestamps=times[keep], action=row.action,
        take=row.take, camera=camera, joints_cam=joints_cam.transpose(1, 0, 2, 3), keypoints=keypoints,
        attributes={"video": video.name, "video_frames": f"{keep[0]}:{keep[-1] + 1}", "frame0_mocap_time": repr(float(offset)),
                    "sync": "estimated" if estimate is not None else "camera.json"},
    )
    fractions = association.matched_fraction()
    report = VideoReport(sequence_id, int(keep.size), int(n_frames - keep.size), float(offset),
                         "estimated" if estimate is not None else "camera.json", estimate,
                         {s: float(f) for s, f in zip(row.subjects, fractions)}, association.discarded, association.tracks,
                         {s: float(g) for s, g in zip(row.subjects, association.gates)})
    return sequence, report


def _openpose_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.json")):
        digest.update(f"{path.name}:{sha256_of(path)}\n".encode())
    return digest.hexdigest()


def convert_mmhuman(rawdir: str | Path, *, options: Options = Options(), name: str = "mmhuman",
                    command: str | None = None, progress: bool = False) -> tuple[Dataset, list[VideoReport]]:
    """Convert a raw folder of the layout into a :class:`Dataset` and per-video reports."""
    rawdir = Path(rawdir)
    if not rawdir.is_dir():
        raise LayoutError(f"{rawdir}: not a folder; expected the raw layout (takes.csv, mocap/, videos/)")
    rows = read_takes(rawdir)
    sequences: list[Sequence] = []
    reports: list[VideoReport] = []
    notes: list[str] = []
    inputs: list[Path] = [rawdir / "takes.csv"]
    digests: dict[str, str] = {}
    splits: dict[str, list[str]] = {}
    jobs = [(row, video) for row in rows for video in take_videos(rawdir, row.take)]
    bar = tqdm(total=len(jobs), desc="converting", unit="video", disable=not progress)
    for row in rows:
        videos = take_videos(rawdir, row.take)
        specs = [read_camera_json(video / "camera.json") for video in videos]
        bodies = {spec.rigid_body.name for spec in specs if spec.rigid_body is not None}
        mocap = read_take_mocap(rawdir, row, bodies, options.markerset, options.max_gap)
        notes.extend(mocap.notes)
        inputs.extend(mocap.files)
        for video, spec in zip(videos, specs):
            sequence, report = convert_video(row, video, spec, mocap, options)
            sequences.append(sequence)
            reports.append(report)
            inputs.append(spec.path)
            if spec.trajectory_csv is not None:
                inputs.append(spec.trajectory_csv)
            digests[sequence.sequence_id] = _openpose_digest(spec.openpose)
            if report.dropped:
                notes.append(f"{sequence.sequence_id}: {report.dropped} video frames outside the mocap's time range dropped")
            if row.split:
                splits.setdefault(row.split, []).append(sequence.sequence_id)
            bar.update(1)
    bar.close()
    sources = {
        "openpose": {"skeleton": SKELETON.name, "description": (
            f"OpenPose detections matched to mocap subjects, mapped to h36m17 (confidence = smallest confidence "
            f"of the keypoints a joint's formula uses; occluded below {options.conf_threshold})")},
        "gt": {"skeleton": SKELETON.name, "description": "projection of the mocap joints through the video camera"},
    }
    provenance = make_provenance(
        "mmhuman", CONVERTER_VERSION, inputs, command=command, notes=notes,
        extra={"options": {"estimate_sync": options.estimate_sync, "conf_threshold": options.conf_threshold,
                           "max_gap": options.max_gap, "gate": options.gate, "hold": options.hold,
                           "sync_window": options.sync_window, "markerset": options.markerset},
               "openpose_digests": digests, "videos": {r.sequence_id: r.as_dict() for r in reports}},
    )
    dataset = Dataset(name, sequences, SKELETON, keypoint_sources=sources, splits=splits, provenance=provenance,
                      description=f"multi-person moving-camera capture converted from {rawdir.name}")
    return dataset, reports


def _summary(reports: list[VideoReport], output: Path, notes: list[str]) -> str:
    lines = [f"wrote {output} ({len(reports)} sequences)"]
    for r in reports:
        sync = f"frame 0 at mocap {r.offset:.4f} s ({r.sync_source}"
        sync += f", confidence {r.estimate.confidence:.2f})" if r.estimate is not None else ")"
        matched = ", ".join(f"{s} {f:.0%}" for s, f in r.matched.items())
        lines.append(f"  {r.sequence_id}: {r.frames} frames ({r.dropped} dropped), {sync}; matched: {matched}; "
                     f"{r.discarded} other detections discarded")
    lines.extend(f"  note: {n}" for n in notes)
    return "\n".join(lines)


@click.command("mmhuman")
@dataset_output_options
@click.argument("rawdir", type=click.Path(path_type=Path))
@click.option("--estimate-sync", is_flag=True, help="Estimate each video's offset from the detections (always done when camera.json has none).")
@click.option("--sync-window", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True, help="Search ± this many seconds around a recorded offset.")
@click.option("--conf-threshold", type=click.FloatRange(0, 1), default=0.3, show_default=True, help="Keypoints below this confidence are occluded.")
@click.option("--gate", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True, help="Largest association cost: median joint distance in mm at the subject's depth.")
@click.option("--hold", type=click.IntRange(min=1), default=5, show_default=True, help="Frames of contrary evidence before a track changes subject.")
@click.option("--max-gap", type=click.IntRange(min=0), default=10, show_default=True, help="Fill mocap gaps up to this many mocap frames.")
@click.option("--markerset", help="Marker set name or mapping file for marker mocap (default: detected).")
@click.option("--pose2sim", is_flag=True, help="RAWDIR is a Pose2Sim trial folder (static calibrated cameras).")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), help="With --pose2sim: the calibration TOML (default: found beside the trial).")
def command(rawdir, output, fmt, estimate_sync, sync_window, conf_threshold, gate, hold, max_gap, markerset, pose2sim,
            calibration, name, overwrite):
    """Convert a multi-person moving-camera recording (RAWDIR) into a dataset.

    \b
    Examples:
      posebench convert mmhuman raw/ -o mmhuman.parquet
      posebench convert mmhuman raw/ -o mmhuman.parquet --estimate-sync
      posebench convert mmhuman S00_P01_T02_Participants1-2 --pose2sim -o p2s.parquet
    """
    options = Options(estimate_sync=estimate_sync, conf_threshold=conf_threshold, max_gap=max_gap, gate=gate, hold=hold,
                      sync_window=sync_window, markerset=markerset)
    line = command_line()
    with tempfile.TemporaryDirectory() as scratch:
        source = pose2sim_layout(rawdir, Path(scratch) / "layout", calibration) if pose2sim else rawdir
        dataset, reports = convert_mmhuman(source, options=options, name=name or output.stem, command=line, progress=True)
    dataset.save(output, format=fmt, overwrite=overwrite)
    click.echo(_summary(reports, output, dataset.provenance.get("notes", [])))
