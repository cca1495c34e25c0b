"""``posebench run``: evaluate models on a dataset under a protocol and write a run directory.

A run directory holds ``results.csv``/``results.parquet`` (long form), ``summary.md``,
``manifest.json``, ``plots/*.png`` and, with ``save_predictions``, ``predictions/*.parquet`` in the
unified schema. It is written to a temporary directory and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from posebench import __version__
from posebench.atomic import atomic_output
from posebench.checkpoints import dataset_content_hash, load_checkpoint
from posebench.dataset import Dataset, Sequence, load
from posebench.errors import PosebenchError
from posebench.evaluate import TestSet, predict_split, prepare_test_set, score
from posebench.models import LiftingModel, get_model_class
from posebench.protocols import Protocol, get_protocol, preset_names
from posebench.report import console_table, summary_markdown, write_plots
from posebench.results import MANIFEST, results_frame, write_results
from posebench.sample import SAMPLE_NAME
from posebench.train import resolve_device

CHECKPOINT_DIRECTORY = Path(__file__).parent / "assets" / "checkpoints"


@dataclass
class RunOutput:
    """What a run produced: the results table, the manifest and the run directory."""

    results: pd.DataFrame
    manifest: dict
    directory: Path
    console: str


def embedded_checkpoint(model: str) -> Path:
    """The checkpoint shipped for a registered model (trained on the sample's train split)."""
    path = CHECKPOINT_DIRECTORY / f"{model}.safetensors"
    if not path.is_file():
        raise PosebenchError(
            f"no embedded checkpoint for model {model!r}; train one with `posebench train --model {model} ...` and pass it with --checkpoint"
        )
    return path


def file_hash(path: Path) -> str:
    """First 16 hex digits of a file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def resolve_protocol(protocol: str | Path | None, dataset: Dataset) -> Protocol:
    """The protocol asked for, or the preset named like the dataset."""
    if protocol is not None:
        return get_protocol(protocol)
    if dataset.name in preset_names():
        return get_protocol(dataset.name)
    raise PosebenchError(
        f"dataset {dataset.name!r} has no protocol preset of the same name; pass --protocol with one of {preset_names()} or a protocol file"
    )


def with_overrides(protocol: Protocol, ratios: list[float] | None, kernel: int | None, buckets: int | None) -> Protocol:
    """The protocol with command-line overrides applied.

    Ratios choose which rows are produced and leave the protocol's identity alone; a different
    kernel or bucket count changes the numbers, so the protocol is renamed ``<name>+overrides``
    and its hash changes.
    """
    occlusion = protocol.occlusion
    if ratios is not None:
        if occlusion.mode != "synthetic":
            raise PosebenchError(f"protocol {protocol.name!r} uses {occlusion.mode} occlusion; --occlusion ratios apply to synthetic occlusion only")
        occlusion = replace(occlusion, ratios=tuple(float(r) for r in ratios))
    if kernel is not None:
        occlusion = replace(occlusion, kernel=int(kernel))
    movement = protocol.movement_range if buckets is None else replace(protocol.movement_range, buckets=int(buckets))
    changed = replace(protocol, occlusion=occlusion, movement_range=movement)
    if changed.hash != protocol.hash:
        changed = replace(changed, name=f"{protocol.name}+overrides")
    return changed


def load_models(names: list[str], checkpoints: list[Path] | None, device: torch.device) -> list[tuple[str, LiftingModel, str]]:
    """(name, model, checkpoint hash) per requested model."""
    if checkpoints and len(checkpoints) != len(names):
        raise PosebenchError(f"--checkpoint was given {len(checkpoints)} times for {len(names)} models; give one checkpoint per model, in order")
    loaded = []
    for index, name in enumerate(names):
        get_model_class(name)
        path = Path(checkpoints[index]) if checkpoints else embedded_checkpoint(name)
        model, metadata = load_checkpoint(path, device=str(device))
        if metadata["model"]["name"] != name:
            raise PosebenchError(f"{path} is a checkpoint of model {metadata['model']['name']!r}, not {name!r}")
        loaded.append((name, model, file_hash(path)))
    return loaded


def prediction_dataset(test: TestSet, predictions: np.ndarray, label: str) -> Dataset:
    """Predictions in the unified schema: each scored sequence with the predicted joints.

    Camera-frame joints are the root-relative prediction plus the ground-truth root position, so
    that world coordinates are meaningful and the root-relative pose is recovered exactly by
    subtracting the root; the sequence attribute ``prediction_root`` records this.
    """
    split = test.split
    by_sequence: dict[str, list[int]] = {}
    for track, sequence_id in enumerate(split.sequence_ids):
        by_sequence.setdefault(sequence_id, []).append(track)
    sequences = []
    dataset = test.dataset
    root = list(dataset.skeleton.parents).index(-1)
    for sequence_id, tracks in by_sequence.items():
        original = dataset[sequence_id]
        joints_cam = original.joints_cam.astype(np.float64).copy()
        for track in tracks:
            person = original.person_ids.index(split.person_ids[track])
            rows = split.track(track)
            joints_cam[person] = predictions[rows] + joints_cam[person][:, root : root + 1]
        world = original.camera.camera_to_world(joints_cam)
        sequences.append(
            Sequence.create(
                sequence_id, original.subjects, world.astype(np.float32), original.fps, timestamps=original.timestamps,
                action=original.action, take=original.take, camera=original.camera, person_ids=original.person_ids,
                attributes={**original.attributes, "prediction_root": "ground-truth root added to the root-relative prediction"},
            )
        )
    return Dataset(
        f"{dataset.name}-predictions-{label}", sequences, dataset.skeleton,
        splits={test.protocol.test_split: [s.sequence_id for s in sequences]},
        provenance={"converter": "posebench run", "converter_version": __version__, "source_dataset": dataset.name},
    )


def run_benchmark(
    models: list[str],
    *,
    checkpoints: list[Path] | None = None,
    dataset: str | Path | None = None,
    protocol: str | Path | None = None,
    occlusion: list[float] | None = None,
    occlusion_kernel: int | None = None,
    mr_buckets: int | None = None,
    device: str = "auto",
    seed: int = 0,
    save_predictions: bool = False,
    out: Path = Path("runs/latest"),
    command: str = "",
    progress: bool = True,
) -> RunOutput:
    """Evaluate ``models`` and write the run directory ``out`` (see the module docstring)."""
    started = time.perf_counter()
    if not models:
        raise PosebenchError("no model given; pass --model NAME[,NAME...] (see `posebench models`)")
    if dataset is None and checkpoints:
        raise PosebenchError("--checkpoint needs --dataset: the embedded checkpoints go with the embedded sample")
    if Path(out).exists() and not (Path(out) / MANIFEST).is_file():
        raise PosebenchError(f"{out} exists and is not a posebench run directory (no {MANIFEST}), so it is not replaced; choose another --out")
    torch_device = resolve_device(device)
    data = load(dataset if dataset is not None else SAMPLE_NAME)
    chosen = with_overrides(resolve_protocol(protocol, data), occlusion, occlusion_kernel, mr_buckets)
    ratios = list(chosen.occlusion.ratios) if chosen.occlusion.mode == "synthetic" else [0.0]
    kernel = chosen.occlusion.kernel
    test = prepare_test_set(data, chosen)
    data_hash = dataset_content_hash(data, chosen.test_split)
    loaded = load_models(models, checkpoints, torch_device)
    rows, timings, prediction_sets = [], {}, {}
    bar = tqdm(total=len(loaded) * len(ratios), desc="evaluating", unit="run", disable=not progress)
    for name, model, checkpoint_hash in loaded:
        for ratio in ratios:
            tic = time.perf_counter()
            predictions, mask = predict_split(model, test, occlusion_ratio=ratio, occlusion_kernel=kernel, seed=seed, device=torch_device)
            elapsed = time.perf_counter() - tic
            timings[f"{name}@{ratio:g}"] = {"inference_s": round(elapsed, 3), "frames_per_s": round(len(predictions) / elapsed, 1)}
            for row in score(test, predictions, mask):
                rows.append({
                    "model": name, "checkpoint_hash": checkpoint_hash, "parameters": model.parameter_count(),
                    "dataset": data.name, "dataset_hash": data_hash, "protocol": chosen.name, "protocol_hash": chosen.hash,
                    "occlusion_ratio": ratio, "occlusion_kernel": kernel, "seed": seed, **row,
                })
            if save_predictions:
                prediction_sets[f"{name}__occ{ratio:g}"] = prediction_dataset(test, predictions, f"{name}-occ{ratio:g}")
            bar.update(1)
    bar.close()
    results = results_frame(rows)
    manifest = {
        "posebench_version": __version__,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__},
        "command": command,
        "device": str(torch_device),
        "seed": seed,
        "dataset": {"name": data.name, "hash": data_hash, "path": str(dataset) if dataset is not None else SAMPLE_NAME, "split": chosen.test_split, "scored_frames": test.n_scored},
        "protocol": {"name": chosen.name, "hash": chosen.hash, "content": chosen.to_dict()},
        "protocol_metrics": list(chosen.metrics),
        "models": {name: {"checkpoint_hash": h, "parameters": m.parameter_count(), "config": m.config} for name, m, h in loaded},
        "occlusion_ratios": ratios,
        "occlusion_kernel": kernel,
        "mr_bucket_edges": [float(e) for e in test.mr_edges],
        "timings": timings,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    joint_order = list(data.skeleton.joints)
    with atomic_output(Path(out), overwrite=True) as directory:
        write_results(results, directory)
        (directory / "summary.md").write_text(summary_markdown(results, manifest, joint_order) + "\n", encoding="utf-8")
        write_plots(results, manifest, joint_order, directory / "plots")
        for label, predicted in prediction_sets.items():
            predicted.save(directory / "predictions" / f"{label}.parquet")
        manifest["wall_time_s"] = round(time.perf_counter() - started, 2)
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return RunOutput(results, manifest, Path(out), console_table(results, manifest))
