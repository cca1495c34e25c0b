from __future__ import annotations

import pytest
import torch

from model_checks import losses_after_steps
from posebench.errors import ModelError
from posebench.models import create_model
from posebench.models._blocks import sliding_windows
from posebench.models.base import _edge_pad
from posebench.models.rie import GROUPS, RIEModel, group_inputs, relative_encodings

SMALL = dict(filter_widths=[3, 3], channels=16, latent_dim=8, fc_channels=32)


def small_model(**overrides) -> RIEModel:
    torch.manual_seed(0)
    return RIEModel(**{**SMALL, **overrides})


def test_receptive_field_is_the_product_of_the_widths():
    assert RIEModel(filter_widths=[3, 3, 3, 3, 3], channels=8, latent_dim=4, fc_channels=8).receptive_field == 243
    assert RIEModel(filter_widths=[3, 3, 3], channels=8, latent_dim=4, fc_channels=8).receptive_field == 27
    assert small_model().padding == (4, 4)


def test_output_shape_and_zero_root():
    model = small_model().eval()
    out = model(torch.randn(2, 13, 17, 2))
    assert out.shape == (2, 5, 17, 3)
    assert torch.all(out[:, :, 0] == 0)
    assert torch.all(out[:, :, 1:].abs().sum(-1) > 0)


def test_config_rebuilds_an_equivalent_model():
    model = small_model(dropout=0.1, stage_epochs=[2, 2, 1])
    rebuilt = create_model(**model.config)
    assert isinstance(rebuilt, RIEModel)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    model.begin_stage("encoders")
    rebuilt.load_state_dict(model.state_dict())
    assert not rebuilt.use_fusion
    x = torch.randn(1, 9, 17, 2)
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))


def test_encodings_against_an_independent_computation():
    frames, joints = 5, 17
    t = torch.arange(frames, dtype=torch.float32)[:, None]
    j = torch.arange(joints, dtype=torch.float32)[None, :]
    windows = torch.stack([10 * t + j + 0 * j, 100 * j - t], dim=-1)[None]  # (1, 5, 17, 2)
    raw, positional, temporal = relative_encodings(windows)
    torch.testing.assert_close(raw, windows)
    # k_t^j - k_t^0 = (j, 100 j), independent of t
    expected_positional = torch.stack([j.expand(frames, joints), 100 * j.expand(frames, joints)], dim=-1)[None]
    torch.testing.assert_close(positional, expected_positional)
    # k_t^j - k_c^j with c = 2 = (10 (t - 2), -(t - 2)), independent of j
    expected_temporal = torch.stack([(10 * (t - 2)).expand(frames, joints), (-(t - 2)).expand(frames, joints)], dim=-1)[None]
    torch.testing.assert_close(temporal, expected_temporal)


def test_group_input_channel_layout():
    windows = torch.randn(3, 9, 17, 2)
    inputs = group_inputs(windows)
    centre = windows[:, 4]
    for (name, joints), x in zip(GROUPS, inputs):
        n = len(joints)
        assert x.shape == (3, 6 * n, 9), name
        for i, joint in enumerate(joints):
            for coord in range(2):
                channel = 2 * i + coord
                torch.testing.assert_close(x[:, channel], windows[:, :, joint, coord])
                torch.testing.assert_close(x[:, 2 * n + channel], windows[:, :, joint, coord] - windows[:, :, 0, coord])
                torch.testing.assert_close(x[:, 4 * n + channel], windows[:, :, joint, coord] - centre[:, None, joint, coord])


def test_groups_are_the_reference_partition():
    assert dict(GROUPS) == {
        "torso": (0, 7, 8, 9, 10),
        "right_arm": (14, 15, 16),
        "left_arm": (11, 12, 13),
        "right_leg": (1, 2, 3),
        "left_leg": (4, 5, 6),
    }
    assert sorted(j for _, joints in GROUPS for j in joints) == list(range(17))


def test_decoder_outputs_reassemble_in_h36m_order():
    model = small_model().eval()
    for name, joints in GROUPS:
        shrink = model.decoders[name].shrink
        outputs = [j for j in joints if j != 0]
        with torch.no_grad():
            shrink.weight.zero_()
            shrink.bias.copy_(torch.tensor([(10.0 * j + c) / 1000 for j in outputs for c in range(3)]))
    out = model(torch.randn(1, 9, 17, 2))[0, 0]
    expected = torch.tensor([[0.0, 0.0, 0.0]] + [[10.0 * j + c for c in range(3)] for j in range(1, 17)])
    torch.testing.assert_close(out, expected)


