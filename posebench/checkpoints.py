"""Safe model checkpoints: safetensors weights plus a JSON metadata record, never pickle.

A checkpoint is a ``.safetensors`` file whose header metadata (``__metadata__``) holds one key,
``posebench``, with a JSON object: the format version, the model config (registry name and
hyper-parameters), the skeleton, the input/target normalisation, the content hash of the
training data, the posebench version, the seed, the number of epochs and free ``extra`` fields.
The training state of an interrupted run (optimizer tensors and progress) is stored the same
way, so nothing posebench loads can execute code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from posebench import __version__
from posebench.atomic import atomic_output
from posebench.dataset import Dataset
from posebench.dataset.model import transiently_loaded
from posebench.errors import CheckpointError, PosebenchError
from posebench.models import LiftingModel, create_model
from posebench.skeletons import Skeleton, get_skeleton

CHECKPOINT_FORMAT = "posebench-checkpoint/1"
TRAINING_STATE_FORMAT = "posebench-training-state/1"
METADATA_KEY = "posebench"
REQUIRED_KEYS = ("format", "model", "skeleton", "normalisation", "training_data_hash", "posebench_version", "seed", "epochs", "extra")


def dataset_content_hash(dataset: Dataset, split: str | None = "train") -> str:
    """SHA-256 (hex) of a split's content (None = the whole dataset), independent of storage layout.

    Covers the skeleton and 2D source declarations, then every sequence of the split sorted by id:
    its metadata (action, take, fps, subjects, person ids, sources, camera parameters) and arrays
    (timestamps, world and camera joints, each source's xy, confidence and occluded), each array
    as dtype, shape and little-endian bytes.
    """
    selection = dataset.select(split=split) if split is not None else dataset
    digest = hashlib.sha256()
    _update_json(digest, {"skeleton": dataset.skeleton.to_dict(), "keypoint_sources": dataset.keypoint_sources, "split": split})
    for sequence in sorted(selection, key=lambda s: s.sequence_id):
        camera = sequence.camera
        sources = sorted(sequence.keypoint_sources or ())
        _update_json(digest, {
            "sequence_id": sequence.sequence_id, "action": sequence.action, "take": sequence.take, "fps": sequence.fps,
            "subjects": list(sequence.subjects), "person_ids": [int(p) for p in sequence.person_ids], "sources": sources,
            "camera": None if camera is None else {
                "camera_id": camera.camera_id, "width": camera.width, "height": camera.height, "fx": camera.fx, "fy": camera.fy,
                "cx": camera.cx, "cy": camera.cy, "distortion": camera.distortion, "coefficients": list(camera.coefficients),
            },
        })
        with transiently_loaded(sequence):
            arrays = [sequence.timestamps, sequence.joints_world, sequence.joints_cam]
            if camera is not None:
                arrays += [camera.R, camera.t]
            for source in sources:
                keypoints = sequence.keypoints[source]
                arrays += [keypoints.xy, keypoints.confidence, keypoints.occluded]
            for array in arrays:
                _update_array(digest, array)
    return digest.hexdigest()


def _update_json(digest: Any, value: Any) -> None:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    digest.update(len(text).to_bytes(8, "little") + text.encode("utf-8"))


def _update_array(digest: Any, array: np.ndarray | None) -> None:
    if array is None:
        digest.update(b"none")
        return
    array = np.ascontiguousarray(array)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    _update_json(digest, {"dtype": array.dtype.str, "shape": list(array.shape)})
    digest.update(array.tobytes())


def save_checkpoint(
    path: str | Path,
    model: LiftingModel,
    *,
    skeleton: str | Skeleton,
    normalisation: Mapping[str, Any],
    training_data_hash: str | None,
    seed: int | None = None,
    epochs: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata to ``path`` atomically (an existing file is replaced)."""
    skeleton = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "model": model.config,
        "skeleton": skeleton.to_dict(),
        "normalisation": dict(normalisation),
        "training_data_hash": training_data_hash,
        "posebench_version": __version__,
        "seed": seed,
        "epochs": epochs,
        "extra": dict(extra or {}),
    }
    tensors = {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}
    return _write(Path(path), tensors, metadata)


def _write(path: Path, tensors: dict[str, torch.Tensor], metadata: Mapping[str, Any]) -> Path:
    try:
        text = json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: metadata must be JSON (finite numbers, strings, lists, objects): {error}") from None
    with atomic_output(path, overwrite=True) as temporary:
        save_file(tensors, str(temporary), metadata={METADATA_KEY: text})
    return path


