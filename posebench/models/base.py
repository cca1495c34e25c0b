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

from posebench.errors import ModelError


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

    def check_inputs(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None, min_frames: int | None = None) -> None:
        """Raise :class:`ModelError` unless keypoints are (B, T, n_joints, 2) with T >= ``min_frames``
        (default: the receptive field) and the mask, if given, is (B, T, n_joints)."""
        name = self.registry_name or type(self).__name__
        needed = self.receptive_field if min_frames is None else min_frames
        if keypoints.ndim != 4 or keypoints.shape[2] != self.n_joints or keypoints.shape[3] != 2:
            raise ModelError(f"model {name!r}: keypoints must have shape (B, T, {self.n_joints}, 2), got {tuple(keypoints.shape)}")
        if keypoints.shape[1] < needed:
            raise ModelError(
                f"model {name!r}: needs at least {needed} input frames (its receptive field), got {keypoints.shape[1]}; "
                "use predict() to pad a short sequence"
            )
        if mask is not None and tuple(mask.shape) != tuple(keypoints.shape[:3]):
            raise ModelError(f"model {name!r}: mask must have shape {tuple(keypoints.shape[:3])} (B, T, J), got {tuple(mask.shape)}")

    def training_forward(
        self, keypoints: torch.Tensor, mask: torch.Tensor | None, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions for a batch of training windows and the targets they are compared with.

        ``keypoints`` (B, T, J, 2) and ``targets`` (B, T, J, 3) cover the same frames. The default
        runs :meth:`forward` and keeps the target frames its outputs belong to (the centre frame
        of each receptive field, or the last one for a causal model). Models whose training
        differs from inference (a faster equivalent network, a loss over a whole decoded
        sequence) override this.
        """
        before, after = self.padding
        return self(keypoints, mask), targets[:, before : targets.shape[1] - after]

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss on (B, T', J, 3) predictions and targets; MPJPE unless the paper adds terms."""
        return mpjpe_loss(pred, target)

    def training_stages(self) -> list[TrainingStage]:
        """The training schedule; one stage training everything unless the paper says otherwise."""
        return [TrainingStage("all")]

    def begin_stage(self, name: str) -> None:
        """Called by the trainer when a training stage starts (and again on resume); no-op by default.

        Models whose architecture changes between stages (RIE switches its fusion module on)
        override it; calling it again for the current stage must change nothing.
        """

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
