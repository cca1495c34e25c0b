"""``posebench convert h36m``: Human3.6M, from the original release or from VideoPose3D's npz files.

Input layouts (detected under ROOT, see docs/converters/h36m.md):

- the release: ``S*/MyPoseFeatures/D3_Positions/<Action>.cdf`` (world 3D, 32 joints, mm), with
  optional ``D3_Positions_mono`` and ``D2_Positions`` (``<Action>.<camera>.cdf``), which are used
  to verify the cameras;
- the tree h36m-fetch extracts: ``S*/Poses_D3_Positions/...``, ``Poses_D3_Positions_mono``,
  ``Poses_D2_Positions``;
- VideoPose3D: ``data_3d_h36m.npz``.

Any ``data_2d_h36m_<detector>.npz`` beside them becomes a 2D source named ``<detector>``. Each
recording gives one sequence per camera (``S9/Walking 1/54138969``) with the 17-joint skeleton in
world and camera coordinates and ``gt`` 2D keypoints projected with the ``h36m`` lens model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from converters.h36m_cameras import CAMERA_NAMES, check_metadata, h36m_camera
from converters.videopose3d import Detections, align_length, keypoint_arrays, read_2d_file, read_3d_file
from converters.options import command_line, dataset_output_options, save_and_report
from posebench.cameras import Camera
from posebench.dataset import Dataset, Keypoints2D, Sequence, make_provenance
from posebench.errors import FormatError, PosebenchError
from posebench.io.cdf import read_cdf_variable
from posebench.skeletons import H36M32_TO_17, get_skeleton

CONVERTER_VERSION = "1.0"
ALIASES = ("human36m",)
SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
SPLITS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
FPS = 50.0
SKELETON = get_skeleton("h36m17")
JOINTS_32 = 32
VP3D_3D_FILE = "data_3d_h36m.npz"
VP3D_2D_PREFIX = "data_2d_h36m_"
#: The recording whose video is corrupted; kept and flagged (VideoPose3D drops it).
KNOWN_BAD = ("S11", "Directions")
KNOWN_BAD_NOTE = (
    "the video of this recording is corrupted (camera 54138969); VideoPose3D discards the whole "
    "recording at conversion time; posebench keeps it and the h36m protocol excludes S11/Directions/*"
)
ACTION_RENAMES = (("TakingPhoto", "Photo"), ("WalkingDog", "WalkDog"))
#: Largest accepted deviation of the release's own camera-frame 3D / 2D from posebench's computation.
MONO_TOLERANCE_MM = 2.0
D2_TOLERANCE_PX = 2.0
VP3D_GT_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class Tree:
    """Where a folder layout keeps world 3D, camera-frame 3D and 2D pose files, per subject."""

    name: str
    world: str
    mono: str
    d2: str


TREES = (
    Tree("release", "MyPoseFeatures/D3_Positions", "MyPoseFeatures/D3_Positions_mono", "MyPoseFeatures/D2_Positions"),
    Tree("h36m-fetch", "Poses_D3_Positions", "Poses_D3_Positions_mono", "Poses_D2_Positions"),
)


@dataclass
class Recording:
    """One take: world joints (F, 32, 3) in mm and, per camera, the release's own mono 3D / 2D."""

    subject: str
    action: str
    file_action: str
    world: np.ndarray
    mono: dict[str, np.ndarray] = field(default_factory=dict)
    d2: dict[str, np.ndarray] = field(default_factory=dict)


def normalise_action(name: str) -> str:
    """VideoPose3D's action names: ``TakingPhoto`` -> ``Photo``, ``WalkingDog`` -> ``WalkDog``; sub-action numbers kept."""
    for old, new in ACTION_RENAMES:
        name = name.replace(old, new)
    return name


def detect_layout(root: Path) -> str:
    """``release``, ``h36m-fetch`` or ``videopose3d``; an error listing the expected trees otherwise."""
    for tree in TREES:
        if any((root / subject / tree.world).is_dir() for subject in SUBJECTS):
            return tree.name
    if (root / VP3D_3D_FILE).is_file():
        return "videopose3d"
    expected = "\n".join(
        [f"  {tree.name}: ROOT/S1/{tree.world}/<Action>.cdf (and S5, S6, S7, S8, S9, S11)" for tree in TREES]
        + [f"  VideoPose3D: ROOT/{VP3D_3D_FILE} (with optional ROOT/{VP3D_2D_PREFIX}<detector>.npz)"]
    )
    raise PosebenchError(
        f"{root}: no Human3.6M data found. Expected one of:\n{expected}\n"
        "For h36m-fetch, ROOT is its 'extracted' folder."
    )