def _read(path: Path, device: str, expected_format: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt", device=device) as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except SafetensorError as error:
        raise CheckpointError(
            f"{path}: not a safetensors file ({error}); posebench checkpoints are safetensors, and files in other "
            "formats (e.g. pickled PyTorch .pt files) are never loaded"
        ) from None
    if METADATA_KEY not in header:
        raise CheckpointError(f"{path}: safetensors file without posebench metadata (header key {METADATA_KEY!r}); it was not written by posebench")
    try:
        metadata = json.loads(header[METADATA_KEY])
    except RecursionError:
        raise CheckpointError(f"{path}: posebench metadata is JSON nested too deeply to be a checkpoint's metadata") from None
    except ValueError as error:
        raise CheckpointError(f"{path}: posebench metadata is not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != expected_format:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise CheckpointError(f"{path}: metadata format is {found!r}, expected {expected_format!r}")
    return tensors, metadata


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """The validated metadata of a checkpoint, without building the model."""
    _, metadata = _read(Path(path), "cpu", CHECKPOINT_FORMAT)
    _validate(Path(path), metadata)
    return metadata


def _validate(path: Path, metadata: dict[str, Any]) -> None:
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise CheckpointError(f"{path}: checkpoint metadata lacks {missing}; re-save it with posebench.checkpoints.save_checkpoint")
    model = metadata["model"]
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise CheckpointError(f"{path}: checkpoint metadata 'model' must be an object with the model's 'name' and hyper-parameters")
    try:
        Skeleton.from_dict(metadata["skeleton"])
    except (PosebenchError, TypeError, KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: checkpoint metadata 'skeleton' is invalid: {error}") from None


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[LiftingModel, dict[str, Any]]:
    """Rebuild the model of a checkpoint with its weights (in eval mode) and return it with the metadata."""
    path = Path(path)
    tensors, metadata = _read(path, device, CHECKPOINT_FORMAT)
    _validate(path, metadata)
    config = dict(metadata["model"])
    name = config.pop("name")
    try:
        # Shapes first, on the meta device (no memory): a config naming huge layers must not
        # allocate them before the stored weights are found not to fit.
        with torch.device("meta"):
            shapes = {key: tuple(value.shape) for key, value in create_model(name, **config).state_dict().items()}
    except (PosebenchError, TypeError, ValueError, OverflowError, RuntimeError) as error:
        raise CheckpointError(f"{path}: cannot rebuild model {name!r} from its config: {error}") from None
    stored = {key: tuple(value.shape) for key, value in tensors.items()}
    if shapes != stored:
        differing = sorted(key for key in shapes.keys() | stored.keys() if shapes.get(key) != stored.get(key))
        key = differing[0]
        raise CheckpointError(
            f"{path}: weights do not fit model {name!r} with config {config}: {key} is {stored.get(key, 'missing')} "
            f"in the file and {shapes.get(key, 'absent')} in the model ({len(differing)} tensors differ); the metadata "
            "does not belong to these weights"
        )
    model = create_model(name, **config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit model {name!r} with config {config}: {' '.join(str(error).split())}") from None
    return model.to(device).eval(), metadata


def save_training_state(path: str | Path, optimizer: torch.optim.Optimizer, progress: Mapping[str, Any]) -> Path:
    """Optimizer state (tensors as safetensors, the rest as JSON) and training progress, atomically."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state["state"].items():
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{param_id}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    metadata = {
        "format": TRAINING_STATE_FORMAT,
        "optimizer": {"param_groups": state["param_groups"], "scalars": scalars, "params": sorted(str(p) for p in state["state"])},
        "progress": dict(progress),
    }
    return _write(Path(path), tensors, metadata)


def load_training_state(path: str | Path, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Training progress of a state file; loads the optimizer state into ``optimizer`` if given."""
    path = Path(path)
    tensors, metadata = _read(path, "cpu", TRAINING_STATE_FORMAT)
    if not isinstance(metadata.get("progress"), dict) or not isinstance(metadata.get("optimizer"), dict):
        raise CheckpointError(f"{path}: training state lacks 'progress' or 'optimizer' metadata")
    if optimizer is not None:
        stored = metadata["optimizer"]
        try:
            state: dict[int, dict[str, Any]] = {int(p): dict(stored["scalars"].get(p, {})) for p in stored["params"]}
            for name, tensor in tensors.items():
                _, param_id, key = name.split("/", 2)
                state[int(param_id)][key] = tensor
            optimizer.load_state_dict({"state": state, "param_groups": stored["param_groups"]})
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(
                f"{path}: optimizer state does not fit this model's parameters or is malformed ({type(error).__name__}: {error}); "
                "start the training again without --resume"
            ) from None
    return metadata["progress"]
