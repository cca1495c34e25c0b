"""Registered 2D-to-3D lifting models.

Register a model class with ``@register_model("name")``; other packages register theirs through
the entry-point group ``posebench.models`` (value ``module:Class``), loaded on first use.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable

from posebench.errors import PosebenchError
from posebench.models.base import LiftingModel, TrainingStage, mpjpe_loss

ENTRY_POINT_GROUP = "posebench.models"
BUILTIN_MODULES: tuple[str, ...] = ("tcn", "gated_tcn", "seq2seq", "rie", "anatomy")

_REGISTRY: dict[str, type[LiftingModel]] = {}
_loaded = False


class UnknownModelError(PosebenchError):
    """No model is registered under the requested name."""


def register_model(name: str) -> Callable[[type[LiftingModel]], type[LiftingModel]]:
    """Class decorator registering a :class:`LiftingModel` subclass under ``name``."""

    def decorate(cls: type[LiftingModel]) -> type[LiftingModel]:
        if not issubclass(cls, LiftingModel):
            raise TypeError(f"{cls.__name__} must subclass posebench.models.LiftingModel")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise PosebenchError(f"a model named {name!r} is already registered ({_REGISTRY[name].__module__})")
        cls.registry_name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(f"posebench.models.{module}")
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        cls = entry_point.load()
        if entry_point.name not in _REGISTRY:
            register_model(entry_point.name)(cls)


def model_names() -> list[str]:
    """Names of every registered model."""
    _load_all()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[LiftingModel]:
    """The class registered under ``name``."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"no model named {name!r}; registered models: {', '.join(sorted(_REGISTRY))}") from None


def create_model(name: str, **hyperparameters: Any) -> LiftingModel:
    """Instantiate a registered model; ``create_model(**model.config)`` rebuilds ``model``."""
    return get_model_class(name)(**hyperparameters)


__all__ = ["LiftingModel", "TrainingStage", "UnknownModelError", "create_model", "get_model_class", "model_names", "mpjpe_loss", "register_model"]
