"""Building blocks shared by the window-based lifting models (RIE, Anatomy3D).

The temporal blocks are the *strided* form of VideoPose3D's dilated residual blocks: applied to a
window of exactly ``prod(filter_widths)`` frames they compute the same numbers as the dilated
convolutions compute for that window's output frame, without the unused intermediate frames.
The fully-connected blocks follow Martinez et al.'s residual network (Linear-BN-act-dropout).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

MM_PER_METRE = 1000.0
"""The networks regress metres internally (as the reference code bases do) and report millimetres."""

Activation = Callable[[], nn.Module]


def receptive_field_of(widths: Sequence[int]) -> int:
    """Frames seen by one output of a temporal network with these filter widths (their product)."""
    return math.prod(widths)


def sliding_windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, T, ...) -> (B * (T - size + 1), size, ...): every run of ``size`` consecutive frames."""
    windows = x.unfold(1, size, 1)  # (B, N, ..., size)
    windows = windows.movedim(-1, 2)  # (B, N, size, ...)
    return windows.reshape(-1, size, *x.shape[2:])


class StridedResidualBlock(nn.Module):
    """One residual block of the temporal network in strided form.

    Conv(width, stride width) - BN - act - dropout - Conv 1x1 - BN - act - dropout, plus the centre
    sample of every group of ``width`` inputs (first ``channels`` input channels) as the residual.
    """

    def __init__(self, in_channels: int, channels: int, width: int, dropout: float, activation: Activation) -> None:
        super().__init__()
        self.width = width
        self.channels = channels
        self.conv = nn.Conv1d(in_channels, channels, width, stride=width, bias=False)
        self.bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.pointwise = nn.Conv1d(channels, channels, 1, bias=False)
        self.pointwise_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.act = activation()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, L) -> (N, channels, L / width)."""
        residual = x[:, : self.channels, self.width // 2 :: self.width]
        y = self.drop(self.act(self.bn(self.conv(x))))
        return residual + self.drop(self.act(self.pointwise_bn(self.pointwise(y))))


class FCResidualBlock(nn.Module):
    """Two Linear-BN-act-dropout layers of equal width with an identity skip connection."""

    def __init__(self, size: int, dropout: float, activation: Activation) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(size, size), nn.BatchNorm1d(size, momentum=0.1), activation(), nn.Dropout(dropout),
            nn.Linear(size, size), nn.BatchNorm1d(size, momentum=0.1), activation(), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, size) -> (N, size)."""
        return x + self.layers(x)


class FCBlock(nn.Module):
    """Linear(in -> hidden)-BN-act-dropout, ``n_blocks`` residual blocks, Linear(hidden -> out)."""

    def __init__(self, in_features: int, out_features: int, hidden: int, n_blocks: int, dropout: float, activation: Activation) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden, momentum=0.1), activation(), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*(FCResidualBlock(hidden, dropout, activation) for _ in range(n_blocks)))
        self.shrink = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_features) -> (N, out_features)."""
        return self.shrink(self.blocks(self.expand(x)))


def leaky_relu() -> nn.Module:
    """LeakyReLU with slope 0.2 (RIE's activation)."""
    return nn.LeakyReLU(0.2)


def relu() -> nn.Module:
    """ReLU (VideoPose3D's and Anatomy3D's activation)."""
    return nn.ReLU()


def reset_parameters(module: nn.Module) -> None:
    """Re-initialise every sub-module that can (weights, biases, BatchNorm running statistics)."""
    for child in module.modules():
        if hasattr(child, "reset_parameters"):
            child.reset_parameters()
