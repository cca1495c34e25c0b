"""Minimal numpy / torch dispatch used by the evaluation maths.

The metric code is written once against the operations numpy and torch share (``where``,
``isfinite``, ``einsum``, ``linalg.svd``, ``linalg.det``, reductions with ``axis=``), so a CUDA tensor
is scored on its own device and a numpy array never touches torch.
"""

from __future__ import annotations

from types import ModuleType
from typing import Union

import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]


def is_tensor(x: object) -> bool:
    """Whether ``x`` is a torch tensor."""
    return isinstance(x, torch.Tensor)


def namespace(x: Array) -> ModuleType:
    """The module (``torch`` or ``numpy``) whose functions operate on ``x``."""
    return torch if is_tensor(x) else np


def float64_pair(pred: object, gt: object) -> tuple[Array, Array]:
    """Both arguments as float64 arrays of one backend.

    If either is a torch tensor both become tensors on that tensor's device (the prediction's
    device wins when both are tensors); otherwise both become numpy arrays.
    """
    if is_tensor(pred) or is_tensor(gt):
        device = pred.device if is_tensor(pred) else gt.device
        return (
            torch.as_tensor(pred, dtype=torch.float64, device=device),
            torch.as_tensor(gt, dtype=torch.float64, device=device),
        )
    return np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)


def to_float64(x: Array) -> Array:
    """``x`` (boolean, integer or floating) as float64 in its own backend and device."""
    return x.to(torch.float64) if is_tensor(x) else x.astype(np.float64)


def like(values: object, ref: Array) -> Array:
    """``values`` as a float64 array of ``ref``'s backend (and device)."""
    if is_tensor(ref):
        return torch.as_tensor(values, dtype=torch.float64, device=ref.device)
    return np.asarray(values, dtype=np.float64)


def cast_like(x: Array, ref: object) -> Array:
    """``x`` converted to the floating dtype of ``ref`` (float64 when ``ref`` is not floating)."""
    dtype = getattr(ref, "dtype", None)
    if is_tensor(x):
        return x.to(dtype) if isinstance(dtype, torch.dtype) and dtype.is_floating_point else x
    if dtype is not None and np.issubdtype(np.dtype(dtype), np.floating):
        return x.astype(dtype, copy=False)
    return x


def as_float(x: Array) -> float:
    """A 0-d array or tensor as a Python float (the only device-to-host copy of a metric)."""
    return float(x)
