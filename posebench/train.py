"""Training registered lifting models on a dataset in the unified schema (VideoPose3D's recipe).

Amsgrad (Adam with ``amsgrad=True``), learning rate ``lr · lr_scale · lr_decay^k`` in the k-th
epoch of a training stage, batch-norm momentum decaying exponentially from 0.1 to 0.001 over each
stage, horizontal-flip augmentation on half of every batch, optional synthetic occlusion, and
the model's own training stages (:meth:`LiftingModel.training_stages`). Each epoch ends with the
validation MPJPE and a resumable snapshot in the output directory:

- ``last.safetensors`` (weights + metadata) and ``last_state.safetensors`` (optimizer + progress),
- ``history.json`` (per-epoch loss, validation MPJPE, learning rate, momentum, seconds),
- ``checkpoint.safetensors`` once training is complete.

The randomness of epoch ``e`` (window order, flips, occlusion masks, dropout) comes from
generators seeded with ``(seed, e)``, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from posebench.atomic import atomic_output
from posebench.checkpoints import dataset_content_hash, load_checkpoint, load_training_state, save_checkpoint, save_training_state
from posebench.data import NORMALISATION, FillMode, ModelInputs, PreparedSplit, WindowSampler, model_inputs, prepare_split
from posebench.dataset import Dataset, load
from posebench.errors import ModelError, PosebenchError
from posebench.models import LiftingModel, TrainingStage, get_model_class

CHECKPOINT_NAME = "checkpoint.safetensors"
LAST_NAME = "last.safetensors"
STATE_NAME = "last_state.safetensors"
HISTORY_NAME = "history.json"


@dataclass
class EpochRecord:
    """What one epoch did: mean training loss, validation MPJPE (mm, None without validation)."""

    epoch: int
    stage: str
    loss: float
    val_mpjpe: float | None
    lr: float
    bn_momentum: float
    seconds: float


@dataclass
class TrainResult:
    """The trained model (eval mode), its history and where the final checkpoint is."""

    model: LiftingModel
    history: list[EpochRecord]
    checkpoint: Path
    out_dir: Path

    @property
    def val_mpjpe(self) -> float | None:
        """Validation MPJPE after the last epoch (mm)."""
        return self.history[-1].val_mpjpe if self.history else None


def parse_model_params(model_name: str, pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to model hyper-parameters, typed by the constructor's defaults.

    A list default takes comma-separated values (``filter_widths=3,3,3``); booleans take
    true/false/1/0/yes/no; ``none`` gives None. Unknown keys and unparsable values raise
    :class:`ModelError` naming the accepted parameters.
    """
    defaults = model_parameters(model_name)
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise ModelError(f"model parameter {pair!r} must be KEY=VALUE, e.g. channels=256")
        if key not in defaults:
            raise ModelError(f"model {model_name!r} has no parameter {key!r}; its parameters are {', '.join(defaults)}")
        params[key] = _parse_value(model_name, key, text, defaults[key])
    return params


def model_parameters(model_name: str) -> dict[str, Any]:
    """Hyper-parameter names of a registered model with their default values."""
    signature = inspect.signature(get_model_class(model_name).__init__)
    return {
        name: parameter.default for name, parameter in signature.parameters.items()
        if name != "self" and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }


def _parse_value(model_name: str, key: str, text: str, default: Any) -> Any:
    def fail(expected: str) -> ModelError:
        return ModelError(f"model {model_name!r} parameter {key}={text!r}: expected {expected}")

    if text.lower() == "none":
        return None
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise fail("true or false")
    if isinstance(default, (list, tuple)) or default is None and "," in text:
        items = [item.strip() for item in text.split(",") if item.strip()]
        kind = type(default[0]) if isinstance(default, (list, tuple)) and default else None
        try:
            return [_number(item, kind) for item in items]
        except ValueError:
            raise fail("a comma-separated list of numbers, e.g. 3,3,3") from None
    try:
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if default is None:
            return _number(text, None)
    except ValueError:
        raise fail(f"a number like the default {default!r}") from None
    return text


def _number(text: str, kind: type | None) -> int | float:
    if kind is float:
        return float(text)
    if kind is int:
        return int(text)
    try:
        return int(text)
    except ValueError:
        return float(text)