def _pose_cdf(path: Path, values: int) -> np.ndarray:
    """The ``Pose`` variable of a release CDF file as (frames, values) float64."""
    data = read_cdf_variable(path, "Pose")
    if data.ndim < 2 or data.shape[-1] != values or data.dtype.kind != "f":
        raise FormatError(f"{path}: variable 'Pose' must be float (1, frames, {values}), found shape {data.shape}, dtype {data.dtype}")
    return data.reshape(-1, values).astype(np.float64)


def read_release(root: Path, tree: Tree, notes: list[str]) -> tuple[list[Recording], list[Path]]:
    """Recordings of the release (or h36m-fetch) tree, with every file read."""
    recordings, inputs = [], []
    for subject in SUBJECTS:
        world_dir = root / subject / tree.world
        if not world_dir.is_dir():
            notes.append(f"{subject}: no {tree.world} folder; subject skipped")
            continue
        names: dict[str, str] = {}
        for path in sorted(world_dir.glob("*.cdf")):
            if path.stem.startswith("_ALL"):
                continue
            action = normalise_action(path.stem)
            if action in names:
                raise FormatError(f"{world_dir}: {names[action]!r} and {path.stem!r} both become action {action!r}; remove one")
            names[action] = path.stem
            recording = Recording(subject, action, path.stem, _pose_cdf(path, JOINTS_32 * 3).reshape(-1, JOINTS_32, 3))
            inputs.append(path)
            for camera in CAMERA_NAMES:
                for folder, store, size in ((tree.mono, recording.mono, 3), (tree.d2, recording.d2, 2)):
                    per_camera = root / subject / folder / f"{path.stem}.{camera}.cdf"
                    if per_camera.is_file():
                        store[camera] = _pose_cdf(per_camera, JOINTS_32 * size).reshape(-1, JOINTS_32, size)
                        inputs.append(per_camera)
            recordings.append(recording)
    return recordings, inputs


def read_videopose3d(root: Path, notes: list[str]) -> list[Recording]:
    """Recordings of ``data_3d_h36m.npz`` (actions already named the VideoPose3D way)."""
    positions = read_3d_file(root / VP3D_3D_FILE, JOINTS_32)
    unknown = sorted(set(positions) - set(SUBJECTS))
    if unknown:
        notes.append(f"{VP3D_3D_FILE}: subjects {unknown} have no camera calibration and were skipped")
    recordings = [
        Recording(subject, normalise_action(action), action, world)
        for subject in SUBJECTS if subject in positions
        for action, world in sorted(positions[subject].items())
    ]
    if "Directions" not in positions.get("S11", {}):
        notes.append(f"{VP3D_3D_FILE}: S11/Directions is absent (VideoPose3D's scripts drop it)")
    return recordings


def _outside(xy: np.ndarray, camera: Camera) -> np.ndarray:
    x, y = xy[..., 0], xy[..., 1]
    return ~((x >= 0) & (x < camera.width) & (y >= 0) & (y < camera.height))


def _verify_release_views(recording: Recording, camera_name: str, joints_cam: np.ndarray, gt: np.ndarray, notes: list[str]) -> dict[str, str]:
    """Compare posebench's camera-frame joints and projection with the release's own files."""
    attributes = {}
    where = f"{recording.subject}/{recording.file_action}.{camera_name}"
    for kind, own, ours, tolerance, unit in (
        ("D3_Positions_mono", recording.mono.get(camera_name), joints_cam, MONO_TOLERANCE_MM, "mm"),
        ("D2_Positions", recording.d2.get(camera_name), gt, D2_TOLERANCE_PX, "px"),
    ):
        if own is None:
            continue
        frames = min(len(own), len(ours))
        if len(own) != len(ours):
            notes.append(f"{where}: {kind} has {len(own)} frames, D3_Positions {len(ours)}; compared the first {frames}")
        deviation = float(np.nanmax(np.linalg.norm(own[:frames, list(H36M32_TO_17)] - ours[:frames], axis=-1), initial=0.0))
        if not deviation <= tolerance:
            raise FormatError(
                f"{where}: the release's {kind} differs from posebench's computation with the built-in camera "
                f"by up to {deviation:.3g} {unit} (tolerance {tolerance} {unit}); the cameras or the files do not belong together"
            )
        attributes[f"max_deviation_{kind}"] = f"{deviation:.3g} {unit}"
    return attributes


