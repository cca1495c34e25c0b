"""Safe checkpoints (safetensors + JSON metadata), training state and dataset content hashes."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from dataset_factory import make_dataset
from safetensors.torch import save_file

from posebench import __version__
from posebench.checkpoints import (
    dataset_content_hash,
    load_checkpoint,
    load_training_state,
    read_checkpoint_metadata,
    save_checkpoint,
    save_training_state,
)
from posebench.data import NORMALISATION
from posebench.dataset import load
from posebench.errors import CheckpointError
from posebench.models import create_model


class _Payload:
    """Unpickling this object would create a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _small_model(name: str = "tcn"):
    torch.manual_seed(0)
    if name == "seq2seq":
        return create_model("seq2seq", hidden_size=16)
    return create_model(name, channels=16, filter_widths=[3, 3])


def _save(path, model, **overrides):
    arguments = {"skeleton": "h36m17", "normalisation": NORMALISATION, "training_data_hash": "ab" * 32, "seed": 7, "epochs": 3,
                 "extra": {"note": "test"}}
    return save_checkpoint(path, model, **{**arguments, **overrides})


@pytest.mark.parametrize("name", ["tcn", "gated-tcn", "seq2seq"])
def test_round_trip_gives_the_same_predictions(tmp_path, name):
    model = _small_model(name)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.normal_()
    path = _save(tmp_path / "model.safetensors", model)
    loaded, metadata = load_checkpoint(path)
    keypoints = torch.randn(1, 15, 17, 2)
    mask = torch.rand(1, 15, 17) > 0.5
    torch.testing.assert_close(loaded.predict(keypoints, mask), model.eval().predict(keypoints, mask), rtol=0, atol=0)
    assert metadata["model"] == model.config
    assert metadata["skeleton"]["name"] == "h36m17"
    assert metadata["normalisation"] == NORMALISATION
    assert metadata["training_data_hash"] == "ab" * 32
    assert (metadata["seed"], metadata["epochs"], metadata["extra"]) == (7, 3, {"note": "test"})
    assert metadata["posebench_version"] == __version__
    assert not loaded.training
    assert not list(tmp_path.glob(".*tmp*"))


def test_metadata_is_plain_json_in_the_safetensors_header(tmp_path):
    path = _save(tmp_path / "model.safetensors", _small_model())
    header_length = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_length])
    stored = json.loads(header["__metadata__"]["posebench"])
    assert stored["format"] == "posebench-checkpoint/1"
    assert stored["model"]["name"] == "tcn"
    assert read_checkpoint_metadata(path) == stored


def test_a_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "x.safetensors"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(CheckpointError, match=r"x\.safetensors: not a safetensors file"):
        load_checkpoint(path)
    torch_file = tmp_path / "torch.safetensors"
    torch.save({"weights": _Payload(str(marker))}, torch_file)
    with pytest.raises(CheckpointError, match=r"torch\.safetensors: not a safetensors file"):
        load_checkpoint(torch_file)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_training_state(path)
    assert not marker.exists()


def test_missing_file_and_foreign_safetensors_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"absent\.safetensors: no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match=r"foreign\.safetensors: safetensors file without posebench metadata"):
        load_checkpoint(foreign)


def _rewrite_metadata(source, target, change):
    from safetensors import safe_open

    with safe_open(str(source), "pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        metadata = json.loads(handle.metadata()["posebench"])
    change(metadata)
    save_file(tensors, str(target), metadata={"posebench": json.dumps(metadata)})
    return target


def test_invalid_metadata_names_the_file_and_the_problem(tmp_path):
    good = _save(tmp_path / "good.safetensors", _small_model())
    no_seed = _rewrite_metadata(good, tmp_path / "no_seed.safetensors", lambda m: m.pop("seed"))
    with pytest.raises(CheckpointError, match=r"no_seed\.safetensors: checkpoint metadata lacks \['seed'\]"):
        load_checkpoint(no_seed)
    unknown = _rewrite_metadata(good, tmp_path / "unknown.safetensors", lambda m: m["model"].update(name="no-such-model"))
    with pytest.raises(CheckpointError, match=r"unknown\.safetensors: cannot rebuild model 'no-such-model'"):
        load_checkpoint(unknown)
    wrong = _rewrite_metadata(good, tmp_path / "wrong.safetensors", lambda m: m["model"].update(channels=32))
    with pytest.raises(CheckpointError, match=r"wrong\.safetensors: weights do not fit model 'tcn'"):
        load_checkpoint(wrong)
    other_format = _rewrite_metadata(good, tmp_path / "state.safetensors", lambda m: m.update(format="posebench-training-state/1"))
    with pytest.raises(CheckpointError, match="expected 'posebench-checkpoint/1'"):
        load_checkpoint(other_format)


def test_optimizer_state_round_trips_without_pickle(tmp_path):
    model = _small_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    for _ in range(2):
        loss = model(torch.randn(4, 9, 17, 2)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = save_training_state(tmp_path / "state.safetensors", optimizer, {"epochs_done": 2})
    fresh = torch.optim.Adam(model.parameters(), lr=5.0, amsgrad=True)
    assert load_training_state(path, fresh) == {"epochs_done": 2}
    original, restored = optimizer.state_dict(), fresh.state_dict()
    assert restored["param_groups"] == json.loads(json.dumps(original["param_groups"]))
    for key, state in original["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(restored["state"][key][name], value, rtol=0, atol=0)


def test_dataset_hash_depends_on_content_not_layout(tmp_path):
    dataset = make_dataset(seed=1, n_frames=24)
    digest = dataset_content_hash(dataset)
    assert len(digest) == 64 and digest == dataset_content_hash(make_dataset(seed=1, n_frames=24))
    dataset.save(tmp_path / "d.parquet")
    dataset.save(tmp_path / "d.h5", format="hdf5")
    assert dataset_content_hash(load(tmp_path / "d.parquet")) == digest
    assert dataset_content_hash(load(tmp_path / "d.h5")) == digest
    assert dataset_content_hash(dataset, "test") != digest
    assert dataset_content_hash(dataset, None) not in (digest, dataset_content_hash(dataset, "test"))
    changed = make_dataset(seed=1, n_frames=24)
    changed["take1/phone"].keypoints["gt"].xy[0, 3, 2, 0] += np.float32(0.5)
    assert dataset_content_hash(changed) != digest
    assert dataset_content_hash(changed, "test") == dataset_content_hash(dataset, "test")
