"""Anatomy-aware lifting (Chen et al., arXiv:2002.10322 / IEEE TCSVT).

The pose is decomposed into 16 bone directions and 16 bone lengths. Directions come from a local
window through two hierarchical temporal sub-networks joined by long skip connections; lengths come
from ``length_frames`` frames sampled from the whole sequence, each lifted to 3D by a per-frame
fully-connected residual network, the derived bone lengths averaged with a learnt attention. The
joints are the bone vectors ``length * direction`` summed along the kinematic tree. Design
decisions are listed in docs/models.md (section "anatomy").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from posebench.errors import ModelError, SkeletonError
from posebench.models import register_model
from posebench.models._blocks import MM_PER_METRE, FCBlock, StridedResidualBlock, receptive_field_of, relu, sliding_windows
from posebench.models.base import LiftingModel, _edge_pad
from posebench.models.tcn import check_dropout, check_filter_widths, check_positive
from posebench.skeletons import get_skeleton

N_JOINTS = 17

BONES: tuple[tuple[int, int], ...] = (
    (16, 15), (15, 14), (13, 12), (12, 11), (10, 9), (9, 8), (8, 7), (8, 11),
    (8, 14), (7, 0), (3, 2), (2, 1), (6, 5), (5, 4), (1, 0), (4, 0),
)
"""The 16 bones (a, b) by H36M-17 index; bone vector = joint_a - joint_b (the shoulder bones
(8, 11) and (8, 14) point from the shoulder to the thorax, all others from parent to child)."""

_BONE_SET = {frozenset(bone) for bone in BONES}
SHIFT_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i in range(N_JOINTS) for j in range(i, N_JOINTS) if frozenset((i, j)) not in _BONE_SET
)
"""The 137 joint pairs (i <= j, i == j included) that are not bones; shift = joint_j - joint_i."""


def _composition_matrix() -> torch.Tensor:
    """(17, 16) matrix C with root-relative joints = C @ bone vectors.

    ``C[k, b]`` is +1 when bone ``b`` lies on the path from the root to joint ``k`` and its vector
    points from parent to child, -1 when it lies on that path pointing from child to parent.
    """
    parents = get_skeleton("h36m17").parents
    bone_of_child: dict[int, tuple[int, float]] = {}
    for index, (a, b) in enumerate(BONES):
        if parents[a] == b:
            bone_of_child[a] = (index, 1.0)
        elif parents[b] == a:
            bone_of_child[b] = (index, -1.0)
        else:
            raise SkeletonError(f"anatomy bone {(a, b)} does not join a joint to its parent in the h36m17 skeleton")
    matrix = torch.zeros(N_JOINTS, len(BONES))
    for joint in range(N_JOINTS):
        current = joint
        while parents[current] != -1:
            index, sign = bone_of_child[current]
            matrix[joint, index] = sign
            current = parents[current]
    return matrix


_COMPOSITION = _composition_matrix()
_BONE_A = [a for a, _ in BONES]
_BONE_B = [b for _, b in BONES]
_SHIFT_I = [i for i, _ in SHIFT_PAIRS]
_SHIFT_J = [j for _, j in SHIFT_PAIRS]


def bone_vectors(joints: torch.Tensor) -> torch.Tensor:
    """(..., 17, D) -> (..., 16, D): ``joint_a - joint_b`` for every bone (2D keypoints or 3D joints)."""
    return joints[..., _BONE_A, :] - joints[..., _BONE_B, :]


def bone_lengths(joints: torch.Tensor) -> torch.Tensor:
    """(..., 17, D) -> (..., 16): Euclidean length of every bone."""
    return torch.linalg.vector_norm(bone_vectors(joints), dim=-1)


def unit_vectors(vectors: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Vectors divided by their length along the last axis (zero vectors stay zero)."""
    return vectors / torch.linalg.vector_norm(vectors, dim=-1, keepdim=True).clamp_min(eps)


