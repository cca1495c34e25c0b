"""Hossain & Little's sequence-to-sequence LSTM lifting model."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from posebench.errors import ModelError
from posebench.models import create_model, get_model_class
from posebench.models.seq2seq import LayerNormLSTMCell, Seq2SeqLifter


def _model(**overrides) -> Seq2SeqLifter:
    torch.manual_seed(0)
    return create_model("seq2seq", **{"hidden_size": 24, **overrides}).eval()


def _reference_sequence(model: Seq2SeqLifter, window: torch.Tensor, reverse: bool = True) -> torch.Tensor:
    """The paper's recurrence written out: encoder over the reversed window, decoder from a start
    token of ones, each step adding its projected change to the previous output."""
    hidden = model.encoder.hidden_size
    state = (torch.zeros(1, hidden), torch.zeros(1, hidden))
    frames = range(window.shape[0] - 1, -1, -1) if reverse else range(window.shape[0])
    for t in frames:
        state = model.encoder(window[t].reshape(1, -1), state)
    previous = torch.ones(1, 3 * (model.n_joints - 1))
    poses = []
    for _ in range(window.shape[0]):
        state = model.decoder(previous, state)
        delta = model.output_projection(state[0])
        previous = previous + delta
        pose = torch.zeros(model.n_joints, 3)
        pose[1:] = previous.view(-1, 3) * 1000.0
        poses.append(pose)
    return torch.stack(poses)


def test_registered_with_paper_defaults():
    model = create_model("seq2seq")
    assert get_model_class("seq2seq") is Seq2SeqLifter
    assert model.receptive_field == 5
    assert model.encoder.hidden_size == 1024
    assert model.config["dropout"] == 0.5 and model.config["smoothness"] == 5.0
    assert model.uses_mask is False


@pytest.mark.parametrize("length", [2, 5, 8])
def test_shapes_and_receptive_field(length):
    model = _model(sequence_length=length)
    keypoints = torch.randn(2, 11, 17, 2)
    assert model.receptive_field == length
    assert model(keypoints).shape == (2, 11 - length + 1, 17, 3)
    assert model.sequence_outputs(keypoints).shape == (2, 11 - length + 1, length, 17, 3)
    assert model.predict(keypoints).shape == (2, 11, 17, 3)


def test_decoder_is_residual_on_a_reversed_encoding():
    model = _model()
    keypoints = torch.randn(1, 5, 17, 2)
    decoded = model.sequence_outputs(keypoints)[0, 0]
    torch.testing.assert_close(decoded, _reference_sequence(model, keypoints[0]), rtol=1e-5, atol=1e-3)
    forward_order = _reference_sequence(model, keypoints[0], reverse=False)
    assert (decoded - forward_order).abs().max() > 1e-2


def test_root_is_exactly_zero_and_forward_takes_the_centre_or_last_frame():
    keypoints = torch.randn(1, 9, 17, 2)
    for causal, index in ((False, 2), (True, 4)):
        model = _model(causal=causal)
        sequences = model.sequence_outputs(keypoints)
        out = model(keypoints)
        assert torch.equal(out[..., 0, :], torch.zeros_like(out[..., 0, :]))
        torch.testing.assert_close(out, sequences[:, :, index])


@pytest.mark.parametrize("causal", [False, True])
def test_changing_one_frame_changes_exactly_the_windows_that_contain_it(causal):
    model = _model(causal=causal)
    keypoints = torch.randn(1, 20, 17, 2)
    changed_input = keypoints.clone()
    k = 10
    changed_input[:, k] += 0.5
    diff = (model.predict(changed_input) - model.predict(keypoints)).abs().amax(dim=(0, 2, 3))
    seen = range(k, k + 5) if causal else range(k - 2, k + 3)
    for t in range(20):
        assert (diff[t] > 1e-3) if t in seen else (diff[t] < 1e-4), t


def test_layer_norm_lstm_cell_matches_its_equations():
    torch.manual_seed(3)
    cell = LayerNormLSTMCell(6, 8, dropout=0.0)
    with torch.no_grad():
        cell.gate_gain.uniform_(0.5, 1.5)
        cell.gate_shift.uniform_(-0.2, 0.2)
    x, h, c = torch.randn(4, 6), torch.randn(4, 8), torch.randn(4, 8)
    new_h, new_c = cell(x, (h, c))
    z = torch.cat([x, h], -1) @ cell.linear.weight.T
    gates = []
    for g in range(4):
        part = z[:, 8 * g : 8 * (g + 1)]
        normed = (part - part.mean(-1, keepdim=True)) / torch.sqrt(part.var(-1, unbiased=False, keepdim=True) + 1e-5)
        gates.append(normed * cell.gate_gain[g] + cell.gate_shift[g])
    i, j, f, o = gates
    expected_c = F.layer_norm(c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j), (8,))
    torch.testing.assert_close(new_c, expected_c)
    torch.testing.assert_close(new_h, torch.tanh(expected_c) * torch.sigmoid(o))


def test_recurrent_dropout_only_in_training():
    model = _model(dropout=0.5)
    keypoints = torch.randn(2, 5, 17, 2)
    torch.testing.assert_close(model(keypoints), model(keypoints))
    model.train()
    torch.manual_seed(1)
    first = model(keypoints)
    torch.manual_seed(2)
    assert (model(keypoints) - first).abs().max() > 1e-3


def test_loss_is_mse_plus_weighted_smoothness():
    model = _model()
    target = torch.zeros(1, 3, 17, 3)
    pred = torch.zeros(1, 3, 17, 3)
    pred[0, 1, 12, 0] = 2.0  # LWrist (weight 4) moves 0 -> 2 -> 0
    pred[0, 2, 2, 1] = 1.0  # RKnee (weight 2.5) moves 0 -> 0 -> 1
    mse = (4.0 + 1.0) / pred.numel()
    smooth = (4.0 * (4.0 + 4.0) + 2.5 * 1.0) / (2 * 17 * 3)
    torch.testing.assert_close(model.loss(pred, target), torch.tensor(mse + 5.0 * smooth))


def test_smoothness_weights_follow_the_papers_joint_sets():
    weights = _model().joint_weights.view(-1).tolist()
    # root, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax, Neck, Head, LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist
    assert weights == [1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1, 1, 4, 4, 1, 4, 4]


def test_training_forward_returns_whole_sequences_with_their_targets():
    model = _model()
    keypoints = torch.randn(2, 7, 17, 2)
    targets = torch.arange(7, dtype=torch.float32).view(1, 7, 1, 1).expand(2, 7, 17, 3)
    pred, target = model.training_forward(keypoints, None, targets)
    assert pred.shape == target.shape == (6, 5, 17, 3)
    assert target[1, :, 0, 0].tolist() == [1, 2, 3, 4, 5]
    torch.testing.assert_close(pred.view(2, 3, 5, 17, 3), model.sequence_outputs(keypoints))


def test_paper_input_joints_ignore_the_neck():
    model = _model(input_joints=[0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16])
    keypoints = torch.randn(1, 5, 17, 2)
    moved = keypoints.clone()
    moved[:, :, 9] += 1.0
    torch.testing.assert_close(model(moved), model(keypoints))
    assert model.encoder.linear.in_features == 32 + 24


def test_config_rebuilds_an_identical_model():
    model = _model(sequence_length=4, causal=True, input_joints=[0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16])
    clone = create_model(**model.config)
    clone.load_state_dict(model.state_dict())
    keypoints = torch.randn(1, 9, 17, 2)
    torch.testing.assert_close(clone.eval().predict(keypoints), model.predict(keypoints))


@pytest.mark.parametrize("kwargs, message", [
    ({"sequence_length": 0}, "sequence_length must be a positive integer"),
    ({"input_joints": [0, 17]}, "input_joints"),
    ({"smoothness_weights": [1.0] * 16}, "one weight per joint"),
    ({"dropout": -0.1}, "dropout"),
])
def test_bad_hyper_parameters_are_model_errors(kwargs, message):
    with pytest.raises(ModelError, match=message):
        create_model("seq2seq", hidden_size=8, **kwargs)
