"""Evaluation protocols: every choice that changes a reported number, as a small TOML file.

A protocol names the test split, the 2D source, excluded sequences, frame stride, scored joints,
root handling, test-time flip, averaging, metrics, occlusion and movement-range settings. Its
``name`` and content ``hash`` are written into every result row, so two numbers are comparable
exactly when their protocol hashes are equal. Presets for the seed papers' conventions ship as
TOML files in ``posebench/protocols/presets``; docs/protocols.md documents each field.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from posebench.errors import PosebenchError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PROTOCOL_FORMAT_VERSION = 1
PRESET_DIRECTORY = Path(__file__).parent / "presets"

METRICS = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck", "auc", "accel_error", "mpjpe_abs", "n_mpjpe_abs")
AVERAGING = ("action_mean", "frame_mean")
OCCLUSION_MODES = ("synthetic", "natural")
ACTION_GROUPING = ("first_word", "exact")


class ProtocolError(PosebenchError):
    """A protocol file is invalid or unknown."""


@dataclass(frozen=True)
class OcclusionSettings:
    """Which occlusion the inputs get: synthetic masks (MMHuman eqs. 10-11) at each of ``ratios``
    (ratio 0 = clean inputs), or natural occlusion from the 2D source's confidence."""

    mode: str = "synthetic"
    ratios: tuple[float, ...] = (0.0,)
    kernel: int = 1
    boundary: str = "valid"
    confidence_threshold: float = 0.3


@dataclass(frozen=True)
class MovementRangeSettings:
    """Movement-range strata (RIE eq. 15): window length and number of equal-size buckets."""

    window: int = 243
    buckets: int = 10


