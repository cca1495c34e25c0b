from __future__ import annotations

import pytest
import torch

from model_checks import losses_after_steps
from posebench.errors import ModelError
from posebench.models import create_model
from posebench.models.anatomy import (
    BONES,
    SHIFT_PAIRS,
    AnatomyModel,
    AnatomyOutputs,
    anatomy_loss_terms,
    bone_directions,
    bone_lengths,
    bone_vectors,
    compose_joints,
    joint_shifts,
    rescale_bones,
)

SMALL = dict(filter_widths=[3, 3], channels=32)
H36M_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]


def small_model(**overrides) -> AnatomyModel:
    torch.manual_seed(0)
    return AnatomyModel(**{**SMALL, **overrides})


def random_pose_sequence(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    """Root-relative poses (mm) with fixed bone lengths per sequence and random directions per frame."""
    generator = torch.Generator().manual_seed(seed)
    lengths = 100 + 300 * torch.rand(batch, 1, 16, 1, generator=generator)
    directions = torch.randn(batch, frames, 16, 3, generator=generator)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    return compose_joints(lengths * directions)


def test_bone_list_and_shift_pairs_are_the_reference_ones():
    assert BONES == (
        (16, 15), (15, 14), (13, 12), (12, 11), (10, 9), (9, 8), (8, 7), (8, 11),
        (8, 14), (7, 0), (3, 2), (2, 1), (6, 5), (5, 4), (1, 0), (4, 0),
    )
    bone_pairs = {tuple(sorted(b)) for b in BONES}
    every_pair = [(i, j) for i in range(17) for j in range(i, 17)]
    assert len(every_pair) == 153
    assert list(SHIFT_PAIRS) == [p for p in every_pair if p not in bone_pairs]
    assert len(SHIFT_PAIRS) == 137
    assert (0, 0) in SHIFT_PAIRS and (8, 11) not in SHIFT_PAIRS and (0, 1) not in SHIFT_PAIRS


def test_bone_vectors_lengths_directions_and_shifts():
    joints = torch.randn(4, 17, 3)
    vectors = bone_vectors(joints)
    for index, (a, b) in enumerate(BONES):
        torch.testing.assert_close(vectors[:, index], joints[:, a] - joints[:, b])
    torch.testing.assert_close(bone_lengths(joints), vectors.norm(dim=-1))
    torch.testing.assert_close(bone_directions(joints) * bone_lengths(joints)[..., None], vectors)
    shifts = joint_shifts(joints)
    assert shifts.shape == (4, 137, 3)
    for index, (i, j) in enumerate(SHIFT_PAIRS):
        torch.testing.assert_close(shifts[:, index], joints[:, j] - joints[:, i])


@pytest.mark.parametrize("dim", [2, 3])
def test_composition_inverts_the_decomposition(dim):
    joints = torch.randn(5, 6, 17, dim) * 300
    torch.testing.assert_close(compose_joints(bone_vectors(joints)), joints - joints[..., :1, :], atol=1e-3, rtol=1e-5)


def test_composition_walks_the_kinematic_tree():
    bones = torch.randn(16, 3)
    joints = compose_joints(bones)
    vector_of = {(a, b): bones[i] for i, (a, b) in enumerate(BONES)}
    for child, parent in enumerate(H36M_PARENTS):
        if parent < 0:
            assert torch.all(joints[child] == 0)
            continue
        step = vector_of[(child, parent)] if (child, parent) in vector_of else -vector_of[(parent, child)]
        torch.testing.assert_close(joints[child], joints[parent] + step)


def test_rescale_bones_scales_every_bone_and_keeps_the_root():
    poses = torch.randn(2, 3, 17, 2)
    scales = torch.rand(2, 16) + 0.5
    rescaled = rescale_bones(poses, scales)
    torch.testing.assert_close(rescaled[:, :, 0], poses[:, :, 0])
    torch.testing.assert_close(bone_vectors(rescaled), bone_vectors(poses) * scales[:, None, :, None])


def test_receptive_field_shapes_and_zero_root():
    assert AnatomyModel(filter_widths=[3, 3, 3, 3, 3], channels=8).receptive_field == 243
    assert AnatomyModel(filter_widths=[3, 3, 3], channels=8).receptive_field == 27
    model = small_model().eval()
    out = model(torch.randn(2, 13, 17, 2))
    assert out.shape == (2, 5, 17, 3)
    assert torch.all(out[:, :, 0] == 0)


def test_config_rebuilds_an_equivalent_model():
    model = small_model(use_visibility=True, length_frames=7, length_weight=5.0)
    rebuilt = create_model(**model.config)
    assert isinstance(rebuilt, AnatomyModel)
    assert rebuilt.uses_mask and rebuilt.loss_weights["lengths"] == 5.0
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(1, 20, 17, 2)
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))


def test_attention_weights_sum_to_one_and_lengths_are_their_average():
    model = small_model().eval()
    estimate = model.estimate_lengths(torch.randn(3, 7, 17, 2))
    assert estimate.weights.shape == (3, 7, 16)
    assert torch.all(estimate.weights > 0)
    torch.testing.assert_close(estimate.weights.sum(dim=1), torch.ones(3, 16))
    per_frame = bone_lengths(estimate.frame_joints)
    torch.testing.assert_close(estimate.lengths, (per_frame * estimate.weights).sum(dim=1))


