"""RIE: relative information encoding (Shan et al., ACM MM 2021).

Each output frame is lifted from its own window of ``prod(filter_widths)`` 2D frames. The window
is encoded three ways (raw ``k_t^j``, positional ``k_t^j - k_t^0``, temporal ``k_t^j - k_c^j`` with
``c`` the window's centre frame), split into five body groups, each group encoded by its own
temporal convolutional network into a latent vector; a global encoder sees only the centre frame;
a feature-fusion module (used from the second training stage on) gives every group the latents of
the other four; per-group decoders regress the group's joints. Design decisions are listed in
docs/models.md (section "rie").
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from posebench.errors import ModelError
from posebench.models import register_model
from posebench.models._blocks import (
    MM_PER_METRE,
    FCBlock,
    StridedResidualBlock,
    leaky_relu,
    receptive_field_of,
    reset_parameters,
    sliding_windows,
)
from posebench.models.base import LiftingModel, TrainingStage
from posebench.models.tcn import check_dropout, check_filter_widths, check_positive

N_JOINTS = 17
ROOT = 0

GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("torso", (0, 7, 8, 9, 10)),
    ("right_arm", (14, 15, 16)),
    ("left_arm", (11, 12, 13)),
    ("right_leg", (1, 2, 3)),
    ("left_leg", (4, 5, 6)),
)
"""The five body groups by H36M-17 index, in the reference code's order (its "LArm" is H36M's
right arm, its "RArm" the left arm, its "LLeg" the right leg, its "RLeg" the left leg)."""

STAGE_NAMES = ("encoders", "fusion", "finetune")


def _group_outputs(joints: tuple[int, ...]) -> tuple[int, ...]:
    """Joints a group's decoder regresses: all of its joints except the root, which is 0 by definition."""
    return tuple(j for j in joints if j != ROOT)