def _detection_keypoints(
    detections: list[Detections], names: dict[str, str], recording: Recording, camera_index: int, frames: int, notes: list[str]
) -> dict[str, Keypoints2D]:
    keypoints = {}
    for source in detections:
        arrays = source.positions.get(recording.subject, {}).get(recording.action)
        where = f"{source.path.name}: {recording.subject}/{recording.action}/{CAMERA_NAMES[camera_index]}"
        if arrays is None or camera_index >= len(arrays) or arrays[camera_index] is None:
            notes.append(f"{where}: no detections")
            continue
        xy, confidence = keypoint_arrays(arrays[camera_index], source.path, where)
        xy, confidence, note = align_length(xy, confidence, frames)
        if note:
            notes.append(f"{where}: {note}")
        keypoints[names.get(source.detector, source.detector)] = Keypoints2D.create(xy[None], confidence[None])
    return keypoints


def _check_vp3d_gt(gt_file: Detections, recording: Recording, camera_index: int, gt: np.ndarray) -> float | None:
    arrays = gt_file.positions.get(recording.subject, {}).get(recording.action)
    if arrays is None or camera_index >= len(arrays) or arrays[camera_index] is None:
        return None
    theirs = arrays[camera_index][..., :2]
    frames = min(len(theirs), len(gt))
    deviation = float(np.nanmax(np.linalg.norm(theirs[:frames] - gt[:frames], axis=-1), initial=0.0))
    if not deviation <= VP3D_GT_TOLERANCE_PX:
        raise FormatError(
            f"{gt_file.path}: {recording.subject}/{recording.action}/{CAMERA_NAMES[camera_index]} differs from posebench's "
            f"projection by up to {deviation:.3g} px (tolerance {VP3D_GT_TOLERANCE_PX} px); it was not made from this 3D data "
            "with the published cameras"
        )
    return deviation


def recording_sequences(
    recording: Recording, detections: list[Detections], names: dict[str, str], vp3d_gt: Detections | None, notes: list[str]
) -> list[Sequence]:
    """One sequence per camera of a recording."""
    world = recording.world[:, list(H36M32_TO_17)]
    attributes = {"file_action": recording.file_action, "base_action": recording.action.split(" ")[0]}
    if (recording.subject, recording.action) == KNOWN_BAD:
        attributes["known_issue"] = KNOWN_BAD_NOTE
    sequences = []
    for index, camera_name in enumerate(CAMERA_NAMES):
        camera = h36m_camera(recording.subject, camera_name)
        joints_cam = np.asarray(camera.world_to_camera(world))
        gt = np.asarray(camera.project(joints_cam))
        view_attributes = dict(attributes, **_verify_release_views(recording, camera_name, joints_cam, gt, notes))
        if vp3d_gt is not None:
            deviation = _check_vp3d_gt(vp3d_gt, recording, index, gt)
            if deviation is not None:
                view_attributes["max_deviation_data_2d_h36m_gt"] = f"{deviation:.3g} px"
        keypoints = {"gt": Keypoints2D.create(gt[None], None, _outside(gt, camera)[None])}
        keypoints.update(_detection_keypoints(detections, names, recording, index, len(world), notes))
        sequences.append(
            Sequence.create(
                f"{recording.subject}/{recording.action}/{camera_name}", [recording.subject], world[None], FPS,
                action=recording.action, take=f"{recording.subject}/{recording.action}", camera=camera,
                joints_cam=joints_cam[None], keypoints=keypoints, attributes=view_attributes,
            )
        )
    return sequences