def test_training_stages_select_parameters_by_name():
    model = small_model(stage_epochs=[80, 80, 20], finetune_lr_scale=0.5)
    stages = model.training_stages()
    assert [s.name for s in stages] == ["encoders", "fusion", "finetune"]
    assert [s.epoch_fraction for s in stages] == pytest.approx([80 / 180, 80 / 180, 20 / 180])
    assert [s.lr_scale for s in stages] == [1.0, 1.0, 0.5]
    names = [name for name, _ in model.named_parameters()]
    first = {n for n in names if stages[0].trainable(n)}
    second = {n for n in names if stages[1].trainable(n)}
    assert first == {n for n in names if not n.startswith("fusion.")}
    assert any(n.startswith("encoders.") for n in first) and any(n.startswith("global_encoder.") for n in first)
    assert second == {n for n in names if n.startswith(("fusion.", "decoders."))}
    assert second and not any(n.startswith(("encoders.", "global_encoder.")) for n in second)
    assert stages[2].trainable is None


def test_stage_switches_fusion_and_resets_decoders():
    model = small_model().eval()
    x = torch.randn(2, 9, 17, 2)
    model.begin_stage("encoders")
    assert not model.use_fusion
    before = model(x)
    with torch.no_grad():
        for p in model.fusion.parameters():
            p.add_(1.0)
    torch.testing.assert_close(model(x), before)  # fusion is not used in stage 1
    decoder_before = [p.clone() for p in model.decoders.parameters()]
    encoder_before = [p.clone() for p in model.encoders.parameters()]
    model.begin_stage("fusion")
    assert model.use_fusion
    assert all(not torch.equal(a, b) for a, b in zip(decoder_before, model.decoders.parameters()) if a.ndim == 2)
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, model.encoders.parameters()))
    with_fusion = model(x)
    with torch.no_grad():
        for p in model.fusion.parameters():
            p.mul_(2.0)
    assert not torch.allclose(model(x), with_fusion)
    model.begin_stage("finetune")
    assert model.use_fusion
    assert model.state_dict()["stage_index"].item() == 2
    with pytest.raises(ModelError, match="unknown training stage 'warmup'"):
        model.begin_stage("warmup")


def test_entering_the_current_stage_again_changes_nothing():
    model = small_model()
    model.begin_stage("encoders")
    model.begin_stage("fusion")
    decoders = {k: v.clone() for k, v in model.decoders.state_dict().items()}
    resumed = small_model()
    resumed.load_state_dict(model.state_dict())  # a checkpoint taken during the fusion stage
    for m in (model, resumed):
        m.begin_stage("fusion")
        assert all(torch.equal(v, m.decoders.state_dict()[k]) for k, v in decoders.items())
        assert m.use_fusion


def test_valid_semantics_by_perturbation():
    model = small_model().eval()
    x = torch.randn(1, 15, 17, 2)
    base = model(x)
    assert base.shape[1] == 7
    for k in (0, 6, 10, 14):
        perturbed = x.clone()
        perturbed[0, k] += 0.5
        changed = (model(perturbed) - base).abs().amax(dim=(0, 2, 3)) > 1e-4
        expected = torch.tensor([i <= k <= i + 8 for i in range(7)])
        assert torch.equal(changed, expected), k


def test_each_window_is_encoded_relative_to_its_own_centre():
    model = small_model().eval()
    x = torch.randn(1, 11, 17, 2)
    out = model(x)
    for i in range(3):
        torch.testing.assert_close(model(x[:, i : i + 9])[0, 0], out[0, i], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(model.lift_windows(sliding_windows(x, 9)), out[0], atol=1e-3, rtol=1e-4)


def test_predict_returns_every_frame():
    model = small_model().eval()
    x = torch.randn(2, 20, 17, 2)
    out = model.predict(x, chunk=6)
    assert out.shape == (2, 20, 17, 3)
    torch.testing.assert_close(out, model(_edge_pad(x, 4, 4)), atol=1e-3, rtol=1e-4)


def test_rejects_bad_input_and_options():
    model = small_model()
    with pytest.raises(ModelError, match=r"shape \(B, T, 17, 2\)"):
        model(torch.randn(1, 9, 16, 2))
    with pytest.raises(ModelError, match="at least 9 input frames"):
        model(torch.randn(1, 8, 17, 2))
    with pytest.raises(ModelError, match="positive odd integers"):
        RIEModel(filter_widths=[3, 2])
    with pytest.raises(ModelError, match="stage_epochs"):
        RIEModel(stage_epochs=[80, 80])


def test_a_few_steps_reduce_the_loss():
    model = small_model(dropout=0.0, fc_dropout=0.0)
    torch.manual_seed(1)
    x = torch.randn(8, 9, 17, 2)
    target = torch.randn(8, 1, 17, 3) * 100
    target[:, :, 0] = 0
    losses = losses_after_steps(model, x, target, lr=1e-2)
    assert losses[-1] < 0.8 * losses[0]