def build_model(model_name: str, params: Mapping[str, Any] | None, n_joints: int) -> LiftingModel:
    """Instantiate a registered model; ``n_joints`` comes from the dataset unless given in ``params``."""
    params = dict(params or {})
    accepted = model_parameters(model_name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ModelError(f"model {model_name!r} has no parameter(s) {unknown}; its parameters are {', '.join(accepted)}")
    if "n_joints" in accepted:
        params.setdefault("n_joints", n_joints)
    model = get_model_class(model_name)(**params)
    if model.n_joints != n_joints:
        raise ModelError(f"model {model_name!r} has n_joints={model.n_joints} but the dataset's skeleton has {n_joints} joints")
    return model


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise PosebenchError(f"device must be auto, cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PosebenchError(f"device {device!r} requested but PyTorch sees no CUDA device; use --device cpu or auto")
    return torch.device(device)


def stage_epochs(stages: Sequence[TrainingStage], epochs: int) -> list[int]:
    """Epochs of each stage: the fractions' cumulative share of ``epochs``, rounded (they sum to ``epochs``)."""
    fractions = np.array([s.epoch_fraction for s in stages], dtype=np.float64)
    if not len(stages) or (fractions <= 0).any():
        raise ModelError("training stages must be a non-empty list with positive epoch fractions")
    bounds = np.rint(np.cumsum(fractions) / fractions.sum() * epochs).astype(int)
    return np.diff(np.concatenate([[0], bounds])).tolist()


def bn_momentum(epoch_in_stage: int, stage_length: int, start: float = 0.1, end: float = 0.001) -> float:
    """VideoPose3D's batch-norm momentum: ``start`` decaying exponentially to ``end`` in the stage's last epoch."""
    if stage_length <= 1:
        return start
    return start * (end / start) ** (epoch_in_stage / (stage_length - 1))


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = momentum


def _epoch_seed(seed: int, epoch: int, purpose: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, purpose]).generate_state(1)[0])


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic algorithms on CPU for the duration of training (previous setting restored)."""
    previous = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _tensor(array: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array)).to(device)


@torch.no_grad()
def evaluate_mpjpe(model: LiftingModel, split: PreparedSplit, inputs: ModelInputs, device: torch.device | str = "cpu") -> float:
    """MPJPE (mm) of ``model.predict`` on every track, averaged over frames with a complete 3D target."""
    device = torch.device(device)
    model.eval()
    total, count = 0.0, 0
    for index in range(split.n_tracks):
        rows = split.track(index)
        valid = split.valid[rows]
        if not valid.any():
            continue
        keypoints = _tensor(inputs.keypoints[rows][None], device)
        mask = _tensor(None if inputs.mask is None else inputs.mask[rows][None], device)
        with _autocast(device):
            pred = model.predict(keypoints, mask)[0].float().cpu().numpy()
        errors = np.linalg.norm(pred[valid] - split.targets[rows][valid], axis=-1).mean(axis=-1)
        total += float(errors.sum())
        count += int(valid.sum())
    if not count:
        raise PosebenchError("the validation split has no frame with a complete 3D target")
    return total / count


def train_model(
    model_name: str,
    dataset: Dataset | str | Path,
    *,
    out_dir: str | Path,
    epochs: int = 60,
    batch_size: int = 1024,
    lr: float = 1e-3,
    lr_decay: float = 0.95,
    params: Mapping[str, Any] | None = None,
    source: str = "gt",
    train_split: str = "train",
    val_split: str | None = "test",
    occlusion_train: float = 0.0,
    occlusion_kernel: int = 1,
    natural_occlusion: bool = False,
    fill: FillMode = "interpolate",
    flip: bool = True,
    chunk: int = 1,
    device: str = "auto",
    seed: int = 0,
    resume: bool = False,
    progress: bool = False,
) -> TrainResult:
    """Train model ``model_name`` (hyper-parameters ``params``) on ``dataset``'s ``train_split``.

    Validation MPJPE each epoch on ``val_split`` (None: no validation), with the same synthetic
    occlusion as training (masks fixed across epochs). ``chunk`` output frames per training
    window (1 = VideoPose3D's single-frame windows). With ``resume`` the run in ``out_dir``
    continues from its last completed epoch; the options must be the same as the first time.
    """
    _check_options(epochs, batch_size, lr, lr_decay, occlusion_train, occlusion_kernel, chunk)
    if not isinstance(dataset, Dataset):
        dataset = load(Path(dataset))
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    torch.manual_seed(seed)
    model = build_model(model_name, params, dataset.skeleton.n_joints).to(torch_device)
    train = prepare_split(dataset, train_split, source)
    validation = prepare_split(dataset, val_split, source) if val_split is not None else None
    sampler = WindowSampler(train, *model.padding, chunk=chunk)
    if not len(sampler):
        raise PosebenchError(f"split {train_split!r} of dataset {dataset.name!r} has no frame with a complete 3D target to train on")
    occlusion = {"ratio": occlusion_train, "kernel": occlusion_kernel, "natural": natural_occlusion, "fill": fill}
    options = {
        "model": model.config, "epochs": epochs, "batch_size": batch_size, "lr": lr, "lr_decay": lr_decay, "source": source,
        "train_split": train_split, "val_split": val_split, "occlusion": occlusion, "flip": flip, "chunk": chunk, "seed": seed,
        "training_data_hash": dataset_content_hash(dataset, train_split),
    }
    val_inputs = None
    if validation is not None:
        val_inputs = model_inputs(validation, uses_mask=model.uses_mask, occlusion_ratio=occlusion_train,
                                  occlusion_kernel=occlusion_kernel, seed=seed, fill=fill, natural_occlusion=natural_occlusion)
    stages = model.training_stages()
    lengths = stage_epochs(stages, epochs)
    stage_of_epoch = np.repeat(np.arange(len(stages)), lengths)
    history: list[EpochRecord] = []
    start_epoch = 0
    optimizer: torch.optim.Optimizer | None = None
    optimizer_stage = -1
    if resume:
        start_epoch, history, optimizer, optimizer_stage = _resume(out_dir, model, options, stages, stage_of_epoch, lr, torch_device)
    elif (out_dir / STATE_NAME).exists() or (out_dir / CHECKPOINT_NAME).exists():
        raise PosebenchError(f"{out_dir} already holds a training run; pass --resume to continue it or choose another --out directory")
    if out_dir.exists() and not out_dir.is_dir():
        raise PosebenchError(f"{out_dir} exists and is not a directory; choose another --out directory")
    out_dir.mkdir(parents=True, exist_ok=True)

    def save_snapshot(path: Path) -> None:
        extra = {"options": options, "val_mpjpe": history[-1].val_mpjpe if history else None}
        save_checkpoint(path, model, skeleton=dataset.skeleton, normalisation={**NORMALISATION, "keypoint_source": source},
                        training_data_hash=options["training_data_hash"], seed=seed, epochs=len(history), extra=extra)

    steps = math.ceil(len(sampler) / batch_size)
    bar = tqdm(total=epochs * steps, initial=start_epoch * steps, desc=f"training {model_name}", unit="step", disable=None if progress else True)
    with _deterministic(torch_device):
        for epoch in range(start_epoch, epochs):
            began = time.perf_counter()
            stage_index = int(stage_of_epoch[epoch])
            stage = stages[stage_index]
            epoch_in_stage = epoch - int(np.searchsorted(stage_of_epoch, stage_index))
            if optimizer is None or optimizer_stage != stage_index:
                optimizer = _stage_optimizer(model, stage, lr)
                optimizer_stage = stage_index
            epoch_lr = lr * stage.lr_scale * lr_decay**epoch_in_stage
            for group in optimizer.param_groups:
                group["lr"] = epoch_lr
            momentum = bn_momentum(epoch_in_stage, lengths[stage_index])
            set_bn_momentum(model, momentum)
            loss = _train_epoch(model, optimizer, sampler, train, occlusion, batch_size, flip, seed, epoch, torch_device, bar)
            val = evaluate_mpjpe(model, validation, val_inputs, torch_device) if validation is not None else None
            history.append(EpochRecord(epoch + 1, stage.name, loss, val, epoch_lr, momentum, time.perf_counter() - began))
            bar.set_postfix(loss=f"{loss:.4g}", val_mpjpe="-" if val is None else f"{val:.1f}")
            save_snapshot(out_dir / LAST_NAME)
            save_training_state(out_dir / STATE_NAME, optimizer, {
                "epochs_done": epoch + 1, "optimizer_stage": optimizer_stage, "options": options,
                "history": [asdict(record) for record in history],
            })
            _write_history(out_dir / HISTORY_NAME, history)
    bar.close()
    save_snapshot(out_dir / CHECKPOINT_NAME)
    return TrainResult(model.eval(), history, out_dir / CHECKPOINT_NAME, out_dir)


def _check_options(epochs: int, batch_size: int, lr: float, lr_decay: float, ratio: float, kernel: int, chunk: int) -> None:
    checks = [
        (isinstance(epochs, int) and epochs >= 1, f"epochs must be a positive integer, got {epochs!r}"),
        (isinstance(batch_size, int) and batch_size >= 1, f"batch size must be a positive integer, got {batch_size!r}"),
        (lr > 0, f"learning rate must be > 0, got {lr!r}"),
        (0 < lr_decay <= 1, f"learning-rate decay must lie in (0, 1], got {lr_decay!r}"),
        (0 <= ratio < 1, f"training occlusion ratio must lie in [0, 1), got {ratio!r}"),
        (isinstance(kernel, int) and kernel >= 1, f"occlusion kernel length must be a positive integer, got {kernel!r}"),
        (isinstance(chunk, int) and chunk >= 1, f"chunk (output frames per training window) must be a positive integer, got {chunk!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise PosebenchError(message)


def _stage_optimizer(model: LiftingModel, stage: TrainingStage, lr: float) -> torch.optim.Optimizer:
    """Start ``stage``: let the model switch to it, freeze what it does not train, build Amsgrad."""
    model.begin_stage(stage.name)
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(stage.trainable is None or bool(stage.trainable(name)))
        if parameter.requires_grad:
            trainable.append(parameter)
    if not trainable:
        raise ModelError(f"training stage {stage.name!r} of model {model.registry_name!r} selects no parameter to train")
    return torch.optim.Adam(trainable, lr=lr, amsgrad=True)


def _train_epoch(
    model: LiftingModel, optimizer: torch.optim.Optimizer, sampler: WindowSampler, train: PreparedSplit,
    occlusion: Mapping[str, Any], batch_size: int, flip: bool, seed: int, epoch: int, device: torch.device, bar: tqdm,
) -> float:
    """One pass over the training windows; returns the window-weighted mean loss."""
    torch.manual_seed(_epoch_seed(seed, epoch, 1))
    rng = np.random.default_rng(_epoch_seed(seed, epoch, 2))
    inputs = model_inputs(train, uses_mask=model.uses_mask, occlusion_ratio=occlusion["ratio"], occlusion_kernel=occlusion["kernel"],
                          seed=_epoch_seed(seed, epoch, 3), fill=occlusion["fill"], natural_occlusion=occlusion["natural"])
    model.train()
    total, count = 0.0, 0
    for batch in sampler.epoch(inputs, batch_size, rng, flip=flip):
        keypoints, mask, targets = _tensor(batch.keypoints, device), _tensor(batch.mask, device), _tensor(batch.targets, device)
        with _autocast(device):
            pred, target = model.training_forward(keypoints, mask, targets)
        keep = torch.isfinite(target).flatten(1).all(dim=1)
        if not bool(keep.any()):
            bar.update(1)
            continue
        if not bool(keep.all()):
            pred, target = pred[keep], target[keep]
        loss = model.loss(pred.float(), target.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * int(keep.sum())
        count += int(keep.sum())
        bar.update(1)
    return total / max(count, 1)


def _resume(
    out_dir: Path, model: LiftingModel, options: Mapping[str, Any], stages: Sequence[TrainingStage],
    stage_of_epoch: np.ndarray, lr: float, device: torch.device,
) -> tuple[int, list[EpochRecord], torch.optim.Optimizer | None, int]:
    state_path, last_path = out_dir / STATE_NAME, out_dir / LAST_NAME
    if not state_path.exists() or not last_path.exists():
        raise PosebenchError(f"{out_dir}: nothing to resume ({STATE_NAME} and {LAST_NAME} are written after each epoch); start without --resume")
    progress = load_training_state(state_path)
    stored = json.loads(json.dumps(progress.get("options")))
    current = json.loads(json.dumps(options))
    if stored != current:
        changed = sorted(k for k in set(stored or {}) | set(current) if (stored or {}).get(k) != current.get(k))
        raise PosebenchError(f"{out_dir}: cannot resume with different options ({', '.join(changed)}); use the options of the interrupted run")
    trained, _ = load_checkpoint(last_path, device=str(device))
    model.load_state_dict(trained.state_dict())
    done = int(progress["epochs_done"])
    history = [EpochRecord(**record) for record in progress["history"]]
    optimizer = None
    optimizer_stage = int(progress["optimizer_stage"])
    if done < len(stage_of_epoch) and int(stage_of_epoch[done]) == optimizer_stage:
        optimizer = _stage_optimizer(model, stages[optimizer_stage], lr)
        load_training_state(state_path, optimizer)
    return done, history, optimizer, optimizer_stage


def _write_history(path: Path, history: Sequence[EpochRecord]) -> None:
    with atomic_output(path, overwrite=True) as temporary:
        temporary.write_text(json.dumps([asdict(record) for record in history], indent=2) + "\n")