def relative_encodings(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw, positional and temporal encodings of windows ``(N, T, J, 2)``, each ``(N, T, J, 2)``.

    positional: ``k_t^j - k_t^0`` (the root of the same frame); temporal: ``k_t^j - k_c^j`` (the same
    joint in the window's centre frame ``c = T // 2``).
    """
    centre = windows.shape[1] // 2
    positional = windows - windows[:, :, ROOT : ROOT + 1]
    temporal = windows - windows[:, centre : centre + 1]
    return windows, positional, temporal


def group_inputs(windows: torch.Tensor) -> list[torch.Tensor]:
    """Per group, the encoder input ``(N, 6 * n_joints, T)``: raw, positional, temporal channels.

    Within each of the three parts the channel of the group's ``i``-th joint, coordinate ``c`` is
    ``2 * i + c``.
    """
    encodings = relative_encodings(windows)
    inputs = []
    for _, joints in GROUPS:
        index = list(joints)
        parts = [encoding[:, :, index].flatten(2) for encoding in encodings]
        inputs.append(torch.cat(parts, dim=2).transpose(1, 2))
    return inputs


class WindowEncoder(nn.Module):
    """VideoPose3D-style temporal network (strided form, LeakyReLU) turning a window into a latent vector."""

    def __init__(self, in_channels: int, channels: int, latent: int, widths: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.expand = nn.Sequential(
            nn.Conv1d(in_channels, channels, widths[0], stride=widths[0], bias=False),
            nn.BatchNorm1d(channels, momentum=0.1),
            leaky_relu(),
            nn.Dropout(dropout),
        )
        self.blocks = nn.Sequential(*(StridedResidualBlock(channels, channels, w, dropout, leaky_relu) for w in widths[1:]))
        self.shrink = nn.Conv1d(channels, latent, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, prod(widths)) -> (N, latent)."""
        return self.shrink(self.blocks(self.expand(x))).squeeze(2)


def _trains_without_fusion(name: str) -> bool:
    return not name.startswith("fusion.")


def _trains_fusion_and_decoders(name: str) -> bool:
    return name.startswith(("fusion.", "decoders."))


@register_model("rie")
class RIEModel(LiftingModel):
    """Shan et al.'s relative-information-encoding network with five body groups and feature fusion.

    ``stage_index`` (a buffer, saved with the weights) is the training stage the model is in: -1
    before staged training, 0/1/2 for "encoders"/"fusion"/"finetune". The feature-fusion module
    feeds the decoders in every state except stage 0; :meth:`begin_stage` moves between stages.
    """

    paper = "Shan et al., Improving Robustness and Accuracy via Relative Information Encoding in 3D Human Pose Estimation, ACM MM 2021"
    uses_mask = False

    def __init__(
        self,
        filter_widths: Sequence[int] = (3, 3, 3, 3, 3),
        channels: int = 256,
        dropout: float = 0.2,
        latent_dim: int = 256,
        fc_channels: int = 1024,
        fc_dropout: float = 0.25,
        stage_epochs: Sequence[int] = (80, 80, 20),
        finetune_lr_scale: float = 0.5,
    ) -> None:
        super().__init__(n_joints=N_JOINTS, causal=False)
        widths = check_filter_widths("rie", filter_widths)
        epochs = tuple(stage_epochs)
        if len(epochs) != 3 or any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in epochs):
            raise ModelError(f"model 'rie': stage_epochs must be three positive integers (encoders, fusion, finetune), got {list(epochs)}")
        for name, value in (("channels", channels), ("latent_dim", latent_dim), ("fc_channels", fc_channels)):
            check_positive("rie", name, value, integer=True)
        check_positive("rie", "finetune_lr_scale", finetune_lr_scale)
        check_dropout("rie", dropout)
        check_dropout("rie", fc_dropout)
        self._remember_config(
            filter_widths=list(widths), channels=channels, dropout=dropout, latent_dim=latent_dim,
            fc_channels=fc_channels, fc_dropout=fc_dropout, stage_epochs=list(epochs), finetune_lr_scale=finetune_lr_scale,
        )
        self.filter_widths = widths
        self.stage_epochs = epochs
        self.finetune_lr_scale = finetune_lr_scale
        self.encoders = nn.ModuleDict(
            {name: WindowEncoder(6 * len(joints), channels, latent_dim, widths, dropout) for name, joints in GROUPS}
        )
        self.global_encoder = FCBlock(2 * N_JOINTS, latent_dim, fc_channels, 2, fc_dropout, leaky_relu)
        self.fusion = nn.ModuleDict(
            {name: FCBlock(4 * latent_dim, latent_dim, fc_channels, 1, fc_dropout, leaky_relu) for name, _ in GROUPS}
        )
        self.decoders = nn.ModuleDict(
            {name: FCBlock(3 * latent_dim, 3 * len(_group_outputs(joints)), fc_channels, 1, fc_dropout, leaky_relu) for name, joints in GROUPS}
        )
        self.register_buffer("stage_index", torch.tensor(-1))
        order = [j for _, joints in GROUPS for j in _group_outputs(joints)]
        self.register_buffer("_output_order", torch.tensor([order.index(j) for j in range(1, N_JOINTS)]), persistent=False)

    @property
    def receptive_field(self) -> int:
        """Frames in one window: the product of the filter widths (243 for 3,3,3,3,3)."""
        return receptive_field_of(self.filter_widths)

    @property
    def use_fusion(self) -> bool:
        """Whether the feature-fusion module feeds the decoders (all but the first training stage)."""
        return int(self.stage_index) != 0

    def forward(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 17, 2) -> (B, T - receptive_field + 1, 17, 3) root-relative mm; ``mask`` is ignored."""
        self.check_inputs(keypoints, mask)
        batch, frames = keypoints.shape[:2]
        n_out = frames - self.receptive_field + 1
        windows = sliding_windows(keypoints, self.receptive_field)
        joints = self.lift_windows(windows)
        return joints.reshape(batch, n_out, N_JOINTS, 3)

    def lift_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """Windows (N, receptive_field, 17, 2) -> the centre frame's joints (N, 17, 3) in mm."""
        latents = [encoder(x) for encoder, x in zip(self.encoders.values(), group_inputs(windows))]
        centre = windows[:, windows.shape[1] // 2].flatten(1)
        global_latent = self.global_encoder(centre)
        outputs = []
        for i, name in enumerate(self.encoders):
            if self.use_fusion:
                others = torch.cat(latents[:i] + latents[i + 1 :], dim=1)
                fused = self.fusion[name](others)
            else:
                fused = torch.zeros_like(latents[i])
            outputs.append(self.decoders[name](torch.cat([latents[i], fused, global_latent], dim=1)))
        non_root = torch.cat(outputs, dim=1).reshape(windows.shape[0], N_JOINTS - 1, 3)[:, self._output_order]
        root = non_root.new_zeros(windows.shape[0], 1, 3)
        return torch.cat([root, non_root], dim=1) * MM_PER_METRE

    def training_stages(self) -> list[TrainingStage]:
        """The paper's three stages, as fractions of the requested epochs in the ratio ``stage_epochs``.

        "encoders": everything but the fusion module (which is switched off); "fusion": encoders
        (local and global) frozen, fusion module and freshly initialised decoders trained; "finetune":
        everything, at ``finetune_lr_scale`` times the learning rate. The trainer must call
        :meth:`begin_stage` with each stage's name before training it.
        """
        total = sum(self.stage_epochs)
        first, second, third = (e / total for e in self.stage_epochs)
        return [
            TrainingStage("encoders", first, _trains_without_fusion),
            TrainingStage("fusion", second, _trains_fusion_and_decoders),
            TrainingStage("finetune", third, None, self.finetune_lr_scale),
        ]

    def begin_stage(self, name: str) -> None:
        """Enter training stage ``name`` (one of ``STAGE_NAMES``); call it before training each stage.

        "encoders" switches the fusion module off; "fusion" switches it on and re-initialises the
        decoders (the paper discards the first stage's decoders); "finetune" keeps everything.
        Calling it again for the stage the model is already in (e.g. when resuming from a
        checkpoint, which stores the stage) changes nothing.
        """
        if name not in STAGE_NAMES:
            raise ModelError(f"model 'rie': unknown training stage {name!r}; stages are {', '.join(STAGE_NAMES)}")
        index = STAGE_NAMES.index(name)
        if index == int(self.stage_index):
            return
        if name == "fusion":
            reset_parameters(self.decoders)
        self.stage_index.fill_(index)

    @torch.no_grad()
    def predict(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None, chunk: int = 1024) -> torch.Tensor:
        """Whole sequences (B, T, 17, 2) -> (B, T, 17, 3); every frame's window is materialised, so chunks are smaller."""
        return super().predict(keypoints, mask, chunk)
