"""VideoPose3D's temporal convolutional network (Pavllo et al., CVPR 2019) and its single-frame variant.

Dilated temporal convolutions over the flattened 2D keypoints of each frame (channel
``2·j + coordinate``), batch normalisation, ReLU, dropout and residual blocks whose skip path is
cropped to the valid output (shifted to the window's last frame for a causal model). Training uses
the strided twin of the same weights (:meth:`TemporalConvNet.forward_single`): on a window of
exactly ``receptive_field`` frames, convolutions with stride = filter width and no dilation
compute the one output without the intermediate states no output needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from posebench.errors import ModelError
from posebench.models import register_model
from posebench.models.base import LiftingModel

VIDEOPOSE3D_PAPER = "Pavllo et al., 3D human pose estimation in video with temporal convolutions (CVPR 2019)"


@dataclass(frozen=True)
class ConvLayerGeometry:
    """Width, dilation, valid-padding and causal residual shift of one temporal layer (reference §2)."""

    width: int
    dilation: int
    pad: int
    shift: int


def check_filter_widths(model: str, filter_widths: Sequence[int]) -> tuple[int, ...]:
    """Filter widths as a tuple of positive odd integers, or :class:`ModelError`."""
    try:
        values = list(filter_widths)
        exact = all(not isinstance(w, (bool, str)) and w == int(w) for w in values)
    except (TypeError, ValueError):
        exact, values = False, []
    if not values or not exact or any(int(w) < 1 or int(w) % 2 == 0 for w in values):
        raise ModelError(f"model {model!r}: filter_widths must be positive odd integers (e.g. 3,3,3 for 27 frames), got {filter_widths!r}")
    return tuple(int(w) for w in values)


def layer_geometry(filter_widths: Sequence[int], causal: bool) -> list[ConvLayerGeometry]:
    """Per-layer geometry: layer i > 0 has dilation ``w_0·…·w_{i-1}``, pad ``(w_i-1)·D_i/2`` and,
    when causal, residual shift ``(w_i//2)·D_i`` (VideoPose3D ``model.py``)."""
    layers = []
    dilation = 1
    for width in filter_widths:
        pad = (width - 1) * dilation // 2
        layers.append(ConvLayerGeometry(width, dilation, pad, (width // 2) * dilation if causal else 0))
        dilation *= width
    return layers


def check_positive(model: str, name: str, value: float, integer: bool = False) -> None:
    """Raise :class:`ModelError` unless ``value`` is a positive number (an integer if asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (integer and int(value) != value):
        kind = "a positive integer" if integer else "a positive number"
        raise ModelError(f"model {model!r}: {name} must be {kind}, got {value!r}")


def check_dropout(model: str, dropout: float) -> None:
    """Raise :class:`ModelError` unless ``0 <= dropout < 1``."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ModelError(f"model {model!r}: dropout must be a probability in [0, 1), got {dropout!r}")


def temporal_hyperparameters(
    model: LiftingModel, n_joints: int, filter_widths: Sequence[int], channels: int, dropout: float, output_scale: float
) -> tuple[int, ...]:
    """Check and record the hyper-parameters shared by the temporal convolutional models.

    Sets ``model.layers`` (the layer geometry) and ``model.output_scale``; returns the widths.
    """
    name = model.registry_name
    check_positive(name, "n_joints", n_joints, integer=True)
    check_positive(name, "channels", channels, integer=True)
    check_positive(name, "output_scale", output_scale)
    check_dropout(name, dropout)
    widths = check_filter_widths(name, filter_widths)
    model._remember_config(
        n_joints=int(n_joints), filter_widths=list(widths), channels=int(channels), dropout=float(dropout),
        causal=bool(model.causal), output_scale=float(output_scale),
    )
    model.layers = layer_geometry(widths, model.causal)
    model.output_scale = float(output_scale)
    return widths


def temporal_conv(conv: nn.Conv1d, x: torch.Tensor, layer: ConvLayerGeometry, strided: bool) -> torch.Tensor:
    """Apply ``conv`` dilated (its own configuration) or as its strided twin (stride = width, no dilation)."""
    if strided:
        return F.conv1d(x, conv.weight, conv.bias, stride=layer.width)
    return conv(x)


def residual_crop(x: torch.Tensor, layer: ConvLayerGeometry, strided: bool, causal: bool) -> torch.Tensor:
    """The skip path of a block: the frame of each output's window that the residual carries.

    Dilated: ``x[pad + shift : T - pad + shift]``. Strided: every ``width``-th frame starting at
    the group's centre (or its last frame when causal).
    """
    if strided:
        start = layer.width // 2 + (layer.width // 2 if causal else 0)
        return x[:, :, start :: layer.width]
    return x[:, :, layer.pad + layer.shift : x.shape[2] - layer.pad + layer.shift]


@register_model("tcn")
class TemporalConvNet(LiftingModel):
    """VideoPose3D's dilated temporal CNN (default 3,3,3,3,3: 243 frames, 1024 channels, 16.95M parameters).

    The last 1x1 convolution predicts metres, as VideoPose3D's does; the model multiplies it by
    ``output_scale`` (1000) so that it returns millimetres. With Adam the training dynamics are
    those of VideoPose3D's metre-scale training (Adam is invariant to the loss scale).
    """

    paper = VIDEOPOSE3D_PAPER
    uses_mask = False

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
        widths = temporal_hyperparameters(self, n_joints, filter_widths, channels, dropout, output_scale)
        self.expand_conv = nn.Conv1d(2 * n_joints, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        convs, norms = [], []
        for layer in self.layers[1:]:
            convs.append(nn.Conv1d(channels, channels, layer.width, dilation=layer.dilation, bias=False))
            norms.append(nn.BatchNorm1d(channels, momentum=0.1))
            convs.append(nn.Conv1d(channels, channels, 1, bias=False))
            norms.append(nn.BatchNorm1d(channels, momentum=0.1))
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(norms)
        self.drop = nn.Dropout(dropout)
        self.shrink = nn.Conv1d(channels, 3 * n_joints, 1)

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(layer.pad for layer in self.layers)

    def forward(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, J, 2) -> (B, T - receptive_field + 1, J, 3) mm; the mask is ignored."""
        self.check_inputs(keypoints, mask)
        return self._run(keypoints, strided=False)

    def forward_single(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The strided twin: (B, receptive_field, J, 2) -> (B, 1, J, 3), same weights as :meth:`forward`."""
        self.check_inputs(keypoints, mask)
        if keypoints.shape[1] != self.receptive_field:
            raise ModelError(
                f"model {self.registry_name!r}: the strided twin takes exactly {self.receptive_field} frames, got {keypoints.shape[1]}"
            )
        return self._run(keypoints, strided=True)

    def training_forward(
        self, keypoints: torch.Tensor, mask: torch.Tensor | None, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Single-output windows go through the strided twin (VideoPose3D's ``TemporalModelOptimized1f``)."""
        if keypoints.shape[1] == self.receptive_field:
            before = self.padding[0]
            return self.forward_single(keypoints, mask), targets[:, before : before + 1]
        return super().training_forward(keypoints, mask, targets)

    def _run(self, keypoints: torch.Tensor, strided: bool) -> torch.Tensor:
        batch, frames = keypoints.shape[:2]
        x = keypoints.reshape(batch, frames, -1).transpose(1, 2)
        x = self.drop(F.relu(self.expand_bn(temporal_conv(self.expand_conv, x, self.layers[0], strided))))
        for i, layer in enumerate(self.layers[1:]):
            residual = residual_crop(x, layer, strided, self.causal)
            x = self.drop(F.relu(self.layers_bn[2 * i](temporal_conv(self.layers_conv[2 * i], x, layer, strided))))
            x = residual + self.drop(F.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
        out = self.shrink(x) * self.output_scale
        return out.transpose(1, 2).reshape(batch, -1, self.n_joints, 3)


@register_model("single-frame")
class SingleFrameNet(TemporalConvNet):
    """VideoPose3D's single-frame baseline: the same network with every filter width 1 (receptive field 1)."""

    def __init__(
        self,
        n_joints: int = 17,
        blocks: int = 4,
        channels: int = 1024,
        dropout: float = 0.25,
        output_scale: float = 1000.0,
    ) -> None:
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
            raise ModelError(f"model 'single-frame': blocks must be a non-negative integer, got {blocks!r}")
        super().__init__(n_joints, (1,) * (blocks + 1), channels, dropout, False, output_scale)
        self._remember_config(n_joints=int(n_joints), blocks=blocks, channels=int(channels), dropout=float(dropout),
                              output_scale=float(output_scale))
