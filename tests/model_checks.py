"""Checks shared by the model tests."""

from __future__ import annotations

import torch


def losses_after_steps(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, lr: float, steps: int = 10) -> list[float]:
    """Training losses of ``steps`` Adam steps on one fixed batch (gradients are left in place)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model.loss(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
