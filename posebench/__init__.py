"""posebench: unified 3D human pose datasets, lifting models and explicit evaluation."""

from __future__ import annotations

__version__ = "0.1.0"

from posebench.dataset import SCHEMA_VERSION, Dataset, Keypoints2D, Sequence, load  # noqa: E402

__all__ = ["Dataset", "Keypoints2D", "SCHEMA_VERSION", "Sequence", "__version__", "load"]
