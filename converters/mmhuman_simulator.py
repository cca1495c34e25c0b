"""``posebench simulate mmhuman``: the multi-person moving-camera raw layout from any mocap take.

For each simulated phone the take is filmed along a seeded hand-held path
(:func:`posebench.virtual_cameras.handheld_camera`) and every video frame gets an OpenPose-style
JSON file: BODY_25 (or COCO-18) keypoints built from the subjects' h36m17 joints, pixel noise,
confidences that drop for keypoints hidden by another body or by the person's own body (capsule
model of :func:`posebench.virtual_cameras.occlusion_flags`, plus eyes and ears turned away from
the camera), missed people, a bystander detected now and then, and people listed in a new
random order in every frame. The video starts at a known mocap time (the sync offset), written
to ``camera.json`` unless asked not to. The truth (offsets, which subject is in which slot of
every file) goes to ``simulation.json``. Layout and models: docs/converters/mmhuman.md.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import click
import numpy as np

from converters.mmhuman_layout import write_trajectory_csv
from converters.mmhuman_mocap import sample_at
from converters.mocap import PersonTrack, TakeReport, align_take, read_persons, up_axis_rotation
from posebench.atomic import atomic_output
from posebench.cameras import Camera
from posebench.errors import PosebenchError
from posebench.skeletons import get_skeleton
from posebench.timeseries import fill_gaps
from posebench.virtual_cameras import handheld_camera, occlusion_flags
from posebench.virtual_cameras_occlusion import inside_image

H36M = get_skeleton("h36m17")
BODY25 = get_skeleton("openpose25")
COCO18 = get_skeleton("openpose18")
#: Keypoints of COCO-18 taken from BODY_25 (same names), in COCO-18 order.
COCO18_FROM_BODY25 = [BODY25.index(name) for name in COCO18.joints]
#: The h36m17 joint whose capsule-model occlusion flag each BODY_25 keypoint takes.
OCCLUSION_SOURCE = {
    "nose": "neck_nose", "neck": "thorax", "mid_hip": "pelvis", "r_eye": "neck_nose", "l_eye": "neck_nose",
    "r_ear": "neck_nose", "l_ear": "neck_nose", "l_big_toe": "l_ankle", "l_small_toe": "l_ankle", "l_heel": "l_ankle",
    "r_big_toe": "r_ankle", "r_small_toe": "r_ankle", "r_heel": "r_ankle",
}
#: Head and foot geometry (mm): half the distance between the ears, eye offsets from the nose
#: (sideways, up, back), heel and toe offsets from the ankle (forward, down, sideways).
EAR_HALF_WIDTH = 75.0
EYE_OFFSET = (32.0, 35.0, 15.0)
HEEL_OFFSET = (-50.0, 60.0, 0.0)
BIG_TOE_OFFSET = (150.0, 70.0, -20.0)
SMALL_TOE_OFFSET = (130.0, 70.0, 35.0)
#: Phone camera: focal length (px), image size, camera-id prefix.
FOCAL = 1500.0
WIDTH, HEIGHT = 1920, 1080
#: Confidence model: visible keypoints ~ N(mean, sd) clipped; hidden ones uniform below 0.3, and
#: hidden keypoints are not reported at all with this probability; hidden noise is this many
#: times the visible noise. Without noise: fixed confidences.
VISIBLE_CONFIDENCE = (0.8, 0.08, 0.35, 0.99)
HIDDEN_CONFIDENCE = (0.02, 0.28)
HIDDEN_DROPPED = 0.4
HIDDEN_NOISE_FACTOR = 3.0
EXACT_CONFIDENCE = (0.9, 0.1)
#: Bystander: a subject's motion half a take later, standing this far (mm) from the subjects.
BYSTANDER_DISTANCE = (2500.0, 4000.0)
#: Fewest keypoints inside the image for a person to be detected at all.
MIN_VISIBLE_KEYPOINTS = 5


@dataclass(frozen=True)
class SimulationSettings:
    """What to simulate (see :func:`simulate_mmhuman`)."""

    videos: int = 1
    seed: int = 0
    fps: float = 30.0
    sync_offset: float = 0.25
    clock_ratio: float = 1.0
    noise: float = 4.0
    exact: bool = False
    miss_rate: float = 0.05
    spurious_rate: float = 0.1
    layout: str = "openpose25"
    tracker_ids: bool = False
    record_sync: bool = True


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def body25_from_h36m17(joints: np.ndarray) -> np.ndarray:
    """BODY_25 keypoints ``(..., 25, 3)`` from h36m17 joints ``(..., 17, 3)`` (mm, z-up world).

    Shared keypoints are the joints (nose = neck_nose, neck = thorax, mid_hip = pelvis); the ears
    sit at ``(head_top + 0.7 · thorax) / 1.7 ± 75 mm`` sideways, so that posebench's
    openpose25 → h36m17 head-top formula gives the head top back; eyes, heels and toes follow
    the head and foot offsets above in the body's right/up/forward frame.
    """
    j = {name: joints[..., H36M.index(name), :] for name in H36M.joints}
    right = _unit(j["r_shoulder"] - j["l_shoulder"])
    up = _unit(j["head_top"] - j["thorax"])
    forward = _unit(np.cross(up, right))
    ground_forward = _unit(forward * np.array([1.0, 1.0, 0.0]))
    world_up = np.array([0.0, 0.0, 1.0])
    mid_ear = (j["head_top"] + 0.7 * j["thorax"]) / 1.7
    side, rise, back = EYE_OFFSET
    out = {
        "nose": j["neck_nose"], "neck": j["thorax"], "mid_hip": j["pelvis"],
        "r_ear": mid_ear + EAR_HALF_WIDTH * right, "l_ear": mid_ear - EAR_HALF_WIDTH * right,
        "r_eye": j["neck_nose"] + side * right + rise * up - back * forward,
        "l_eye": j["neck_nose"] - side * right + rise * up - back * forward,
    }
    for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        out[f"r_{name}"], out[f"l_{name}"] = j[f"r_{name}"], j[f"l_{name}"]
    for prefix, outward in (("r", right), ("l", -right)):
        for name, (ahead, down, lateral) in (("heel", HEEL_OFFSET), ("big_toe", BIG_TOE_OFFSET), ("small_toe", SMALL_TOE_OFFSET)):
            out[f"{prefix}_{name}"] = j[f"{prefix}_ankle"] + ahead * ground_forward - down * world_up + lateral * outward
    return np.stack([out[name] for name in BODY25.joints], axis=-2)


def _turned_away(keypoints: np.ndarray, joints: np.ndarray, camera: Camera) -> np.ndarray:
    """Eyes hidden when the face turns away from the camera, ears when their side does ``(P, F, 25)``."""
    centre = -np.einsum("fji,fj->fi", camera.R, camera.t) if camera.is_moving else -(camera.R[0].T @ camera.t[0])[None]
    right = _unit(joints[..., H36M.index("r_shoulder"), :] - joints[..., H36M.index("l_shoulder"), :])
    up = _unit(joints[..., H36M.index("head_top"), :] - joints[..., H36M.index("thorax"), :])
    forward = _unit(np.cross(up, right))
    to_camera = _unit(centre[None, :, :] - joints[..., H36M.index("neck_nose"), :])
    hidden = np.zeros(keypoints.shape[:-1], dtype=bool)
    facing = np.einsum("pfi,pfi->pf", forward, to_camera)
    sideways = np.einsum("pfi,pfi->pf", right, to_camera)
    for name in ("r_eye", "l_eye"):
        hidden[..., BODY25.index(name)] = facing < 0
    hidden[..., BODY25.index("r_ear")] = sideways < -0.2
    hidden[..., BODY25.index("l_ear")] = sideways > 0.2
    return hidden


def render_openpose(joints: np.ndarray, camera: Camera, rng: np.random.Generator, settings: SimulationSettings) -> tuple[np.ndarray, np.ndarray]:
    """OpenPose BODY_25 keypoints ``(P, F, 25, 2)`` and confidences ``(P, F, 25)`` of people ``(P, F, 17, 3)``.

    Keypoints outside the image or not reported have confidence 0 (written as ``0, 0, 0``).
    """
    keypoints = body25_from_h36m17(joints)
    xy = camera.project_world(keypoints)
    occluded = occlusion_flags(joints, camera)
    hidden = occluded[..., [H36M.index(OCCLUSION_SOURCE.get(name, name)) for name in BODY25.joints]]
    hidden |= _turned_away(keypoints, joints, camera)
    inside = inside_image(xy, camera.width, camera.height) & np.isfinite(keypoints).all(axis=-1)
    if settings.exact:
        confidence = np.where(hidden, EXACT_CONFIDENCE[1], EXACT_CONFIDENCE[0])
    else:
        mean, sd, low, high = VISIBLE_CONFIDENCE
        confidence = np.where(hidden, rng.uniform(*HIDDEN_CONFIDENCE, hidden.shape), np.clip(rng.normal(mean, sd, hidden.shape), low, high))
        confidence = np.where(hidden & (rng.random(hidden.shape) < HIDDEN_DROPPED), 0.0, confidence)
        sigma = settings.noise * np.where(hidden, HIDDEN_NOISE_FACTOR, 1.0)
        xy = xy + rng.normal(0.0, 1.0, xy.shape) * sigma[..., None]
    confidence = np.where(inside, confidence, 0.0)
    return np.where((confidence > 0)[..., None], xy, 0.0), confidence


def _bystander(joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A person who is not a subject ``(1, F, 17, 3)``: subject 0's motion half a take later, moved aside."""
    frames = joints.shape[1]
    shifted = np.roll(joints[:1], frames // 2, axis=1)
    angle = rng.uniform(0.0, 2 * np.pi)
    distance = rng.uniform(*BYSTANDER_DISTANCE)
    centre = np.nanmean(joints[..., :2], axis=(0, 1, 2))
    moved_centre = np.nanmean(shifted[..., :2], axis=(0, 1, 2))
    offset = centre + distance * np.array([np.cos(angle), np.sin(angle)]) - moved_centre
    return shifted + np.array([offset[0], offset[1], 0.0])


def _people_json(xy: np.ndarray, confidence: np.ndarray, person_ids: Sequence[int], layout: str) -> dict:
    people = []
    for points, conf, person_id in zip(xy, confidence, person_ids):
        if layout == "openpose18":
            points, conf = points[COCO18_FROM_BODY25], conf[COCO18_FROM_BODY25]
        values = np.column_stack((points, conf)).ravel()
        people.append({
            "person_id": [int(person_id)], "pose_keypoints_2d": [round(float(v), 4) for v in values],
            "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
            "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": [],
        })
    return {"version": 1.3, "people": people}


def _read_take(inputs: list[Path], subjects: list[str] | None, markerset: str | None) -> tuple[list[PersonTrack], list[str]]:
    """Persons of the inputs as one take and their subject names."""
    report = TakeReport()
    per_file = [read_persons(path, markerset, report) for path in inputs]
    if len(inputs) > 1 and any(len(tracks) != 1 for tracks in per_file):
        raise PosebenchError("with several mocap inputs each must hold one person; give a multi-person C3D/TRC alone")
    tracks = [track for tracks in per_file for track in tracks]
    names = [track.subject for track in tracks]
    if subjects is not None:
        if len(subjects) != len(tracks):
            raise PosebenchError(f"--subjects names {len(subjects)} persons but the inputs hold {len(tracks)}: {names}")
        if len(inputs) == 1 and len(tracks) > 1 and list(subjects) != names:
            raise PosebenchError(f"a multi-person mocap file keeps its label prefixes as subject names {names}; omit --subjects")
        names = list(subjects)
    return tracks, names


def simulate_mmhuman(inputs: Sequence[str | Path], output: str | Path, *, take: str | None = None,
                     subjects: list[str] | None = None, action: str = "", split: str = "",
                     settings: SimulationSettings = SimulationSettings(), markerset: str | None = None,
                     overwrite: bool = False) -> dict:
    """Write the raw layout for the mocap ``inputs`` (one take) into ``output``; return the truth.

    The returned dictionary is what ``simulation.json`` holds: per video the mocap time of frame 0,
    the clock ratio, the frame count and ``slots`` (for each frame, the subject index of each
    listed person, -1 for the bystander).
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise PosebenchError("no mocap input given")
    for path in paths:
        if not path.is_file():
            raise PosebenchError(f"{path}: no such file")
    if settings.videos < 1 or settings.fps <= 0 or settings.clock_ratio <= 0:
        raise PosebenchError("videos must be >= 1, fps and clock ratio > 0")
    if settings.layout not in ("openpose25", "openpose18"):
        raise PosebenchError(f"layout {settings.layout!r} unknown; use openpose25 or openpose18")
    take = take or paths[0].stem
    tracks, names = _read_take(paths, subjects, markerset)
    joints, relative = align_take(tracks, TakeReport())
    start = max(track.times[0] for track in tracks)
    mocap_times = relative + tracks[0].times[tracks[0].times >= start - 1e-9][0]
    rotation = up_axis_rotation(joints)
    joints, _ = fill_gaps((joints @ rotation.T).transpose(1, 0, 2, 3))
    step = settings.clock_ratio / settings.fps
    frame0 = float(mocap_times[0] + settings.sync_offset)
    n_frames = int(np.floor((mocap_times[-1] - frame0) / step + 1e-9)) + 1
    if n_frames < 2:
        raise PosebenchError(f"sync offset {settings.sync_offset} s leaves fewer than 2 video frames inside the take")
    times = frame0 + step * np.arange(n_frames)
    inside = (times >= mocap_times[0] - 1e-9) & (times <= mocap_times[-1] + 1e-9)
    video_joints = sample_at(joints, mocap_times, np.clip(times, mocap_times[0], mocap_times[-1])).transpose(1, 0, 2, 3)
    rng = np.random.default_rng(settings.seed)
    truth: dict = {"take": take, "subjects": names, "seed": settings.seed, "layout": settings.layout,
                   "noise_px": 0.0 if settings.exact else settings.noise, "videos": {}}
    with atomic_output(Path(output), overwrite=overwrite) as folder:
        _write_mocap(folder, take, paths, names)
        with open(folder / "takes.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["take", "action", "subjects", "split"])
            writer.writerow([take, action or take, ";".join(names), split])
        for index in range(settings.videos):
            name = f"phone{index + 1}"
            camera = handheld_camera(video_joints, seed=int(rng.integers(2**31)), focal=FOCAL, width=WIDTH, height=HEIGHT,
                                     camera_id=name, fps=settings.fps)
            bystander = _bystander(video_joints, rng)
            everyone = np.concatenate((video_joints, bystander))
            xy, confidence = render_openpose(everyone, camera, rng, settings)
            detected = (confidence > 0).sum(axis=-1) >= MIN_VISIBLE_KEYPOINTS
            detected[:-1] &= inside[None, :]
            if not settings.exact:
                detected[:-1] &= rng.random(detected[:-1].shape) >= settings.miss_rate
                detected[-1] &= rng.random(n_frames) < settings.spurious_rate
            else:
                detected[-1] = False
            video = folder / "videos" / take / name
            (video / "openpose").mkdir(parents=True)
            ids = [100 + p for p in range(len(names))] + [200] if settings.tracker_ids else [-1] * (len(names) + 1)
            slots = []
            for frame in range(n_frames):
                order = rng.permutation(np.flatnonzero(detected[:, frame]))
                document = _people_json(xy[order, frame], confidence[order, frame], [ids[p] for p in order], settings.layout)
                (video / "openpose" / f"{name}_{frame:012d}_keypoints.json").write_text(json.dumps(document), encoding="utf-8")
                slots.append([int(p) if p < len(names) else -1 for p in order])
            write_trajectory_csv(video / "trajectory.csv", camera.R @ rotation, camera.t)
            sync = {"clock_ratio": settings.clock_ratio}
            if settings.record_sync:
                sync["frame0_mocap_time"] = frame0
            document = {"resolution": [WIDTH, HEIGHT], "fps": settings.fps,
                        "intrinsics": {"fx": FOCAL, "fy": FOCAL, "cx": WIDTH / 2, "cy": HEIGHT / 2},
                        "distortion": {"model": "none", "coefficients": []}, "sync": sync,
                        "trajectory": {"csv": "trajectory.csv"}}
            (video / "camera.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
            truth["videos"][name] = {"frame0_mocap_time": frame0, "clock_ratio": settings.clock_ratio,
                                     "frames": n_frames, "slots": slots}
        (folder / "simulation.json").write_text(json.dumps(truth), encoding="utf-8")
    return truth


def _write_mocap(folder: Path, take: str, paths: list[Path], names: list[str]) -> None:
    """Copy the mocap: one file as ``mocap/<take><ext>``, several as ``mocap/<take>/<subject><ext>``."""
    (folder / "mocap").mkdir(parents=True)
    if len(paths) == 1:
        shutil.copyfile(paths[0], folder / "mocap" / f"{take}{paths[0].suffix.lower()}")
        return
    (folder / "mocap" / take).mkdir()
    for path, name in zip(paths, names):
        shutil.copyfile(path, folder / "mocap" / take / f"{name}{path.suffix.lower()}")


@click.command("mmhuman")
@click.argument("mocap", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Raw folder to write.")
@click.option("--take", help="Take name (default: the first input's stem).")
@click.option("--subjects", help="Comma-separated subject names, one per input person (file stems by default).")
@click.option("--action", default="", help="Action label (default: the take name).")
@click.option("--split", default="", help="Split of the take in takes.csv (e.g. test).")
@click.option("--videos", type=click.IntRange(min=1), default=1, show_default=True, help="Number of hand-held phones.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of camera paths, noise and detections.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True, help="Video frame rate (Hz).")
@click.option("--sync-offset", type=float, default=0.25, show_default=True, help="Mocap time of video frame 0, seconds after the take's start (may be negative).")
@click.option("--clock-ratio", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Mocap seconds per video second.")
@click.option("--omit-sync", is_flag=True, help="Leave frame0_mocap_time out of camera.json (the converter then estimates it).")
@click.option("--noise", type=click.FloatRange(min=0), default=4.0, show_default=True, help="Pixel noise (s.d.) of visible keypoints.")
@click.option("--no-noise", is_flag=True, help="Exact keypoints, fixed confidences, no missed or spurious detections.")
@click.option("--miss-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True, help="Probability that a subject is not detected in a frame.")
@click.option("--spurious-rate", type=click.FloatRange(0, 1), default=0.1, show_default=True, help="Probability that the bystander is detected in a frame.")
@click.option("--layout", type=click.Choice(["openpose25", "openpose18"]), default="openpose25", show_default=True, help="BODY_25 or COCO-18 keypoints.")
@click.option("--tracker-ids", is_flag=True, help="Write a tracker's person_id per person (default: -1, untracked).")
@click.option("--markerset", help="Marker set for marker mocap (default: detected).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
def command(mocap, output, take, subjects, action, split, videos, seed, fps, sync_offset, clock_ratio, omit_sync, noise,
            no_noise, miss_rate, spurious_rate, layout, tracker_ids, markerset, overwrite):
    """Simulate hand-held phones filming a mocap take (MOCAP...) in the mmhuman raw layout.

    \b
    Examples:
      posebench simulate mmhuman 18_01.bvh 19_01.bvh --take 18_01 -o raw/
      posebench convert mmhuman raw/ -o shake.parquet
    """
    settings = SimulationSettings(videos=videos, seed=seed, fps=fps, sync_offset=sync_offset, clock_ratio=clock_ratio,
                                  noise=noise, exact=no_noise, miss_rate=miss_rate, spurious_rate=spurious_rate,
                                  layout=layout, tracker_ids=tracker_ids, record_sync=not omit_sync)
    truth = simulate_mmhuman(mocap, output, take=take, subjects=subjects.split(",") if subjects else None, action=action,
                             split=split, settings=settings, markerset=markerset, overwrite=overwrite)
    click.echo(f"wrote {output}: take {truth['take']!r}, subjects {', '.join(truth['subjects'])}")
    for name, video in truth["videos"].items():
        click.echo(f"  {name}: {video['frames']} frames, frame 0 at mocap {video['frame0_mocap_time']:.4f} s")
