"""VideoPose3D TCN, its single-frame variant and the MMHuman gated TCN."""

from __future__ import annotations

import pytest
import torch

from posebench.errors import ModelError
from posebench.models import create_model, get_model_class, model_names
from posebench.models.gated_tcn import GatedTemporalConvNet
from posebench.models.tcn import SingleFrameNet, TemporalConvNet

SMALL = {"channels": 32, "filter_widths": [3, 3]}


def _randomise_batch_norm(model: torch.nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)


def _model(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, **{**SMALL, **overrides})
    _randomise_batch_norm(model)
    return model.eval()


def test_models_are_registered():
    assert {"tcn", "single-frame", "gated-tcn"} <= set(model_names())
    assert get_model_class("tcn") is TemporalConvNet
    assert get_model_class("single-frame") is SingleFrameNet
    assert get_model_class("gated-tcn") is GatedTemporalConvNet
    assert TemporalConvNet.uses_mask is False and GatedTemporalConvNet.uses_mask is True


@pytest.mark.parametrize("widths, field", [([3, 3, 3], 27), ([3, 3, 3, 3], 81), ([3, 3, 3, 3, 3], 243), ([3, 3, 7], 63), ([1], 1)])
@pytest.mark.parametrize("name", ["tcn", "gated-tcn"])
def test_receptive_field_is_the_product_of_filter_widths(name, widths, field):
    assert create_model(name, channels=8, filter_widths=widths).receptive_field == field


def test_defaults_are_the_243_frame_model_and_single_frame_has_field_1():
    assert create_model("tcn", channels=8).receptive_field == 243
    assert create_model("single-frame", channels=8).receptive_field == 1
    assert create_model("single-frame", channels=8).config["blocks"] == 4


def test_tcn_parameter_count_matches_videopose3d():
    # VideoPose3D Table 5: 16.95M parameters for the 243-frame model (17 joints, 1024 channels).
    count = create_model("tcn").parameter_count()
    assert abs(count - 16.95e6) / 16.95e6 < 0.01
    # Independent count: expand conv + BN, 4 blocks of (3-wide conv + BN + 1x1 conv + BN), shrink conv with bias.
    c = 1024
    expected = 34 * c * 3 + 2 * c + 4 * (c * c * 3 + 2 * c + c * c + 2 * c) + c * 51 + 51
    assert count == expected


@pytest.mark.parametrize("name", ["tcn", "gated-tcn", "single-frame"])
def test_output_shapes_and_predict_length(name):
    model = create_model(name, channels=16).eval() if name == "single-frame" else _model(name)
    keypoints = torch.randn(2, 30, 17, 2)
    out = model(keypoints)
    assert out.shape == (2, 30 - model.receptive_field + 1, 17, 3)
    assert model.predict(keypoints).shape == (2, 30, 17, 3)
    assert model.predict(keypoints[:, :3]).shape == (2, 3, 17, 3)  # shorter than the receptive field


@pytest.mark.parametrize("name", ["tcn", "gated-tcn"])
@pytest.mark.parametrize("causal", [False, True])
def test_changing_one_frame_changes_exactly_the_outputs_that_see_it(name, causal):
    model = _model(name, causal=causal)
    pad = (model.receptive_field - 1) // 2
    keypoints = torch.randn(1, 40, 17, 2)
    mask = torch.zeros(1, 40, 17, dtype=torch.bool)
    k = 20
    changed_input = keypoints.clone()
    changed_input[:, k] += 0.5
    diff = (model.predict(changed_input, mask) - model.predict(keypoints, mask)).abs().amax(dim=(0, 2, 3))
    seen = range(k, k + 2 * pad + 1) if causal else range(k - pad, k + pad + 1)
    for t in range(40):
        if t in seen:
            assert diff[t] > 1e-3, t
        else:
            assert diff[t] < 1e-5, t


