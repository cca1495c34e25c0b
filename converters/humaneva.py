"""``posebench convert humaneva``: HumanEva-I, from VideoPose3D's npz files or from the original release.

Input layouts (detected under ROOT, see docs/converters/humaneva.md):

- VideoPose3D: ``data_3d_humaneva15.npz`` (subjects ``Train/S1``, ``Validate/S1`` ...; sequences
  ``"<Action> <trial> chunk<i>"``) with ``data_2d_humaneva15_<source>.npz`` beside it;
- the release: ``S{1,2,3}/Mocap_Data/<Action>_<trial>.c3d``, ``Calibration_Data/C{1,2,3}.cal`` and
  ``Sync_Data/<Action>_<trial>_(C{1,2,3}).ofs``.

Sequences are ``"{split}/{subject}/{action} {trial} chunk{i}/{camera}"`` at 60 Hz with the 15-joint
HumanEva skeleton; VideoPose3D's "Train" subjects form the split ``train``, "Validate" the split
``test``. Where ``.cal`` files are present the sequences get calibrated cameras and ``gt`` 2D is
projected; otherwise (VideoPose3D files alone carry no intrinsics) sequences have no camera and
``gt`` is VideoPose3D's ground-truth 2D file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import click
import numpy as np
from tqdm import tqdm

from converters.humaneva_files import CAMERAS, FRAME_RANGES, Sync, check_extrinsics, read_cal, read_ofs
from converters.videopose3d import Detections, align_length, keypoint_arrays, read_2d_file, read_3d_file
from converters.options import command_line, dataset_output_options, save_and_report
from posebench.cameras import Camera
from posebench.dataset import Dataset, Keypoints2D, Sequence, make_provenance
from posebench.errors import FormatError, PosebenchError
from posebench.io.c3d import read_c3d
from posebench.skeletons import get_skeleton

CONVERTER_VERSION = "1.0"
ALIASES = ("humaneva-i",)
FPS = 60.0
SKELETON = get_skeleton("humaneva15")
SUBJECTS = ("S1", "S2", "S3")
SPLITS = {"Train": "train", "Validate": "test"}
VP3D_3D_FILE = "data_3d_humaneva15.npz"
VP3D_2D_PREFIX = "data_2d_humaneva15_"
#: VideoPose3D's scripts skip this take: its mocap is damaged.
DAMAGED = ("S3", "ThrowCatch")
GT_TOLERANCE_PX = 1.0
_SEQUENCE_NAME = re.compile(r"^(?P<action>\S+) (?P<trial>\d+) chunk(?P<chunk>\d+)$")

#: humaneva15 joint -> C3D point labels averaged into it (release layout). The points are the
#: Vicon joint centres of HumanEva's mocap files; see the documentation for how this differs
#: from the toolbox's body model.
JOINT_LABELS: dict[str, tuple[str, ...]] = {
    "pelvis": ("JOINT_CENTER_PELVIS",),
    "thorax": ("JOINT_CENTER_THORAX", "JOINT_CENTER_HEAD"),
    "l_shoulder": ("JOINT_CENTER_LEFT_SHOULDER",),
    "l_elbow": ("JOINT_CENTER_LEFT_ELBOW",),
    "l_wrist": ("JOINT_CENTER_LEFT_WRIST",),
    "r_shoulder": ("JOINT_CENTER_RIGHT_SHOULDER",),
    "r_elbow": ("JOINT_CENTER_RIGHT_ELBOW",),
    "r_wrist": ("JOINT_CENTER_RIGHT_WRIST",),
    "l_hip": ("JOINT_CENTER_LEFT_HIP",),
    "l_knee": ("JOINT_CENTER_LEFT_KNEE",),
    "l_ankle": ("JOINT_CENTER_LEFT_ANKLE",),
    "r_hip": ("JOINT_CENTER_RIGHT_HIP",),
    "r_knee": ("JOINT_CENTER_RIGHT_KNEE",),
    "r_ankle": ("JOINT_CENTER_RIGHT_ANKLE",),
    "head": ("JOINT_CENTER_HEAD",),
}


@dataclass
class Chunk:
    """A contiguous run of valid mocap: per camera the world joints (F, 15, 3) in mm."""

    split: str
    subject: str
    action: str
    index: int
    world: dict[str, np.ndarray]
    first_frame: int | None = None

    @property
    def name(self) -> str:
        return f"{self.action} chunk{self.index}"


def detect_layout(root: Path) -> str:
    """``videopose3d`` or ``release``; an error listing the expected files otherwise."""
    if (root / VP3D_3D_FILE).is_file():
        return "videopose3d"
    if any((root / subject / "Mocap_Data").is_dir() for subject in SUBJECTS):
        return "release"
    raise PosebenchError(
        f"{root}: no HumanEva-I data found. Expected one of:\n"
        f"  VideoPose3D: ROOT/{VP3D_3D_FILE} (with optional ROOT/{VP3D_2D_PREFIX}<source>.npz)\n"
        "  the release: ROOT/S1/Mocap_Data/<Action>_<trial>.c3d with ROOT/S1/Calibration_Data/C1.cal .. C3.cal "
        "and ROOT/S1/Sync_Data/<Action>_<trial>_(C1).ofs .. (C3) (and S2, S3)"
    )


def read_videopose3d(root: Path, notes: list[str]) -> list[Chunk]:
    """Chunks of ``data_3d_humaneva15.npz`` (subjects ``Train/S1`` ...)."""
    chunks = []
    for vp3d_subject, sequences in sorted(read_3d_file(root / VP3D_3D_FILE, SKELETON.n_joints).items()):
        split, _, subject = vp3d_subject.partition("/")
        if split not in SPLITS:
            notes.append(f"{VP3D_3D_FILE}: subject {vp3d_subject!r} is not Train/ or Validate/; skipped")
            continue
        for name, world in sorted(sequences.items()):
            match = _SEQUENCE_NAME.match(name)
            if match is None:
                raise FormatError(f"{root / VP3D_3D_FILE}: sequence {vp3d_subject}/{name!r} is not named '<Action> <trial> chunk<i>'")
            action = f"{match['action']} {match['trial']}"
            chunks.append(Chunk(split, subject, action, int(match["chunk"]), dict.fromkeys(CAMERAS, world)))
    return chunks


def joints_from_points(points: np.ndarray, labels: list[str], path: Path, table: Mapping[str, tuple[str, ...]]) -> np.ndarray:
    """humaneva15 joints (F, 15, 3) as means of labelled C3D points; NaN where a point is missing."""
    names = [label.split(":", 1)[-1].strip().upper() for label in labels]
    missing = sorted({label for group in table.values() for label in group if label.upper() not in names})
    if missing:
        raise FormatError(
            f"{path}: points {missing} are missing; the file has {names}. Pass a joint label table "
            "(--joint-labels FILE) naming this file's points"
        )
    joints = np.stack(
        [np.mean([points[:, names.index(label.upper())] for label in table[joint]], axis=0) for joint in SKELETON.joints], axis=1
    )
    return joints


def sample_mocap(joints: np.ndarray, frames_1based: np.ndarray) -> np.ndarray:
    """Joints at fractional 1-based mocap frames by linear interpolation; NaN outside the recording."""
    position = frames_1based - 1.0
    below = np.floor(position).astype(np.int64)
    fraction = (position - below)[:, None, None]
    inside = (below >= 0) & (below < len(joints)) & ((below + 1 < len(joints)) | (fraction[:, 0, 0] == 0))
    first = joints[np.clip(below, 0, len(joints) - 1)]
    second = joints[np.clip(below + 1, 0, len(joints) - 1)]
    sampled = (1 - fraction) * first + fraction * second
    sampled[~inside] = np.nan
    return sampled


def contiguous_chunks(valid: np.ndarray) -> list[tuple[int, int, bool]]:
    """Runs ``(start, stop, valid)`` of equal validity, numbered in order as VideoPose3D does."""
    edges = np.flatnonzero(np.diff(valid.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [len(valid)]])
    return [(int(a), int(b), bool(valid[a])) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def read_release(root: Path, table: Mapping[str, tuple[str, ...]], notes: list[str]) -> tuple[list[Chunk], list[Path]]:
    """Chunks of the original release: C3D mocap sampled at each camera's video frames through its ``.ofs``."""
    chunks, inputs = [], []
    for subject in SUBJECTS:
        mocap_dir = root / subject / "Mocap_Data"
        for path in sorted(mocap_dir.glob("*.c3d")) if mocap_dir.is_dir() else ():
            action, _, trial = path.stem.rpartition("_")
            if trial != "1" or (subject, action) not in FRAME_RANGES:
                notes.append(f"{subject}/{path.name}: only trial 1 of the five HumanEva-I actions has train/validate frame ranges; skipped")
                continue
            if (subject, action) == DAMAGED:
                notes.append(f"{subject}/{path.name}: damaged mocap (skipped, as VideoPose3D does)")
                continue
            recording = read_c3d(path)
            joints = joints_from_points(recording.points, list(recording.labels), path, table)
            inputs.append(path)
            syncs: dict[str, Sync] = {}
            for camera in CAMERAS:
                ofs = root / subject / "Sync_Data" / f"{path.stem}_({camera}).ofs"
                syncs[camera] = read_ofs(ofs)
                inputs.append(ofs)
                rate = recording.rate / syncs[camera].mc_sc
                if abs(rate - FPS) > 0.01 * FPS:
                    notes.append(f"{ofs.name}: mocap rate {recording.rate:g} Hz / {syncs[camera].mc_sc:g} gives {rate:.4g} Hz video, not {FPS:g} Hz")
            first, boundary, end = FRAME_RANGES[(subject, action)]
            for split, (lo, hi) in (("Validate", (first, boundary)), ("Train", (boundary, end))):
                timeline = np.arange(lo, hi)
                per_camera = {c: sample_mocap(joints, syncs[c].mocap_frame(syncs[c].im_st + timeline)) for c in CAMERAS}
                valid = np.all([np.isfinite(w).all(axis=(1, 2)) for w in per_camera.values()], axis=0)
                for index, (a, b, ok) in enumerate(contiguous_chunks(valid)):
                    if ok:
                        chunks.append(Chunk(split, subject, f"{action} {trial}", index, {c: w[a:b] for c, w in per_camera.items()}, lo + a))
                    else:
                        notes.append(f"{split}/{subject}/{action} {trial}: timeline frames {lo + a}..{lo + b - 1} have no valid mocap (chunk{index} dropped)")
    return chunks, inputs


