"""A third-party model and converter, registered in tests through entry points."""

from __future__ import annotations

import click
import torch

from posebench.models import LiftingModel


class ZeroLifter(LiftingModel):
    """Predicts the root-centred zero pose for every frame (a placeholder plug-in)."""

    paper = "plug-in example"

    def __init__(self, n_joints: int = 17) -> None:
        super().__init__(n_joints=n_joints)
        self._remember_config(n_joints=n_joints)
        self.scale = torch.nn.Parameter(torch.zeros(1))

    @property
    def receptive_field(self) -> int:
        return 1

    def forward(self, keypoints: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return keypoints.new_zeros(*keypoints.shape[:-1], 3) * self.scale


@click.command("example")
def convert_example() -> None:
    """Convert nothing (a plug-in example)."""
    click.echo("example converter ran")