@pytest.mark.parametrize("name", ["tcn", "gated-tcn"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("widths", [[3, 3], [3, 5, 3]])
def test_strided_twin_equals_dilated_model_in_eval_mode(name, causal, widths):
    model = _model(name, causal=causal, filter_widths=widths)
    keypoints = torch.randn(4, model.receptive_field, 17, 2)
    mask = torch.rand(4, model.receptive_field, 17) > 0.6
    dilated = model(keypoints, mask)
    strided = model.forward_single(keypoints, mask)
    assert strided.shape == dilated.shape == (4, 1, 17, 3)
    torch.testing.assert_close(strided, dilated, rtol=1e-5, atol=1e-4)


def test_strided_twin_needs_exactly_the_receptive_field():
    model = _model("tcn")
    with pytest.raises(ModelError, match="exactly 9 frames"):
        model.forward_single(torch.randn(1, 10, 17, 2))


@pytest.mark.parametrize("causal", [False, True])
def test_training_forward_uses_the_target_of_the_output_frame(causal):
    model = _model("tcn", causal=causal)
    keypoints = torch.randn(3, 9, 17, 2)
    targets = torch.arange(9, dtype=torch.float32).view(1, 9, 1, 1).expand(3, 9, 17, 3)
    pred, target = model.training_forward(keypoints, None, targets)
    assert pred.shape == target.shape == (3, 1, 17, 3)
    assert float(target[0, 0, 0, 0]) == (8 if causal else 4)
    torch.testing.assert_close(pred, model(keypoints))
    longer = torch.randn(3, 12, 17, 2)
    pred, target = model.training_forward(longer, None, torch.zeros(3, 12, 17, 3))
    assert pred.shape == target.shape == (3, 4, 17, 3)


def test_gated_tcn_uses_the_mask_and_tcn_ignores_it():
    keypoints = torch.randn(2, 20, 17, 2)
    no_mask = torch.zeros(2, 20, 17, dtype=torch.bool)
    some = no_mask.clone()
    some[:, 8:12, 3] = True
    gated = _model("gated-tcn")
    assert (gated(keypoints, some) - gated(keypoints, no_mask)).abs().max() > 1e-3
    torch.testing.assert_close(gated(keypoints, None), gated(keypoints, no_mask))
    plain = _model("tcn")
    torch.testing.assert_close(plain(keypoints, some), plain(keypoints, no_mask))


def test_gate_follows_the_paper_equations():
    # One gated layer by hand: Y = ReLU(BN(X*W_f)), M = sigmoid(BN(M_prev*W_g)), X_next = Y ⊙ M.
    model = _model("gated-tcn", filter_widths=[3])
    layer = model.expand
    x = torch.randn(2, 34, 7)
    gate = (torch.rand(2, 34, 7) > 0.5).float()
    features, new_gate = layer(x, gate, strided=False)
    bn = lambda norm, v: (v - norm.running_mean[:, None]) / torch.sqrt(norm.running_var[:, None] + norm.eps) * norm.weight[:, None] + norm.bias[:, None]
    expected_gate = torch.sigmoid(bn(layer.gate_bn, torch.nn.functional.conv1d(gate, layer.gate_conv.weight)))
    expected = torch.relu(bn(layer.feature_bn, torch.nn.functional.conv1d(x, layer.feature_conv.weight))) * expected_gate
    torch.testing.assert_close(new_gate, expected_gate)
    torch.testing.assert_close(features, expected)


def test_mask_is_broadcast_to_both_coordinates_of_a_joint():
    model = _model("gated-tcn", filter_widths=[1])
    captured = {}
    model.expand.gate_conv.register_forward_pre_hook(lambda module, args: captured.update(gate=args[0]))
    mask = torch.zeros(1, 3, 17, dtype=torch.bool)
    mask[0, 1, 5] = True
    model(torch.randn(1, 3, 17, 2), mask)
    gate = captured["gate"]
    assert gate.shape == (1, 34, 3)
    assert torch.nonzero(gate).tolist() == [[0, 10, 1], [0, 11, 1]]


@pytest.mark.parametrize("name", ["tcn", "gated-tcn", "single-frame"])
def test_config_rebuilds_an_identical_model(name):
    torch.manual_seed(1)
    model = create_model(name, channels=16, causal=True) if name != "single-frame" else create_model(name, channels=16, blocks=2)
    clone = create_model(**model.config)
    clone.load_state_dict(model.state_dict())
    keypoints = torch.randn(1, 12, 17, 2)
    torch.testing.assert_close(clone.eval().predict(keypoints), model.eval().predict(keypoints))
    assert clone.config == model.config


def test_output_is_scaled_to_millimetres():
    model = _model("tcn")
    keypoints = torch.randn(1, 9, 17, 2)
    metres = create_model(**{**model.config, "output_scale": 1.0})
    metres.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(keypoints), metres.eval()(keypoints) * 1000.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"filter_widths": [3, 2]}, "positive odd integers"),
    ({"filter_widths": []}, "positive odd integers"),
    ({"channels": 0}, "channels must be a positive integer"),
    ({"dropout": 1.0}, "dropout must be a probability"),
])
def test_bad_hyper_parameters_are_model_errors(kwargs, message):
    with pytest.raises(ModelError, match=message):
        create_model("tcn", **kwargs)


def test_bad_input_shapes_are_model_errors():
    model = _model("tcn")
    with pytest.raises(ModelError, match=r"\(B, T, 17, 2\)"):
        model(torch.randn(1, 9, 16, 2))
    with pytest.raises(ModelError, match="at least 9 input frames"):
        model(torch.randn(1, 8, 17, 2))
    with pytest.raises(ModelError, match="mask must have shape"):
        _model("gated-tcn")(torch.randn(1, 9, 17, 2), torch.zeros(1, 9, 16, dtype=torch.bool))
