"""Training and evaluation data for lifting models: normalised 2D inputs, root-relative 3D targets,
synthetic occlusion, and windows sampled within tracks.

A split is prepared once (:func:`prepare_split`): 2D keypoints are mapped to the dataset's 3D
skeleton (if their layout differs), normalised with each track's camera size
(:func:`posebench.cameras.normalize_screen_coordinates`), and NaN keypoints are filled by linear
interpolation over time; 3D targets are camera-frame joints minus the root, in mm, with NaN
frames kept (and flagged invalid). Windows are index arithmetic on these dense arrays: the frames
of a window are ``anchor + offsets`` clipped to the track, which is exactly VideoPose3D's
edge-replication padding (``np.pad(..., 'edge')``) and never crosses into another track.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np

from posebench.cameras import normalize_screen_coordinates
from posebench.dataset import Dataset
from posebench.errors import PosebenchError
from posebench.occlusion import apply_mask, masks_for_sequences
from posebench.skeletons import Skeleton, flip_joints_3d, flip_keypoints_2d, get_mapping

FillMode = Literal["interpolate", "zero"]

#: How inputs and targets are normalised; stored in every checkpoint.
NORMALISATION = {
    "keypoints_2d": "normalize_screen_coordinates: x / w * 2 - 1, y / w * 2 - h / w, with the width w and height h of each sequence's camera",
    "joints_3d": "camera frame (OpenCV), millimetres, root-relative: the skeleton's root joint is exactly 0",
    "missing_2d": "NaN keypoints filled by linear interpolation over time within their track",
}


@dataclass
class PreparedSplit:
    """A split as model-ready dense arrays, one row per (track, frame).

    ``keypoints`` (N, J, 2) normalised, NaN-free; ``missing`` (N, J) True where the 2D keypoint
    was NaN; ``occluded`` (N, J) the dataset's occluded flags; ``confidence`` (N, J) the 2D
    source's confidence (0 where missing); ``targets`` (N, J, 3) root-relative
    mm (NaN where the 3D is missing); ``valid`` (N,) True where every target joint is finite.
    """

    keypoints: np.ndarray
    missing: np.ndarray
    occluded: np.ndarray
    confidence: np.ndarray
    targets: np.ndarray
    valid: np.ndarray
    track_starts: np.ndarray
    sequence_ids: list[str]
    person_ids: list[int]
    camera_sizes: np.ndarray
    skeleton: Skeleton
    source: str

    @property
    def n_tracks(self) -> int:
        return len(self.sequence_ids)

    @property
    def n_joints(self) -> int:
        return self.keypoints.shape[1]

    @property
    def track_lengths(self) -> np.ndarray:
        return np.diff(self.track_starts)

    @property
    def track_keys(self) -> list[str]:
        """Stable per-track keys (``sequence_id#person_id``) that seed per-track randomness."""
        return [f"{s}#{p}" for s, p in zip(self.sequence_ids, self.person_ids)]

    def track(self, index: int) -> slice:
        return slice(int(self.track_starts[index]), int(self.track_starts[index + 1]))


def root_index(skeleton: Skeleton) -> int:
    """Index of the skeleton's root joint (parent -1)."""
    return list(skeleton.parents).index(-1)


def prepare_split(dataset: Dataset, split: str | None, source: str = "gt") -> PreparedSplit:
    """Model-ready arrays of ``split`` (None = the whole dataset) with 2D source ``source``."""
    if source not in dataset.keypoint_sources:
        raise PosebenchError(f"dataset {dataset.name!r} has no 2D source {source!r}; its sources are {sorted(dataset.keypoint_sources)}")
    arrays = dataset.arrays(split, source)
    skeleton = dataset.skeleton
    layout = dataset.keypoint_layout(source)
    keypoints = arrays.keypoints.astype(np.float64)
    occluded = arrays.occluded
    confidence = arrays.confidence.astype(np.float64)
    if layout.name != skeleton.name:
        mapping = get_mapping(layout.name, skeleton.name)
        keypoints = mapping.apply(keypoints)
        uses = mapping.weights != 0
        occluded = (uses.astype(np.int64) @ occluded[..., None].astype(np.int64))[..., 0] > 0
        # a derived joint is as confident as the least confident joint its formula uses (0 without a formula)
        confidence = np.stack(
            [confidence[:, row].min(axis=1) if row.any() else np.zeros(len(confidence)) for row in uses], axis=1
        )
    lengths = np.diff(arrays.track_starts)
    cameras = {s.camera.camera_id: (s.camera.width, s.camera.height) for s in dataset if s.camera is not None}
    sizes = np.array([cameras[c] for c in arrays.camera_ids], dtype=np.float64).reshape(-1, 2)
    per_row = np.repeat(sizes, lengths, axis=0)
    keypoints = normalize_screen_coordinates(keypoints, per_row[:, :1], per_row[:, 1:])
    missing = ~np.isfinite(keypoints).all(axis=-1)
    if missing.any():
        keypoints = fill_tracks(keypoints, missing, arrays.track_starts, "interpolate")
    root = root_index(skeleton)
    joints = arrays.joints_cam.astype(np.float64)
    targets = joints - joints[:, root : root + 1]  # the root becomes exactly 0 (NaN where it is missing)
    return PreparedSplit(
        keypoints=keypoints.astype(np.float32),
        missing=missing,
        occluded=np.asarray(occluded, dtype=bool),
        confidence=np.nan_to_num(confidence, nan=0.0).astype(np.float32),
        targets=targets.astype(np.float32),
        valid=np.isfinite(targets).all(axis=(1, 2)),
        track_starts=arrays.track_starts,
        sequence_ids=list(arrays.sequence_ids),
        person_ids=[int(p) for p in arrays.person_ids],
        camera_sizes=sizes,
        skeleton=skeleton,
        source=source,
    )


def fill_tracks(keypoints: np.ndarray, mask: np.ndarray, track_starts: np.ndarray, mode: FillMode) -> np.ndarray:
    """Replace masked keypoints (N, J, 2) track by track: ``"interpolate"`` linearly over time
    (edges held, joints never visible in a track set to 0) or ``"zero"``."""
    if mode == "zero":
        return apply_mask(keypoints, mask, "zero")
    if mode != "interpolate":
        raise PosebenchError(f"fill mode must be 'interpolate' or 'zero', got {mode!r}")
    filled = np.empty_like(keypoints)
    for start, stop in zip(track_starts[:-1], track_starts[1:]):
        filled[start:stop] = apply_mask(keypoints[start:stop], mask[start:stop], "interpolate", fully_occluded="zero")
    return filled


@dataclass
class ModelInputs:
    """Per-row model inputs of a split for one epoch: keypoints (N, J, 2) and mask (N, J) or None."""

    keypoints: np.ndarray
    mask: np.ndarray | None


def model_inputs(
    split: PreparedSplit,
    *,
    uses_mask: bool,
    occlusion_ratio: float = 0.0,
    occlusion_kernel: int = 1,
    seed: int = 0,
    fill: FillMode = "interpolate",
    natural_occlusion: bool = False,
    confidence_threshold: float = 0.3,
    boundary: str = "valid",
) -> ModelInputs:
    """Inputs as a model of either kind receives them, with synthetic occlusion if ``occlusion_ratio > 0``.

    The occlusion mask joins synthetic long-time occlusion (one mask per track, seeded by
    ``seed`` and the track's key), the originally missing keypoints, and, with
    ``natural_occlusion``, natural occlusion: the dataset's occluded flags and every keypoint
    whose confidence is below ``confidence_threshold`` (the MMHuman paper's rule). A mask-aware model gets the masked
    keypoints zeroed plus the mask; any other model gets them filled (``fill``) and no mask.
    """
    mask = split.missing.copy()
    if natural_occlusion:
        mask |= split.occluded | (split.confidence < confidence_threshold)
    if occlusion_ratio > 0:
        synthetic = masks_for_sequences(
            split.track_lengths.tolist(), split.n_joints, occlusion_ratio, occlusion_kernel, seed, keys=split.track_keys,
            boundary=boundary,
        )
        mask |= np.concatenate(synthetic)
    if uses_mask:
        return ModelInputs(apply_mask(split.keypoints, mask, "zero"), mask)
    if not mask.any() or np.array_equal(mask, split.missing):
        return ModelInputs(split.keypoints, None)
    return ModelInputs(fill_tracks(split.keypoints, mask, split.track_starts, fill), None)


@dataclass
class WindowBatch:
    """A batch of windows: keypoints (B, L, J, 2), mask (B, L, J) or None, targets (B, L, J, 3),
    ``rows`` (B, L) the split rows each window frame was taken from, ``flipped`` (B,)."""

    keypoints: np.ndarray
    mask: np.ndarray | None
    targets: np.ndarray
    rows: np.ndarray
    flipped: np.ndarray


class WindowSampler:
    """Training windows of a prepared split, as VideoPose3D's ``ChunkedGenerator`` cuts them.

    Each window has ``chunk`` output frames ``[start, start + chunk)`` and input frames
    ``[start - before, start + chunk + after)`` (``before, after = model.padding``); frames
    outside the track repeat its first/last frame. With ``chunk = 1`` every frame with a valid
    3D target is one window per epoch; with ``chunk > 1`` a track is cut into
    ``ceil(n / chunk)`` chunks centred on it (VideoPose3D's offset) and chunks without any valid
    target are skipped.
    """

    def __init__(self, split: PreparedSplit, before: int, after: int, chunk: int = 1) -> None:
        if chunk < 1 or before < 0 or after < 0:
            raise PosebenchError(f"window geometry must have chunk >= 1 and non-negative padding, got chunk={chunk}, padding=({before}, {after})")
        self.split = split
        self.before, self.after, self.chunk = before, after, chunk
        self.offsets = np.arange(-before, chunk + after)
        lengths = split.track_lengths
        track_of_row = np.repeat(np.arange(split.n_tracks), lengths)
        if chunk == 1:
            anchors = np.flatnonzero(split.valid)
            tracks = track_of_row[anchors]
        else:
            n_chunks = (lengths + chunk - 1) // chunk
            tracks = np.repeat(np.arange(split.n_tracks), n_chunks)
            index_in_track = np.arange(n_chunks.sum()) - np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
            offset = (n_chunks * chunk - lengths) // 2
            anchors = split.track_starts[tracks] + index_in_track * chunk - offset[tracks]
            output_rows = self._clip(anchors[:, None] + np.arange(chunk)[None], tracks)
            keep = split.valid[output_rows].any(axis=1)
            anchors, tracks = anchors[keep], tracks[keep]
        self.anchors = anchors.astype(np.int64)
        self.anchor_tracks = tracks.astype(np.int64)

    def __len__(self) -> int:
        return len(self.anchors)

    @property
    def window_length(self) -> int:
        return self.before + self.chunk + self.after

    def _clip(self, rows: np.ndarray, tracks: np.ndarray) -> np.ndarray:
        first = self.split.track_starts[tracks][:, None]
        last = self.split.track_starts[tracks + 1][:, None] - 1
        return np.clip(rows, first, last)

    def window_rows(self, windows: np.ndarray) -> np.ndarray:
        """Split rows (len(windows), L) of the frames of windows ``windows`` (indices into the anchors)."""
        return self._clip(self.anchors[windows][:, None] + self.offsets[None], self.anchor_tracks[windows])

    def batch(self, inputs: ModelInputs, windows: np.ndarray, flip: np.ndarray | None = None) -> WindowBatch:
        """Gather windows; rows where ``flip`` is True are mirrored (2D, mask and 3D together)."""
        rows = self.window_rows(windows)
        keypoints = inputs.keypoints[rows]
        mask = None if inputs.mask is None else inputs.mask[rows]
        targets = self.split.targets[rows]
        flipped = np.zeros(len(windows), dtype=bool) if flip is None else np.asarray(flip, dtype=bool)
        if flipped.any():
            skeleton = self.split.skeleton
            keypoints[flipped] = flip_keypoints_2d(keypoints[flipped], skeleton)
            targets[flipped] = flip_joints_3d(targets[flipped], skeleton)
            if mask is not None:
                mask[flipped] = mask[flipped][..., skeleton.flip_permutation]
        return WindowBatch(keypoints, mask, targets, rows, flipped)

    def epoch(self, inputs: ModelInputs, batch_size: int, rng: np.random.Generator, flip: bool = True) -> Iterator[WindowBatch]:
        """One pass over every window in a random order; half of each batch (chosen at random) mirrored.

        A last batch of a single window joins the previous one (batch norm needs two samples).
        """
        if batch_size < 1:
            raise PosebenchError(f"batch size must be a positive integer, got {batch_size}")
        order = rng.permutation(len(self.anchors))
        bounds = list(range(0, len(order), batch_size)) + [len(order)]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]  # no batch of one window: batch norm needs two samples
        for start, stop in zip(bounds[:-1], bounds[1:]):
            windows = order[start:stop]
            flags = None
            if flip:
                flags = np.zeros(len(windows), dtype=bool)
                flags[rng.permutation(len(windows))[: len(windows) // 2]] = True
            yield self.batch(inputs, windows, flags)
