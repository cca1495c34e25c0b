"""Sequence-to-sequence LSTM lifting (Hossain & Little, ECCV 2018; reference §7).

An encoder LSTM reads a window of ``sequence_length`` 2D poses in reversed time order; its final
state starts a decoder LSTM that is fed a start token of ones and then its own previous output.
The decoder is residual: each step predicts the change from the previous 3D pose. Both LSTMs
are layer-normalised with recurrent dropout on the cell update (TensorFlow's
``LayerNormBasicLSTMCell``). The decoder returns one 3D pose per window frame; under posebench's
valid-window contract, output frame ``i`` is the window ``[i, i + sequence_length)``'s prediction
of its centre frame (of its last frame when ``causal``). Training compares the whole decoded
sequence with its targets: ``MSE + 5 · mean(w · (p[t+1] - p[t])²)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from posebench.errors import ModelError
from posebench.models import register_model
from posebench.models.base import LiftingModel
from posebench.models.tcn import check_dropout, check_positive

HOSSAIN_PAPER = "Hossain & Little, Exploiting temporal information for 3D human pose estimation (ECCV 2018)"

#: Smoothness weights of the paper's code for H36M-17 joints 1..16 (RHip ... RWrist); the root gets 1.
H36M_SMOOTHNESS_WEIGHTS = (1.0, 1.0, 2.5, 2.5, 1.0, 2.5, 2.5, 1.0, 1.0, 1.0, 1.0, 1.0, 4.0, 4.0, 1.0, 4.0, 4.0)


class LayerNormLSTMCell(nn.Module):
    """LSTM cell with layer normalisation of each gate and of the cell, and recurrent dropout.

    Gates ``i, j, f, o = LN(W [x, h])`` (separate gain and shift per gate, no bias before the
    norm), ``c' = LN(c · σ(f + forget_bias) + σ(i) · dropout(tanh(j)))``, ``h' = tanh(c') · σ(o)``.
    """

    def __init__(self, input_size: int, hidden_size: int, dropout: float, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.forget_bias = forget_bias
        self.dropout = dropout
        self.linear = nn.Linear(input_size + hidden_size, 4 * hidden_size, bias=False)
        nn.init.xavier_uniform_(self.linear.weight)
        self.gate_gain = nn.Parameter(torch.ones(4, hidden_size))
        self.gate_shift = nn.Parameter(torch.zeros(4, hidden_size))
        self.cell_norm = nn.LayerNorm(hidden_size)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: input (N, input_size), state (h, c) each (N, hidden) -> new (h, c)."""
        h, c = state
        gates = self.linear(torch.cat([x, h], dim=-1)).view(-1, 4, self.hidden_size)
        gates = F.layer_norm(gates, (self.hidden_size,)) * self.gate_gain + self.gate_shift
        i, j, f, o = gates.unbind(1)
        update = F.dropout(torch.tanh(j), self.dropout, self.training)
        c = self.cell_norm(c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * update)
        return torch.tanh(c) * torch.sigmoid(o), c


@register_model("seq2seq")
class Seq2SeqLifter(LiftingModel):
    """Layer-normalised LSTM encoder-decoder with a residual decoder (defaults from the paper).

    ``input_joints`` selects the 2D joints fed to the encoder (default all J; the paper drops the
    neck/nose of H36M-17, which is ``input_joints=[0,1,2,3,4,5,6,7,8,10,11,12,13,14,15,16]``).
    The decoder predicts the J-1 non-root joints (metres x ``output_scale``); the root joint
    ``root_joint`` is returned as exactly 0.
    """

    paper = HOSSAIN_PAPER
    uses_mask = False

    def __init__(
        self,
        n_joints: int = 17,
        sequence_length: int = 5,
        hidden_size: int = 1024,
        dropout: float = 0.5,
        causal: bool = False,
        input_joints: Sequence[int] | None = None,
        root_joint: int = 0,
        smoothness: float = 5.0,
        smoothness_weights: Sequence[float] | None = None,
        output_scale: float = 1000.0,
    ) -> None:
        super().__init__(n_joints=n_joints, causal=bool(causal))
        name = "seq2seq"
        for key, value in (("n_joints", n_joints), ("sequence_length", sequence_length), ("hidden_size", hidden_size)):
            check_positive(name, key, value, integer=True)
        check_positive(name, "output_scale", output_scale)
        check_dropout(name, dropout)
        if isinstance(smoothness, bool) or not isinstance(smoothness, (int, float)) or smoothness < 0:
            raise ModelError(f"model 'seq2seq': smoothness must be a non-negative number, got {smoothness!r}")
        inputs = list(range(n_joints)) if input_joints is None else [int(j) for j in input_joints]
        if not inputs or any(not 0 <= j < n_joints for j in inputs) or len(set(inputs)) != len(inputs):
            raise ModelError(f"model 'seq2seq': input_joints must be distinct joint indices in 0..{n_joints - 1}, got {input_joints!r}")
        if not 0 <= int(root_joint) < n_joints:
            raise ModelError(f"model 'seq2seq': root_joint must be a joint index in 0..{n_joints - 1}, got {root_joint!r}")
        if smoothness_weights is None:
            weights = list(H36M_SMOOTHNESS_WEIGHTS) if n_joints == len(H36M_SMOOTHNESS_WEIGHTS) else [1.0] * n_joints
        else:
            weights = [float(w) for w in smoothness_weights]
            if len(weights) != n_joints:
                raise ModelError(f"model 'seq2seq': smoothness_weights needs one weight per joint ({n_joints}), got {len(weights)}")
        self._remember_config(
            n_joints=int(n_joints), sequence_length=int(sequence_length), hidden_size=int(hidden_size), dropout=float(dropout),
            causal=bool(causal), input_joints=None if input_joints is None else inputs, root_joint=int(root_joint),
            smoothness=float(smoothness), smoothness_weights=None if smoothness_weights is None else weights,
            output_scale=float(output_scale),
        )
        self.sequence_length = int(sequence_length)
        self.output_scale = float(output_scale)
        self.smoothness = float(smoothness)
        self.root_joint = int(root_joint)
        self.register_buffer("input_index", torch.tensor(inputs, dtype=torch.long), persistent=False)
        self.register_buffer("output_index", torch.tensor([j for j in range(n_joints) if j != self.root_joint], dtype=torch.long), persistent=False)
        self.register_buffer("joint_weights", torch.tensor(weights, dtype=torch.float32).view(n_joints, 1), persistent=False)
        output_size = 3 * (n_joints - 1)
        self.encoder = LayerNormLSTMCell(2 * len(inputs), hidden_size, dropout)
        self.decoder = LayerNormLSTMCell(output_size, hidden_size, dropout)
        self.output_projection = nn.Linear(hidden_size, output_size)

    @property
    def receptive_field(self) -> int:
        return self.sequence_length

    def forward(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, J, 2) -> (B, T - sequence_length + 1, J, 3) mm: each window's centre (causal: last) frame."""
        self.check_inputs(keypoints, mask)
        return self.sequence_outputs(keypoints)[:, :, self.padding[0]]

    def sequence_outputs(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Every window's whole decoded sequence: (B, T, J, 2) -> (B, T - L + 1, L, J, 3) mm."""
        self.check_inputs(keypoints)
        batch = keypoints.shape[0]
        windows = keypoints.index_select(2, self.input_index).unfold(1, self.sequence_length, 1)  # (B, n, J', 2, L)
        n_windows = windows.shape[1]
        windows = windows.permute(0, 1, 4, 2, 3).reshape(batch * n_windows, self.sequence_length, -1)
        decoded = self.decode(self.encode(windows))
        return decoded.view(batch, n_windows, self.sequence_length, self.n_joints, 3)

    def encode(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder final state of (N, L, 2J') windows, read in reversed time order."""
        zeros = windows.new_zeros(windows.shape[0], self.encoder.hidden_size)
        state = (zeros, zeros)
        for step in range(windows.shape[1] - 1, -1, -1):
            state = self.encoder(windows[:, step], state)
        return state

    def decode(self, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Residual decoding from the encoder state: (N, L, J, 3) mm, root exactly 0."""
        previous = state[0].new_ones(state[0].shape[0], self.output_projection.out_features)
        outputs = []
        for _ in range(self.sequence_length):
            state = self.decoder(previous, state)
            previous = previous + self.output_projection(state[0])
            outputs.append(previous)
        decoded = torch.stack(outputs, dim=1).view(-1, self.sequence_length, self.n_joints - 1, 3) * self.output_scale
        poses = decoded.new_zeros(decoded.shape[0], self.sequence_length, self.n_joints, 3)
        return poses.index_copy(2, self.output_index, decoded)

    def training_forward(
        self, keypoints: torch.Tensor, mask: torch.Tensor | None, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole decoded sequences of every window, (B·n, L, J, 3), with the targets of the same frames."""
        self.check_inputs(keypoints, mask)
        pred = self.sequence_outputs(keypoints)
        windows = targets.unfold(1, self.sequence_length, 1).permute(0, 1, 4, 2, 3)
        return pred.flatten(0, 1), windows.flatten(0, 1)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``mean((g - p)²) + smoothness · mean(w · (p[t+1] - p[t])²)`` over (N, L, J, 3) sequences, mm²."""
        loss = torch.mean((target - pred) ** 2)
        if pred.shape[1] > 1 and self.smoothness:
            velocity = pred[:, 1:] - pred[:, :-1]
            loss = loss + self.smoothness * torch.mean(self.joint_weights.to(pred.dtype) * velocity**2)
        return loss