def read_cameras(root: Path, subjects: list[str], notes: list[str]) -> tuple[dict[tuple[str, str], Camera], list[Path]]:
    """Cameras of every ``S*/Calibration_Data/C*.cal`` present, checked against the built-in extrinsics."""
    cameras, inputs = {}, []
    for subject in subjects:
        for name in CAMERAS:
            path = root / subject / "Calibration_Data" / f"{name}.cal"
            if path.is_file():
                camera = read_cal(path, f"{subject}/{name}")
                difference = check_extrinsics(camera, subject, name, path)
                notes.append(f"{subject}/{name}.cal: centre within {difference:.3g} mm of the built-in extrinsics")
                cameras[(subject, name)] = camera
                inputs.append(path)
    return cameras, inputs


def _lookup(source: Detections, chunk: Chunk, camera: str) -> np.ndarray | None:
    arrays = source.positions.get(f"{chunk.split}/{chunk.subject}", {}).get(chunk.name)
    index = CAMERAS.index(camera)
    return None if arrays is None or index >= len(arrays) else arrays[index]


def chunk_sequences(chunk: Chunk, cameras: dict[tuple[str, str], Camera], gt_file: Detections | None,
                    detections: list[Detections], notes: list[str]) -> list[Sequence]:
    """One sequence per camera of a chunk."""
    sequences = []
    take = f"{chunk.split}/{chunk.subject}/{chunk.name}"
    attributes = {"trial": chunk.action.split(" ")[1], "chunk": str(chunk.index), "videopose3d_subject": f"{chunk.split}/{chunk.subject}"}
    if chunk.first_frame is not None:
        attributes["first_frame"] = str(chunk.first_frame)
    for camera_name in CAMERAS:
        world = chunk.world[camera_name]
        camera = cameras.get((chunk.subject, camera_name))
        keypoints: dict[str, Keypoints2D] = {}
        file_gt = _lookup(gt_file, chunk, camera_name) if gt_file is not None else None
        where = f"{take}/{camera_name}"
        joints_cam = None
        if camera is not None:
            joints_cam = np.asarray(camera.world_to_camera(world))
            xy = np.asarray(camera.project(joints_cam))
            x, y = xy[..., 0], xy[..., 1]
            outside = ~((x >= 0) & (x < camera.width) & (y >= 0) & (y < camera.height))
            keypoints["gt"] = Keypoints2D.create(xy[None], None, outside[None])
            if file_gt is not None:
                frames = min(len(file_gt), len(xy))
                deviation = float(np.nanmax(np.linalg.norm(file_gt[:frames, :, :2] - xy[:frames], axis=-1), initial=0.0))
                if not deviation <= GT_TOLERANCE_PX:
                    raise FormatError(f"{gt_file.path}: {where} differs from the projection with the .cal camera by up to {deviation:.3g} px (tolerance {GT_TOLERANCE_PX} px)")
        elif file_gt is not None:
            xy, confidence = keypoint_arrays(file_gt, gt_file.path, where)
            xy, confidence, note = align_length(xy, confidence, len(world))
            if note:
                notes.append(f"{gt_file.path.name}: {where}: {note}")
            keypoints["gt"] = Keypoints2D.create(xy[None], confidence[None])
        for source in detections:
            found = _lookup(source, chunk, camera_name)
            if found is None:
                notes.append(f"{source.path.name}: {where}: no detections")
                continue
            xy, confidence = keypoint_arrays(found, source.path, where)
            xy, confidence, note = align_length(xy, confidence, len(world))
            if note:
                notes.append(f"{source.path.name}: {where}: {note}")
            keypoints[source.detector] = Keypoints2D.create(xy[None], confidence[None])
        sequences.append(
            Sequence.create(
                f"{take}/{camera_name}", [chunk.subject], world[None], FPS, action=chunk.action, take=take, camera=camera,
                joints_cam=None if joints_cam is None else joints_cam[None], keypoints=keypoints, attributes=attributes,
            )
        )
    return sequences