@dataclass(frozen=True)
class TrajectorySettings:
    """Global trajectory recovery for camera-space metrics (MMHuman eq. 9)."""

    lambda1: float = 1.0
    lambda2: float = 1.0
    window: int = 100


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol; see the module docstring and docs/protocols.md."""

    name: str
    description: str = ""
    dataset: str = ""
    test_split: str = "test"
    source: str = "gt"
    exclude_sequences: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    frame_stride: int = 1
    joints: tuple[str, ...] = ()
    root_joint: str = "pelvis"
    flip_test: bool = True
    averaging: tuple[str, ...] = AVERAGING
    action_grouping: str = "first_word"
    by_subject: bool = False
    metrics: tuple[str, ...] = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")
    aliases: Mapping[str, str] = field(default_factory=dict)
    occlusion: OcclusionSettings = OcclusionSettings()
    movement_range: MovementRangeSettings = MovementRangeSettings()
    trajectory: TrajectorySettings = TrajectorySettings()

    def to_dict(self) -> dict[str, Any]:
        """The protocol as plain data (lists for tuples), the form that is hashed."""
        return json.loads(json.dumps(asdict(self)))

    @property
    def hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of every field but ``occlusion.ratios``.

        The ratios only choose which rows a run produces; every result row records its own ratio,
        and a number at a given ratio does not depend on which other ratios were run.
        """
        content = self.to_dict()
        del content["occlusion"]["ratios"]
        canonical = json.dumps({"format": PROTOCOL_FORMAT_VERSION, **content}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def metric_name(self, alias_or_name: str) -> str:
        """The metric named by ``alias_or_name`` (an alias defined by this protocol, or a metric name)."""
        if alias_or_name in self.aliases:
            return self.aliases[alias_or_name]
        if alias_or_name in METRICS:
            return alias_or_name
        raise ProtocolError(
            f"protocol {self.name!r} has no metric or alias {alias_or_name!r}; metrics: {list(METRICS)}, "
            f"aliases here: {dict(self.aliases) or 'none'}"
        )

    def excludes(self, sequence_id: str) -> bool:
        """Whether a sequence is excluded (exact ids or shell-style patterns)."""
        return any(fnmatch.fnmatchcase(sequence_id, pattern) for pattern in self.exclude_sequences)

    def action_group(self, action: str) -> str:
        """The action a sequence is averaged under ("Walking 1" -> "Walking" with first_word)."""
        return action.split(" ")[0] if self.action_grouping == "first_word" else action


_SECTIONS = {"occlusion": OcclusionSettings, "movement_range": MovementRangeSettings, "trajectory": TrajectorySettings}


def _check_choice(where: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ProtocolError(f"{where}: {value!r} is not one of {list(choices)}")


def protocol_from_dict(data: Mapping[str, Any], source: str) -> Protocol:
    """Build and check a protocol from parsed TOML; errors name ``source`` and the field."""
    data = dict(data)
    version = data.pop("format_version", PROTOCOL_FORMAT_VERSION)
    if version != PROTOCOL_FORMAT_VERSION:
        raise ProtocolError(f"{source}: format_version {version!r} is not supported; this posebench reads {PROTOCOL_FORMAT_VERSION}")
    if "name" not in data:
        raise ProtocolError(f"{source}: missing required key 'name'")
    known = {f for f in Protocol.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProtocolError(f"{source}: unknown keys {unknown}; known keys: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            section = _SECTIONS[key]
            bad = sorted(set(value) - set(section.__dataclass_fields__))
            if bad:
                raise ProtocolError(f"{source}: [{key}] has unknown keys {bad}; known: {sorted(section.__dataclass_fields__)}")
            kwargs[key] = section(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    protocol = Protocol(**kwargs)
    for metric in protocol.metrics:
        _check_choice(f"{source}: metrics", metric, METRICS)
    for alias, target in protocol.aliases.items():
        _check_choice(f"{source}: aliases.{alias}", target, METRICS)
    for averaging in protocol.averaging:
        _check_choice(f"{source}: averaging", averaging, AVERAGING)
    _check_choice(f"{source}: action_grouping", protocol.action_grouping, ACTION_GROUPING)
    _check_choice(f"{source}: occlusion.mode", protocol.occlusion.mode, OCCLUSION_MODES)
    _check_choice(f"{source}: occlusion.boundary", protocol.occlusion.boundary, ("valid", "same"))
    if not isinstance(protocol.frame_stride, int) or protocol.frame_stride < 1:
        raise ProtocolError(f"{source}: frame_stride must be a positive integer, found {protocol.frame_stride!r}")
    if not all(0.0 <= r <= 1.0 for r in protocol.occlusion.ratios):
        raise ProtocolError(f"{source}: occlusion.ratios must lie in [0, 1], found {list(protocol.occlusion.ratios)}")
    if protocol.occlusion.kernel < 1 or protocol.movement_range.buckets < 1 or protocol.movement_range.window < 1:
        raise ProtocolError(f"{source}: occlusion.kernel, movement_range.window and movement_range.buckets must be >= 1")
    return protocol


def read_protocol(path: str | Path) -> Protocol:
    """Read a protocol TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read protocol: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{path}: not valid TOML: {exc}") from None
    return protocol_from_dict(data, str(path))


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESET_DIRECTORY.glob("*.toml"))


def get_protocol(name_or_path: str | Path) -> Protocol:
    """A preset by name, or a protocol file by path."""
    path = PRESET_DIRECTORY / f"{name_or_path}.toml"
    if path.is_file():
        return read_protocol(path)
    if Path(name_or_path).is_file():
        return read_protocol(name_or_path)
    raise ProtocolError(f"no protocol preset or file {str(name_or_path)!r}; presets: {preset_names()}")


def write_protocol(protocol: Protocol, path: str | Path) -> None:
    """Write a protocol as TOML (round-trips through :func:`read_protocol` to an equal hash)."""
    lines = [f"format_version = {PROTOCOL_FORMAT_VERSION}"]
    tables = []
    for key, value in protocol.to_dict().items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables:
        lines.append(f"\n[{key}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ProtocolError(f"cannot write {value!r} as TOML")
