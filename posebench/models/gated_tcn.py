"""Two-stream soft-gated temporal CNN for occluded 2D input (Gu, Wang, Hwang, ICPR 2020; reference §8).

VideoPose3D's backbone with every convolution replaced by a gated temporal convolution::

    Y = ReLU(BN(X * W_f))      feature stream, from the previous layer's features
    M = sigmoid(BN(M' * W_g))  gate stream, from the previous layer's gate only
    X_next = Y ⊙ M

The first gate input is the binary occlusion mask (1 = occluded) broadcast to both coordinates
of each joint (2J channels, the keypoints' layout). The residual skip of each block is on the
feature stream; the gate stream is a plain chain. The final 1x1 regression layer is not gated.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from posebench.errors import ModelError
from posebench.models import register_model
from posebench.models.base import LiftingModel
from posebench.models.tcn import ConvLayerGeometry, residual_crop, temporal_conv, temporal_hyperparameters

MMHUMAN_PAPER = "Gu, Wang, Hwang, Exploring severe occlusion: multi-person 3D pose estimation with gated convolution (ICPR 2020)"


class GatedTemporalConv(nn.Module):
    """One two-stream gated temporal convolution: features and gate with separate kernels and batch norms."""

    def __init__(self, in_channels: int, gate_channels: int, out_channels: int, layer: ConvLayerGeometry) -> None:
        super().__init__()
        self.layer = layer
        self.feature_conv = nn.Conv1d(in_channels, out_channels, layer.width, dilation=layer.dilation, bias=False)
        self.feature_bn = nn.BatchNorm1d(out_channels, momentum=0.1)
        self.gate_conv = nn.Conv1d(gate_channels, out_channels, layer.width, dilation=layer.dilation, bias=False)
        self.gate_bn = nn.BatchNorm1d(out_channels, momentum=0.1)

    def forward(self, x: torch.Tensor, gate: torch.Tensor, strided: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, gate) -> (gated features, new gate), both (B, out_channels, T')."""
        features = F.relu(self.feature_bn(temporal_conv(self.feature_conv, x, self.layer, strided)))
        new_gate = torch.sigmoid(self.gate_bn(temporal_conv(self.gate_conv, gate, self.layer, strided)))
        return features * new_gate, new_gate


@register_model("gated-tcn")
class GatedTemporalConvNet(LiftingModel):
    """MMHuman paper's gated temporal CNN; hyper-parameters and defaults as VideoPose3D's 243-frame model.

    Masked joints should be zeroed by the caller (the data pipeline does it) and flagged in the
    mask; without a mask every joint counts as visible. Output scaling as in ``tcn`` (metres x 1000).
    """

    paper = MMHUMAN_PAPER
    uses_mask = True

    def __init__(
        self,
        n_joints: int = 17,
        filter_widths: Sequence[int] = (3, 3, 3, 3, 3),
        channels: int = 1024,
        dropout: float = 0.25,
        causal: bool = False,
        output_scale: float = 1000.0,
    ) -> None:
        super().__init__(n_joints=n_joints, causal=bool(causal))
        temporal_hyperparameters(self, n_joints, filter_widths, channels, dropout, output_scale)
        self.expand = GatedTemporalConv(2 * n_joints, 2 * n_joints, channels, self.layers[0])
        blocks = []
        for layer in self.layers[1:]:
            pointwise = ConvLayerGeometry(1, 1, 0, 0)
            blocks.append(GatedTemporalConv(channels, channels, channels, layer))
            blocks.append(GatedTemporalConv(channels, channels, channels, pointwise))
        self.blocks = nn.ModuleList(blocks)
        self.drop = nn.Dropout(dropout)
        self.shrink = nn.Conv1d(channels, 3 * n_joints, 1)

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(layer.pad for layer in self.layers)

    def forward(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, J, 2) keypoints (occluded ones zeroed) + (B, T, J) mask, True = occluded -> (B, T', J, 3) mm."""
        self.check_inputs(keypoints, mask)
        return self._run(keypoints, mask, strided=False)

    def forward_single(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Strided twin on exactly ``receptive_field`` frames -> (B, 1, J, 3), same weights as :meth:`forward`."""
        self.check_inputs(keypoints, mask)
        if keypoints.shape[1] != self.receptive_field:
            raise ModelError(f"model 'gated-tcn': the strided twin takes exactly {self.receptive_field} frames, got {keypoints.shape[1]}")
        return self._run(keypoints, mask, strided=True)

    def training_forward(
        self, keypoints: torch.Tensor, mask: torch.Tensor | None, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if keypoints.shape[1] == self.receptive_field:
            before = self.padding[0]
            return self.forward_single(keypoints, mask), targets[:, before : before + 1]
        return super().training_forward(keypoints, mask, targets)

    def _run(self, keypoints: torch.Tensor, mask: torch.Tensor | None, strided: bool) -> torch.Tensor:
        batch, frames = keypoints.shape[:2]
        x = keypoints.reshape(batch, frames, -1).transpose(1, 2)
        if mask is None:
            gate = torch.zeros_like(x)
        else:
            gate = mask.to(x.dtype).unsqueeze(-1).expand(-1, -1, -1, 2).reshape(batch, frames, -1).transpose(1, 2)
        x, gate = self.expand(x, gate, strided)
        x = self.drop(x)
        for i, layer in enumerate(self.layers[1:]):
            residual = residual_crop(x, layer, strided, self.causal)
            x, gate = self.blocks[2 * i](x, gate, strided)
            x, gate = self.blocks[2 * i + 1](self.drop(x), gate, strided)
            x = residual + self.drop(x)
        out = self.shrink(x) * self.output_scale
        return out.transpose(1, 2).reshape(batch, -1, self.n_joints, 3)