def convert_h36m(
    root: str | Path,
    *,
    source_names: dict[str, str] | None = None,
    name: str = "h36m",
    command: str | None = None,
    progress: bool = False,
) -> Dataset:
    """Convert a Human3.6M copy under ``root`` (any supported layout) into a :class:`Dataset`.

    ``source_names`` renames 2D sources (``{"cpn_ft_h36m_dbb": "cpn"}``); by default a file
    ``data_2d_h36m_<detector>.npz`` becomes source ``<detector>``.
    """
    root = Path(root)
    if root.is_file() and root.name == VP3D_3D_FILE:
        root = root.parent
    if not root.is_dir():
        raise PosebenchError(f"{root}: not a folder; give the folder that holds the Human3.6M subjects or {VP3D_3D_FILE}")
    layout = detect_layout(root)
    notes: list[str] = [f"input layout: {layout}"]
    if layout == "videopose3d":
        recordings, inputs = read_videopose3d(root, notes), [root / VP3D_3D_FILE]
    else:
        recordings, inputs = read_release(root, next(t for t in TREES if t.name == layout), notes)
        if (root / VP3D_3D_FILE).is_file():
            notes.append(f"{VP3D_3D_FILE} ignored: the release's CDF files are used for 3D")
    if not recordings:
        raise PosebenchError(f"{root}: the {layout} layout was found but holds no recordings")
    subjects = sorted({r.subject for r in recordings}, key=SUBJECTS.index)
    metadata = root / "metadata.xml"
    if metadata.is_file():
        notes.append(check_metadata(metadata, subjects))
        inputs.append(metadata)
    detections, vp3d_gt = [], None
    for path in sorted(root.glob(f"{VP3D_2D_PREFIX}*.npz")):
        source = read_2d_file(path, VP3D_2D_PREFIX)
        inputs.append(path)
        if source.detector == "gt":
            vp3d_gt = source
            notes.append(f"{path.name}: VideoPose3D's projected ground truth, used to check the 'gt' projection (not a separate source)")
        else:
            detections.append(source)
    names = dict(source_names or {})
    unknown = sorted(set(names) - {d.detector for d in detections})
    if unknown:
        raise PosebenchError(f"source renames name detectors {unknown} that have no {VP3D_2D_PREFIX}<detector>.npz file in {root}")
    sequences: list[Sequence] = []
    for recording in tqdm(recordings, desc="recordings", unit="take", disable=not progress):
        if (recording.subject, recording.action) == KNOWN_BAD:
            notes.append(f"{recording.subject}/{recording.action}: kept and flagged (attribute known_issue): {KNOWN_BAD_NOTE}")
        sequences.extend(recording_sequences(recording, detections, names, vp3d_gt, notes))
    keypoint_sources = {"gt": {"skeleton": SKELETON.name, "description": "projection of the mocap joints with the published cameras (h36m lens model)"}}
    for source in detections:
        keypoint_sources[names.get(source.detector, source.detector)] = {
            "skeleton": source.layout, "description": f"detections from {source.path.name} (VideoPose3D format)",
        }
    splits = {split: [s.sequence_id for s in sequences if s.subjects[0] in members] for split, members in SPLITS.items()}
    return Dataset(
        name, sequences, SKELETON, keypoint_sources=keypoint_sources, splits=splits,
        provenance=make_provenance("h36m", CONVERTER_VERSION, inputs, command=command, notes=notes,
                                   extra={"layout": layout, "source_names": names}),
        description=f"Human3.6M ({layout} layout): {len(recordings)} recordings x {len(CAMERA_NAMES)} cameras",
    )


def _parse_renames(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    renames = {}
    for value in values:
        detector, sep, new = value.partition("=")
        if not sep or not detector or not new:
            raise click.BadParameter(f"{value!r}: expected DETECTOR=NAME, e.g. cpn_ft_h36m_dbb=cpn")
        renames[detector] = new
    return renames


@click.command("h36m")
@dataset_output_options
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@click.option("--source-name", "source_names", multiple=True, callback=_parse_renames,
              help="DETECTOR=NAME: name the 2D source of data_2d_h36m_DETECTOR.npz NAME (repeatable).")
def command(root, output, fmt, source_names, name, overwrite):
    """Convert Human3.6M (the release's CDF files or VideoPose3D's npz files under ROOT) into a dataset.

    \b
    Examples:
      posebench convert h36m /data/h36m -o h36m.parquet
      posebench convert h36m /data/vp3d -o h36m.parquet
    """
    dataset = convert_h36m(
        root, source_names=source_names, name=name or output.stem,
        command=command_line(), progress=True,
    )
    save_and_report(dataset, output, fmt, overwrite)