def bone_directions(joints: torch.Tensor) -> torch.Tensor:
    """(..., 17, D) -> (..., 16, D): unit direction of every bone."""
    return unit_vectors(bone_vectors(joints))


def compose_joints(bones: torch.Tensor) -> torch.Tensor:
    """(..., 16, D) bone vectors -> (..., 17, D) joints, root at the origin (inverse of :func:`bone_vectors`)."""
    return torch.einsum("kb,...bd->...kd", _COMPOSITION.to(bones), bones)


def joint_shifts(joints: torch.Tensor) -> torch.Tensor:
    """(..., 17, D) -> (..., 137, D): ``joint_j - joint_i`` for every pair of :data:`SHIFT_PAIRS`."""
    return joints[..., _SHIFT_J, :] - joints[..., _SHIFT_I, :]


def rescale_bones(poses: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Poses (B, L, 17, D) with every bone multiplied by ``scales`` (B, 16); the root stays where it is."""
    return poses[:, :, :1] + compose_joints(bone_vectors(poses) * scales[:, None, :, None])


@dataclass(frozen=True)
class LengthEstimate:
    """Output of the bone-length branch for B sequences of L sampled frames (metres)."""

    lengths: torch.Tensor
    """(B, 16) attention-weighted bone lengths."""
    frame_joints: torch.Tensor
    """(B, L, 17, 3) 3D joints the per-frame network predicts for every sampled frame."""
    weights: torch.Tensor
    """(B, L, 16) attention weights; they sum to 1 over the L frames for every bone."""


@dataclass(frozen=True)
class AnatomyOutputs:
    """Everything :meth:`AnatomyModel.loss` needs from one forward pass (lengths in metres).

    ``joints`` is the forward's return value (mm). ``directions`` holds the unit bone directions of
    the first and second sub-network, each (B, T', 16, 3). ``lengths`` (B, 16) are the predicted
    bone lengths. ``supervised_frame`` is the output frame whose per-frame 3D prediction
    ``frame_joints`` (B, 17, 3) trains the length branch. With bone-length augmentation,
    ``scales`` (B, 16) are the bone scale factors, ``augmented_lengths`` the length branch's
    estimate on the rescaled 2D and ``augmented_frame_joints`` its per-frame prediction there.
    """

    joints: torch.Tensor
    directions: tuple[torch.Tensor, torch.Tensor]
    lengths: torch.Tensor
    supervised_frame: int
    frame_joints: torch.Tensor
    scales: torch.Tensor | None = None
    augmented_lengths: torch.Tensor | None = None
    augmented_frame_joints: torch.Tensor | None = None

    def _map(self, change: Callable[[torch.Tensor], torch.Tensor]) -> AnatomyOutputs:
        def optional(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else change(t)

        return AnatomyOutputs(
            change(self.joints), (change(self.directions[0]), change(self.directions[1])), change(self.lengths),
            self.supervised_frame, change(self.frame_joints), optional(self.scales), optional(self.augmented_lengths),
            optional(self.augmented_frame_joints),
        )

    def select(self, rows: torch.Tensor) -> AnatomyOutputs:
        """The outputs of the sequences selected by ``rows`` (boolean or index tensor over the batch)."""
        return self._map(lambda t: t[rows])

    def float(self) -> AnatomyOutputs:
        """The outputs as float32 tensors."""
        return self._map(lambda t: t.float())


def _mean_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(a - b, dim=-1).mean()


def anatomy_loss_terms(
    outputs: AnatomyOutputs, target: torch.Tensor, subnetwork_decay: float = 0.5
) -> dict[str, torch.Tensor]:
    """The unweighted loss terms, in metres as Anatomy3D's code computes them.

    ``target`` is (B, T', 17, 3) root-relative mm. Terms: ``joints`` (MPJPE of the length branch's
    per-frame prediction on the supervised frame, plus the same on the augmented frame),
    ``lengths`` (mean squared error of the bone lengths against the target's mean over T', plus the
    augmented one), ``directions`` (squared error of the unit directions, summed over xyz, averaged;
    second sub-network + ``subnetwork_decay`` x first), ``joint_shifts`` (mean distance of the 137
    shifts derived from the predicted lengths, detached, and each sub-network's directions; same
    decay).
    """
    target_m = target / MM_PER_METRE
    true_directions = bone_directions(target_m)
    true_lengths = bone_lengths(target_m).mean(dim=1)
    true_shifts = joint_shifts(target_m)
    frame_target = target_m[:, outputs.supervised_frame]
    first, second = outputs.directions
    fixed_lengths = outputs.lengths.detach()[:, None, :, None]

    def direction_error(directions: torch.Tensor) -> torch.Tensor:
        return (true_directions - directions).square().sum(dim=-1).mean()

    def shift_error(directions: torch.Tensor) -> torch.Tensor:
        return _mean_distance(joint_shifts(compose_joints(fixed_lengths * directions)), true_shifts)

    joints = _mean_distance(outputs.frame_joints, frame_target)
    lengths = (true_lengths - outputs.lengths).square().mean()
    if outputs.scales is not None:
        augmented_target = rescale_bones(frame_target[:, None], outputs.scales)[:, 0]
        joints = joints + _mean_distance(outputs.augmented_frame_joints, augmented_target)
        lengths = lengths + (true_lengths * outputs.scales - outputs.augmented_lengths).square().mean()
    return {
        "joints": joints,
        "lengths": lengths,
        "directions": direction_error(second) + subnetwork_decay * direction_error(first),
        "joint_shifts": shift_error(second) + subnetwork_decay * shift_error(first),
    }


@register_model("anatomy")
class AnatomyModel(LiftingModel):
    """Chen et al.'s anatomy-aware model: bone directions (local window) x bone lengths (whole sequence).

    ``forward`` samples the length frames from the frames it is given (a training window);
    :meth:`predict` samples them from each whole sequence. With ``use_visibility`` the occlusion
    mask enters as visibility ``1 - mask`` through the paper's implicit-attention branch.
    """

    paper = "Chen et al., Anatomy-aware 3D Human Pose Estimation with Bone-based Pose Decomposition, IEEE TCSVT (arXiv:2002.10322)"
    uses_mask = False

    def __init__(
        self,
        filter_widths: Sequence[int] = (3, 3, 3, 3, 3),
        channels: int = 1024,
        dropout: float = 0.25,
        length_frames: int | None = 50,
        temperature: float = 10.0,
        use_visibility: bool = False,
        augment_bone_lengths: bool = True,
        augmentation_degree: float = 0.6,
        joint_weight: float = 1.0,
        joint_shift_weight: float = 2.0,
        direction_weight: float = 0.3,
        length_weight: float = 100.0,
        subnetwork_decay: float = 0.5,
        sampling_seed: int = 0,
    ) -> None:
        super().__init__(n_joints=N_JOINTS, causal=False)
        widths = check_filter_widths("anatomy", filter_widths)
        if len(widths) < 2:
            raise ModelError(f"model 'anatomy': filter_widths needs at least two widths (the sub-networks need a residual block), got {list(widths)}")
        check_positive("anatomy", "channels", channels, integer=True)
        check_positive("anatomy", "temperature", temperature)
        check_dropout("anatomy", dropout)
        if length_frames is not None:
            check_positive("anatomy", "length_frames (or None for all frames)", length_frames, integer=True)
        if not 0 <= augmentation_degree < 2:
            raise ModelError(f"model 'anatomy': augmentation_degree must be in [0, 2) so that bone scales stay positive, got {augmentation_degree}")
        for name, value in (("joint_weight", joint_weight), ("joint_shift_weight", joint_shift_weight), ("direction_weight", direction_weight),
                            ("length_weight", length_weight), ("subnetwork_decay", subnetwork_decay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ModelError(f"model 'anatomy': {name} must be a non-negative number, got {value!r}")
        self._remember_config(
            filter_widths=list(widths), channels=channels, dropout=dropout, length_frames=length_frames,
            temperature=temperature, use_visibility=use_visibility, augment_bone_lengths=augment_bone_lengths,
            augmentation_degree=augmentation_degree, joint_weight=joint_weight, joint_shift_weight=joint_shift_weight,
            direction_weight=direction_weight, length_weight=length_weight, subnetwork_decay=subnetwork_decay,
            sampling_seed=sampling_seed,
        )
        self.filter_widths = widths
        self.channels = channels
        self.length_frames = length_frames
        self.temperature = temperature
        self.use_visibility = use_visibility
        self.uses_mask = use_visibility
        self.augment_bone_lengths = augment_bone_lengths
        self.augmentation_degree = augmentation_degree
        self.loss_weights = {"joints": joint_weight, "lengths": length_weight, "directions": direction_weight, "joint_shifts": joint_shift_weight}
        self.subnetwork_decay = subnetwork_decay
        self.sampling_seed = sampling_seed
        self.last_outputs: AnatomyOutputs | None = None
        self._pending_loss: tuple[torch.Tensor, int] | None = None

        n_bones = len(BONES)
        self.expand = self._expand_layer(2 * N_JOINTS, widths[0], dropout)
        self.visibility = self._expand_layer(N_JOINTS, widths[0], dropout) if use_visibility else None
        first_in = 2 * channels if use_visibility else channels
        self.subnet1 = nn.ModuleList(
            StridedResidualBlock(first_in if i == 0 else channels, channels, w, dropout, relu) for i, w in enumerate(widths[1:])
        )
        self.subnet2 = nn.ModuleList(StridedResidualBlock(2 * channels, channels, w, dropout, relu) for w in widths[1:])
        self.head1 = nn.Conv1d(channels, 3 * n_bones, 1)
        self.head2 = nn.Conv1d(channels, 3 * n_bones, 1)
        self.length_net = FCBlock(2 * N_JOINTS, 3 * N_JOINTS, channels, len(widths) - 1, dropout, relu)
        self.length_attention = nn.Linear(6 * N_JOINTS, n_bones)

    def _expand_layer(self, in_channels: int, width: int, dropout: float) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv1d(in_channels, self.channels, width, stride=width, bias=False),
            nn.BatchNorm1d(self.channels, momentum=0.1),
            relu(),
            nn.Dropout(dropout),
        )

    @property
    def receptive_field(self) -> int:
        """Frames in the direction network's window: the product of the filter widths."""
        return receptive_field_of(self.filter_widths)

    def _visibility(self, keypoints: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """Visibility (B, T, 17) = 1 - occlusion mask, all ones without a mask; None unless used."""
        if not self.use_visibility:
            return None
        if mask is None:
            return keypoints.new_ones(keypoints.shape[:3])
        return 1.0 - mask.to(keypoints.dtype)

    def bone_directions(self, windows: torch.Tensor, visibility: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows (N, receptive_field, 17, 2) [+ visibility (N, receptive_field, 17)] -> unit directions
        (N, 16, 3) of the first and the second sub-network for each window's centre frame."""
        x = self.expand(windows.flatten(2).transpose(1, 2))
        levels = [x.detach()]
        if self.visibility is not None:
            x = torch.cat([x, self.visibility(visibility.transpose(1, 2)) * x], dim=1)
        for block in self.subnet1:
            x = block(x)
            levels.append(x.detach())
        first = unit_vectors(self.head1(x).reshape(-1, len(BONES), 3))
        y = levels[-1].expand(-1, -1, levels[0].shape[2])
        for block, level in zip(self.subnet2, levels[:-1]):
            y = block(torch.cat([y, level], dim=1))
        second = unit_vectors(self.head2(y).reshape(-1, len(BONES), 3))
        return first, second

    def lift_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """The length branch's per-frame network: 2D frames (B, L, 17, 2) -> 3D joints (B, L, 17, 3) in metres."""
        batch, n_frames = frames.shape[:2]
        return self.length_net(frames.reshape(-1, 2 * N_JOINTS)).reshape(batch, n_frames, N_JOINTS, 3)

    def attend_lengths(self, frame_joints: torch.Tensor) -> LengthEstimate:
        """Per-frame 3D joints (B, L, 17, 3) -> attention-weighted bone lengths (B, 16), metres.

        The joints are detached first, so the length loss trains only the attention and the
        per-frame joint loss only the per-frame network (as in the paper).
        """
        fixed = frame_joints.detach()
        logits = self.length_attention(torch.cat([fixed.flatten(2), fixed.abs().flatten(2)], dim=2)) * self.temperature
        weights = torch.softmax(logits, dim=1)
        return LengthEstimate((bone_lengths(fixed) * weights).sum(dim=1), frame_joints, weights)

    def estimate_lengths(self, frames: torch.Tensor) -> LengthEstimate:
        """Sampled 2D frames (B, L, 17, 2) -> bone lengths (B, 16) in metres, with the per-frame joints and weights."""
        return self.attend_lengths(self.lift_frames(frames))

    def sample_frames(self, batch: int, n_frames: int, device: torch.device) -> torch.Tensor:
        """(batch, l) frame indices drawn uniformly without replacement (all frames if there are at most l).

        Training draws from the global torch generator; evaluation from one seeded with ``sampling_seed``.
        """
        if self.length_frames is None or self.length_frames >= n_frames:
            return torch.arange(n_frames, device=device).expand(batch, n_frames)
        generator = None
        if not self.training:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.sampling_seed)
        noise = torch.rand(batch, n_frames, generator=generator, device=device)
        return noise.argsort(dim=1)[:, : self.length_frames]

    def _gather_frames(self, keypoints: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return torch.gather(keypoints, 1, indices[:, :, None, None].expand(-1, -1, N_JOINTS, 2))

    def forward(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 17, 2) [+ occlusion mask (B, T, 17)] -> (B, T - receptive_field + 1, 17, 3) root-relative mm.

        Bone lengths come from ``length_frames`` frames sampled among the T given frames. In training
        mode with ``augment_bone_lengths`` the length branch also sees a copy of the frames with
        randomly rescaled 2D bones. The pieces the loss needs are kept in :attr:`last_outputs`.
        """
        self.check_inputs(keypoints, mask)
        self._pending_loss = None
        batch, n_frames = keypoints.shape[:2]
        n_out = n_frames - self.receptive_field + 1
        visibility = self._visibility(keypoints, mask)
        windows = sliding_windows(keypoints, self.receptive_field)
        first, second = self.bone_directions(windows, None if visibility is None else sliding_windows(visibility, self.receptive_field))
        first = first.reshape(batch, n_out, len(BONES), 3)
        second = second.reshape(batch, n_out, len(BONES), 3)

        sampled = self._gather_frames(keypoints, self.sample_frames(batch, n_frames, keypoints.device))
        supervised = int(torch.randint(n_out, ())) if self.training else n_out // 2
        centre = keypoints[:, supervised + self.receptive_field // 2][:, None]
        frames = torch.cat([sampled, centre], dim=1)
        frame_joints = self.lift_frames(frames)
        estimate = self.attend_lengths(frame_joints[:, :-1])
        joints = compose_joints(estimate.lengths[:, None, :, None] * second) * MM_PER_METRE

        scales = augmented_lengths = augmented_frame_joints = None
        if self.training and self.augment_bone_lengths:
            scales = 1.0 + (torch.rand(batch, len(BONES), device=keypoints.device) - 0.5) * self.augmentation_degree
            augmented_joints = self.lift_frames(rescale_bones(frames, scales))
            augmented_lengths = self.attend_lengths(augmented_joints[:, :-1]).lengths
            augmented_frame_joints = augmented_joints[:, -1]
        self.last_outputs = AnatomyOutputs(
            joints, (first, second), estimate.lengths, supervised, frame_joints[:, -1], scales, augmented_lengths, augmented_frame_joints
        )
        return joints

    def training_forward(
        self, keypoints: torch.Tensor, mask: torch.Tensor | None, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward pass on training windows; the loss is computed here, where the targets are known.

        Windows whose targets contain a non-finite value are left out of the loss (the rule the
        trainer applies before calling :meth:`loss`, which then returns this value). The loss is
        computed in float32 even under autocast.
        """
        before, after = self.padding
        target = targets[:, before : targets.shape[1] - after]
        pred = self(keypoints, mask)
        rows = torch.isfinite(target).flatten(1).all(dim=1)
        with torch.autocast(keypoints.device.type, enabled=False):
            kept = int(rows.sum())
            self._pending_loss = (self._weighted_loss(self.last_outputs.select(rows), target[rows].float()), kept) if kept else None
        return pred, target

    def _check_latest(self, pred: torch.Tensor, target: torch.Tensor) -> AnatomyOutputs:
        outputs = self.last_outputs
        if outputs is None or outputs.joints is not pred:
            raise ModelError(
                "model 'anatomy': loss() needs the tensor returned by the latest forward() call, unchanged, because the "
                "bone directions and lengths of that pass enter the loss; call loss(model(keypoints), target)"
            )
        if tuple(target.shape) != tuple(pred.shape):
            raise ModelError(f"model 'anatomy': target must have the prediction's shape {tuple(pred.shape)}, got {tuple(target.shape)}")
        return outputs

    def loss_terms(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted loss terms (see :func:`anatomy_loss_terms`) of the latest forward pass, whose output ``pred`` is."""
        return anatomy_loss_terms(self._check_latest(pred, target), target, self.subnetwork_decay)

    def _weighted_loss(self, outputs: AnatomyOutputs, target: torch.Tensor) -> torch.Tensor:
        terms = anatomy_loss_terms(outputs.float(), target, self.subnetwork_decay)
        return sum(self.loss_weights[name] * value for name, value in terms.items()) * MM_PER_METRE

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted sum of the loss terms, computed in metres with the code's weights and reported x1000 (mm scale).

        After :meth:`training_forward` this is the loss computed there (``pred`` and ``target`` are
        its finite-target windows); otherwise ``pred`` must be the latest :meth:`forward` output.
        """
        pending, self._pending_loss = self._pending_loss, None
        if pending is not None and pred.shape[0] == pending[1] and pred.shape[1:] == self.last_outputs.joints.shape[1:]:
            return pending[0]
        return self._weighted_loss(self._check_latest(pred, target), target.float())

    @torch.no_grad()
    def predict(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None, chunk: int = 1024) -> torch.Tensor:
        """Whole sequences (B, T, 17, 2) -> (B, T, 17, 3) mm.

        One set of bone lengths per sequence, from ``length_frames`` frames sampled from the whole
        (unpadded) sequence; directions from edge-padded windows, ``chunk`` output frames at a time.
        """
        self.check_inputs(keypoints, mask, min_frames=1)
        batch, n_frames = keypoints.shape[:2]
        lengths = self.estimate_lengths(self._gather_frames(keypoints, self.sample_frames(batch, n_frames, keypoints.device))).lengths
        visibility = self._visibility(keypoints, mask)
        before, after = self.padding
        padded = _edge_pad(keypoints, before, after)
        padded_visibility = None if visibility is None else _edge_pad(visibility, before, after)
        directions = []
        for start in range(0, n_frames, chunk):
            stop = min(start + chunk, n_frames)
            span = slice(start, stop + before + after)
            windows = sliding_windows(padded[:, span], self.receptive_field)
            window_visibility = None if padded_visibility is None else sliding_windows(padded_visibility[:, span], self.receptive_field)
            directions.append(self.bone_directions(windows, window_visibility)[1].reshape(batch, stop - start, len(BONES), 3))
        return compose_joints(lengths[:, None, :, None] * torch.cat(directions, dim=1)) * MM_PER_METRE
