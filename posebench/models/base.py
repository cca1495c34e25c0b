"""The contract every lifting model fulfils.

A model maps 2D keypoints ``(B, T, J, 2)`` (normalised screen coordinates, see
:func:`posebench.cameras.normalize_screen_coordinates`) and an optional occlusion mask
``(B, T, J)`` (True = occluded) to root-relative 3D joints in millimetres.

``forward`` has *valid* semantics: output frame ``i`` is computed from input frames
``[i, i + receptive_field)``, so the output has ``T - receptive_field + 1`` frames. For a
symmetric model that output belongs to the centre frame of its window; for a causal model to the
last frame. :meth:`LiftingModel.predict` pads a whole sequence by edge replication (as
VideoPose3D's evaluation does) so that every input frame gets exactly one output frame.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class TrainingStage:
    """One stage of a model's training schedule (most models have a single stage).

    ``epoch_fraction`` of the requested epochs are spent in this stage; ``trainable`` selects the
    parameters (by name) that are optimised in it (None = all); the learning rate is multiplied
    by ``lr_scale``. RIE's three-stage optimisation is expressed this way.
    """

    name: str
    epoch_fraction: float = 1.0
    trainable: Callable[[str], bool] | None = None
    lr_scale: float = 1.0


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error, the default training loss (mm)."""
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


class LiftingModel(nn.Module, metaclass=ABCMeta):
    """Base class of registered 2D-to-3D lifting models.

    Subclasses set the class attributes, store their constructor arguments with
    :meth:`_remember_config` and implement :meth:`forward` and :attr:`receptive_field`.
    """

    registry_name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    uses_mask: ClassVar[bool] = False

    def __init__(self, n_joints: int = 17, causal: bool = False) -> None:
        super().__init__()
        self.n_joints = n_joints
        self.causal = causal
        self._config: dict[str, Any] = {}

    def _remember_config(self, **hyperparameters: Any) -> None:
        """Record the constructor arguments needed to rebuild the model (JSON-able values)."""
        self._config = dict(hyperparameters)

    @property
    def config(self) -> dict[str, Any]:
        """Name and hyper-parameters; ``create_model(**config)`` rebuilds an identical model."""
        return {"name": self.registry_name, **self._config}

    @property
    @abstractmethod
    def receptive_field(self) -> int:
        """Number of input frames that determine one output frame."""

    @property
    def padding(self) -> tuple[int, int]:
        """Frames of context needed before and after a frame: (rf-1)/2 each side, or (rf-1, 0) if causal."""
        total = self.receptive_field - 1
        if self.causal:
            return total, 0
        return total // 2, total - total // 2

    @abstractmethod
    def forward(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, J, 2) [+ (B, T, J) mask] -> (B, T - receptive_field + 1, J, 3) root-relative mm."""

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss on (B, T', J, 3) predictions and targets; MPJPE unless the paper adds terms."""
        return mpjpe_loss(pred, target)

    def training_stages(self) -> list[TrainingStage]:
        """The training schedule; one stage training everything unless the paper says otherwise."""
        return [TrainingStage("all")]

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @torch.no_grad()
    def predict(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None, chunk: int = 4096) -> torch.Tensor:
        """Whole sequences (B, T, J, 2) -> (B, T, J, 3), edge-replication padded, in time chunks.

        Chunking keeps memory bounded on long sequences; each chunk gets its own context, so the
        result equals one pass over the whole padded sequence.
        """
        before, after = self.padding
        padded = _edge_pad(keypoints, before, after)
        padded_mask = _edge_pad(mask, before, after) if mask is not None else None
        outputs = []
        total = keypoints.shape[1]
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            window = slice(start, stop + before + after)
            outputs.append(self(padded[:, window], None if padded_mask is None else padded_mask[:, window]))
        return torch.cat(outputs, dim=1)


def _edge_pad(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Repeat the first/last frame (axis 1) ``before``/``after`` times."""
    parts = []
    if before:
        parts.append(x[:, :1].expand(-1, before, *x.shape[2:]))
    parts.append(x)
    if after:
        parts.append(x[:, -1:].expand(-1, after, *x.shape[2:]))
    return torch.cat(parts, dim=1) if len(parts) > 1 else x