def test_frame_sampling_is_uniform_without_replacement_and_seeded_in_evaluation():
    model = small_model(length_frames=5)
    model.train()
    drawn = model.sample_frames(4, 30, torch.device("cpu"))
    assert drawn.shape == (4, 5)
    assert all(len(set(row.tolist())) == 5 and 0 <= min(row) and max(row) < 30 for row in drawn)
    model.eval()
    torch.testing.assert_close(model.sample_frames(4, 30, torch.device("cpu")), model.sample_frames(4, 30, torch.device("cpu")))
    assert torch.equal(model.sample_frames(1, 4, torch.device("cpu")), torch.arange(4)[None])
    counts = torch.bincount(small_model(length_frames=10).eval().sample_frames(3000, 20, torch.device("cpu")).flatten(), minlength=20)
    assert counts.min() > 1300 and counts.max() < 1700  # each frame is drawn with probability 1/2


def test_forward_lengths_come_from_the_given_window_and_predict_from_the_whole_sequence():
    model = small_model(length_frames=None).eval()
    x = torch.randn(1, 40, 17, 2)
    base = model.predict(x)
    changed_input = x.clone()
    changed_input[0, 35] += 0.7  # far outside the window of frame 5 (frames 1..9)
    changed = model.predict(changed_input)
    torch.testing.assert_close(bone_directions(changed[0, 5]), bone_directions(base[0, 5]), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(bone_lengths(changed[0, 5]), bone_lengths(base[0, 5]))
    # every frame of a sequence shares the bone lengths
    torch.testing.assert_close(bone_lengths(base[0]), bone_lengths(base[0, :1]).expand(40, 16), atol=1e-3, rtol=1e-5)
    # forward on a window estimates the lengths from that window only
    window = x[:, 1:10]
    expected = model.estimate_lengths(window).lengths * 1000
    torch.testing.assert_close(bone_lengths(model(window)[0, 0]), expected[0], atol=1e-3, rtol=1e-5)


def test_directions_have_valid_semantics():
    model = small_model().eval()
    x = torch.randn(1, 15, 17, 2)
    base = bone_directions(model(x))
    for k in (0, 6, 14):
        perturbed = x.clone()
        perturbed[0, k] += 0.5
        changed = (bone_directions(model(perturbed)) - base).abs().amax(dim=(0, 2, 3)) > 1e-4
        assert torch.equal(changed, torch.tensor([i <= k <= i + 8 for i in range(7)])), k


def test_predict_directions_match_forward_on_padded_windows():
    model = small_model(length_frames=None).eval()
    x = torch.randn(2, 12, 17, 2)
    out = model.predict(x, chunk=5)
    assert out.shape == (2, 12, 17, 3)
    padded = torch.cat([x[:, :1].expand(-1, 4, -1, -1), x, x[:, -1:].expand(-1, 4, -1, -1)], dim=1)
    torch.testing.assert_close(bone_directions(out), bone_directions(model(padded)), atol=1e-5, rtol=1e-5)


def test_visibility_enters_only_when_enabled():
    x = torch.randn(1, 9, 17, 2)
    mask = torch.zeros(1, 9, 17, dtype=torch.bool)
    mask[0, :, 13] = True
    plain = small_model().eval()
    assert not plain.uses_mask
    torch.testing.assert_close(plain(x, mask), plain(x))
    visible = small_model(use_visibility=True).eval()
    assert visible.uses_mask
    torch.testing.assert_close(visible(x, torch.zeros_like(mask)), visible(x))
    assert not torch.allclose(visible(x, mask), visible(x))
    with pytest.raises(ModelError, match="mask must have shape"):
        visible(x, mask[:, :, :16])


def perfect_outputs(target: torch.Tensor, frame: int, scales: torch.Tensor) -> AnatomyOutputs:
    metres = target / 1000
    directions = bone_directions(metres)
    lengths = bone_lengths(metres).mean(dim=1)
    frame_joints = metres[:, frame]
    return AnatomyOutputs(
        joints=target,
        directions=(directions, directions),
        lengths=lengths,
        supervised_frame=frame,
        frame_joints=frame_joints,
        scales=scales,
        augmented_lengths=lengths * scales,
        augmented_frame_joints=rescale_bones(frame_joints[:, None], scales)[:, 0],
    )


def test_loss_terms_vanish_for_a_perfect_prediction_and_not_otherwise():
    target = random_pose_sequence(3, 4)
    scales = 1 + 0.3 * torch.rand(3, 16)
    perfect = perfect_outputs(target, 2, scales)
    for name, value in anatomy_loss_terms(perfect, target).items():
        assert value.item() == pytest.approx(0.0, abs=1e-6), name
    first, second = perfect.directions
    wrong = {
        "joints": dict(frame_joints=perfect.frame_joints + 0.01),
        "lengths": dict(lengths=perfect.lengths * 1.1),
        "directions": dict(directions=(first, bone_directions(random_pose_sequence(3, 4, seed=1)))),
        "joint_shifts": dict(directions=(bone_directions(random_pose_sequence(3, 4, seed=2)), second)),
    }
    for name, change in wrong.items():
        terms = anatomy_loss_terms(AnatomyOutputs(**{**perfect.__dict__, **change}), target)
        assert terms[name].item() > 1e-4, name
    augmented_wrong = AnatomyOutputs(**{**perfect.__dict__, "augmented_lengths": perfect.lengths})
    assert anatomy_loss_terms(augmented_wrong, target)["lengths"].item() > 0


def test_loss_weights_and_units():
    target = random_pose_sequence(2, 3)
    perfect = perfect_outputs(target, 0, torch.ones(2, 16))
    off = AnatomyOutputs(**{**perfect.__dict__, "frame_joints": perfect.frame_joints + torch.tensor([0.0, 0.0, 0.002])})
    # 2 mm error of the per-frame joints, metres internally, reported x1000
    assert anatomy_loss_terms(off, target)["joints"].item() == pytest.approx(0.002, rel=1e-4)
    model = small_model(joint_weight=3.0)
    model.last_outputs = off
    assert model.loss(off.joints, target).item() == pytest.approx(3.0 * 2.0, rel=1e-3)


def test_loss_requires_the_latest_forward_output():
    model = small_model()
    pred = model(torch.randn(2, 9, 17, 2))
    with pytest.raises(ModelError, match="latest forward"):
        model.loss(pred.clone(), torch.zeros_like(pred))
    with pytest.raises(ModelError, match="target must have"):
        model.loss(pred, torch.zeros(2, 2, 17, 3))


def test_training_forward_computes_the_loss_over_windows_with_finite_targets():
    model = small_model()
    model.train()
    keypoints = torch.randn(4, 9, 17, 2)
    targets = random_pose_sequence(4, 9)
    targets[2, 4, 5, 1] = float("nan")  # the centre frame of window 2
    targets[1, 0, 3, 0] = float("nan")  # outside the output frame: no effect
    torch.manual_seed(5)
    pred, target = model.training_forward(keypoints, None, targets)
    assert pred.shape == target.shape == (4, 1, 17, 3)
    torch.testing.assert_close(target, targets[:, 4:5], equal_nan=True)
    keep = torch.isfinite(target).flatten(1).all(dim=1)
    assert keep.tolist() == [True, True, False, True]
    loss = model.loss(pred[keep].float(), target[keep].float())  # what the trainer does
    terms = anatomy_loss_terms(model.last_outputs.select(keep), target[keep])
    expected = 1000 * sum(model.loss_weights[name] * value for name, value in terms.items())
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert model.head2.weight.grad is not None
    with pytest.raises(ModelError, match="latest forward"):
        model.loss(pred[keep].float(), target[keep].float())  # the pending loss is used once


def test_training_forward_records_augmented_length_estimates():
    model = small_model(augmentation_degree=0.6)
    model.train()
    model(torch.randn(2, 9, 17, 2))
    outputs = model.last_outputs
    assert outputs.scales.shape == (2, 16)
    assert torch.all((outputs.scales >= 0.7) & (outputs.scales <= 1.3))
    assert outputs.augmented_lengths.shape == (2, 16) and outputs.augmented_frame_joints.shape == (2, 17, 3)
    model.eval()
    model(torch.randn(2, 9, 17, 2))
    assert model.last_outputs.scales is None


def test_gradients_are_routed_as_in_the_paper():
    model = small_model()
    model(torch.randn(2, 9, 17, 2))
    outputs = model.last_outputs

    def trained_by(value: torch.Tensor) -> set[str]:
        model.zero_grad(set_to_none=True)
        value.sum().backward(retain_graph=True)
        return {name.split(".")[0] for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}

    assert trained_by(outputs.directions[0]) == {"expand", "subnet1", "head1"}
    assert trained_by(outputs.directions[1]) == {"subnet2", "head2"}  # the second sub-network sees detached features
    assert trained_by(outputs.lengths) == {"length_attention"}
    assert trained_by(outputs.frame_joints) == {"length_net"}


def test_rejects_bad_options():
    with pytest.raises(ModelError, match="at least two widths"):
        AnatomyModel(filter_widths=[3])
    with pytest.raises(ModelError, match="length_frames"):
        AnatomyModel(length_frames=0)
    with pytest.raises(ModelError, match=r"shape \(B, T, 17, 2\)"):
        small_model()(torch.randn(1, 9, 17, 3))


def test_a_few_steps_reduce_the_loss():
    model = small_model(dropout=0.0, length_frames=None, augment_bone_lengths=False)
    x = torch.randn(8, 9, 17, 2)
    target = random_pose_sequence(8, 1, seed=3)
    losses = losses_after_steps(model, x, target, lr=3e-3)
    assert losses[-1] < 0.8 * losses[0]
    assert all(p.grad is not None for name, p in model.named_parameters() if not name.startswith("visibility"))