def read_joint_labels(path: str | Path) -> dict[str, tuple[str, ...]]:
    """A joint label table from TOML: ``joint = ["LABEL", ...]`` for each of the 15 joints."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PosebenchError(f"{path}: cannot read the joint label table ({error})") from None
    missing = [joint for joint in SKELETON.joints if joint not in data]
    unknown = sorted(set(data) - set(SKELETON.joints))
    bad = [joint for joint, labels in data.items() if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels))]
    if missing or unknown or bad:
        raise PosebenchError(f"{path}: a joint label table needs a non-empty list of labels for each of {list(SKELETON.joints)}; missing {missing}, unknown {unknown}, not a list of labels {bad}")
    return {joint: tuple(labels) for joint, labels in data.items()}


def convert_humaneva(
    root: str | Path,
    *,
    joint_labels: Mapping[str, tuple[str, ...]] | None = None,
    name: str = "humaneva",
    command: str | None = None,
    progress: bool = False,
) -> Dataset:
    """Convert a HumanEva-I copy under ``root`` (VideoPose3D npz files or the release) into a :class:`Dataset`."""
    root = Path(root)
    if root.is_file() and root.name == VP3D_3D_FILE:
        root = root.parent
    if not root.is_dir():
        raise PosebenchError(f"{root}: not a folder; give the folder that holds S1, S2, S3 or {VP3D_3D_FILE}")
    layout = detect_layout(root)
    notes = [f"input layout: {layout}"]
    if layout == "videopose3d":
        chunks, inputs = read_videopose3d(root, notes), [root / VP3D_3D_FILE]
    else:
        table = dict(joint_labels or JOINT_LABELS)
        chunks, inputs = read_release(root, table, notes)
        notes.append("release mocap: joints are means of the C3D joint-centre points " + "; ".join(f"{j} = {' + '.join(table[j])}" for j in SKELETON.joints))
    if not chunks:
        raise PosebenchError(f"{root}: the {layout} layout was found but holds no valid sequences")
    subjects = sorted({c.subject for c in chunks})
    cameras, camera_inputs = read_cameras(root, subjects, notes)
    inputs += camera_inputs
    if layout == "release" and len(cameras) != len(subjects) * len(CAMERAS):
        absent = [f"{s}/Calibration_Data/{c}.cal" for s in subjects for c in CAMERAS if (s, c) not in cameras]
        raise PosebenchError(f"{root}: the release layout needs every camera's calibration; missing {absent}")
    gt_file, detections = None, []
    for path in sorted(root.glob(f"{VP3D_2D_PREFIX}*.npz")):
        source = read_2d_file(path, VP3D_2D_PREFIX)
        inputs.append(path)
        unlabeled = [s for s in source.positions if s.startswith("Unlabeled/")]
        if unlabeled:
            notes.append(f"{path.name}: {len(unlabeled)} Unlabeled/ subjects have no 3D and were not converted")
        if source.detector == "gt":
            gt_file = source
        else:
            detections.append(source)
    sequences: list[Sequence] = []
    for chunk in tqdm(chunks, desc="sequences", unit="chunk", disable=not progress):
        sequences.extend(chunk_sequences(chunk, cameras, gt_file, detections, notes))
    gt_description = (
        "projection of the mocap joints with the .cal cameras (OpenCV/Bouguet lens model)" if cameras
        else f"VideoPose3D's {VP3D_2D_PREFIX}gt.npz (projected by the HumanEva toolbox)"
    )
    keypoint_sources = {"gt": {"skeleton": SKELETON.name, "description": gt_description}} if cameras or gt_file else {}
    for source in detections:
        keypoint_sources[source.detector] = {"skeleton": source.layout, "description": f"detections from {source.path.name} (VideoPose3D format)"}
    splits = {split: [s.sequence_id for s in sequences if s.take.startswith(f"{prefix}/")] for prefix, split in SPLITS.items()}
    if not cameras:
        notes.append("no .cal calibration found: sequences have no camera (VideoPose3D's files carry no intrinsics) and no camera-frame joints")
    return Dataset(
        name, sequences, SKELETON, keypoint_sources=keypoint_sources, splits=splits,
        provenance=make_provenance("humaneva", CONVERTER_VERSION, inputs, command=command, notes=notes, extra={"layout": layout}),
        description=f"HumanEva-I ({layout} layout): {len(chunks)} chunks x {len(CAMERAS)} cameras",
    )


@click.command("humaneva")
@dataset_output_options
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@click.option("--joint-labels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML table joint = [C3D labels] replacing the built-in one (release layout).")
def command(root, output, fmt, joint_labels, name, overwrite):
    """Convert HumanEva-I (VideoPose3D's npz files or the original release under ROOT) into a dataset.

    \b
    Examples:
      posebench convert humaneva /data/vp3d -o humaneva.parquet
      posebench convert humaneva /data/HumanEva -o humaneva.parquet
    """
    dataset = convert_humaneva(
        root, joint_labels=read_joint_labels(joint_labels) if joint_labels else None, name=name or output.stem,
        command=command_line(), progress=True,
    )
    save_and_report(dataset, output, fmt, overwrite)
