"""The ``--cameras SPEC`` grammar: which virtual cameras to add to a take.

Parsing only; :func:`posebench.virtual_cameras.make_cameras` builds the cameras. The grammar is
:data:`CAMERA_SPEC_GRAMMAR` (also in docs/virtual_cameras.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from posebench.errors import CameraSpecError

__all__ = ["CAMERA_SPEC_GRAMMAR", "CameraRequest", "parse_camera_spec"]

CAMERA_SPEC_GRAMMAR = """\
camera spec grammar:
  SPEC    := REQUEST ( "+" REQUEST )*
  REQUEST := KIND [ ":" OPTION ( "," OPTION )* ]
  KIND    := "ring" N  (N static cameras around the take, 1 <= N <= 64)  |  "handheld"
  OPTION  := KEY "=" VALUE, each key at most once
    ring:     focal=PX (1145)  size=WxH (1000x1000)  distortion=none|opencv|h36m (none)
              height=MM (1600, camera height)  id=NAME (ring; cameras NAME_0 .. NAME_{N-1})
    handheld: focal=PX (1500)  size=WxH (1920x1080)  seed=INT (the run's seed)
              distance=MM (automatic)  id=NAME (handheld)
  examples: ring4   ring8:distortion=h36m   ring4+handheld:seed=3,focal=1200,size=1280x720"""

MAX_RING_CAMERAS = 64

_RING_KEYS = ("focal", "size", "distortion", "height", "id")
_HANDHELD_KEYS = ("focal", "size", "seed", "distance", "id")
_DISTORTIONS = ("none", "opencv", "h36m")


@dataclass(frozen=True)
class CameraRequest:
    """One part of a camera spec with its options resolved to values.

    ``kind`` is ``"ring"`` (``count`` static cameras) or ``"handheld"`` (one moving camera).
    ``camera_id`` is the ring's id prefix or the hand-held camera's id. ``seed`` (hand-held)
    and ``camera_height_mm`` / ``distance_mm`` are None when the spec leaves them to defaults.
    """

    kind: str
    count: int
    focal: float
    width: int
    height: int
    distortion: str
    camera_id: str
    seed: int | None = None
    camera_height_mm: float | None = None
    distance_mm: float | None = None


class _BadPart(Exception):
    """A problem found in one part of a spec (turned into a :class:`CameraSpecError`)."""


def _positive_number(key: str, value: str, unit: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise _BadPart(f"{key} must be a positive number of {unit}, got {value!r}")
    return number


def _size(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"([0-9]+)x([0-9]+)", value)
    if match is None or int(match[1]) == 0 or int(match[2]) == 0:
        raise _BadPart(f"size must be WIDTHxHEIGHT in positive whole pixels, got {value!r}")
    return int(match[1]), int(match[2])


def _options(text: str, allowed: tuple[str, ...], kind: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = (piece.strip() for piece in item.partition("="))
        if not sep or not key or not value:
            raise _BadPart(f"option {item.strip()!r} is not KEY=VALUE")
        if key not in allowed:
            raise _BadPart(
                f"unknown option {key!r} for {kind}; its options are {', '.join(allowed)}"
            )
        if key in options:
            raise _BadPart(f"option {key!r} given twice")
        options[key] = value
    return options


def _request(part: str) -> CameraRequest:
    kind_text, colon, option_text = (piece.strip() for piece in part.partition(":"))
    ring = re.fullmatch(r"ring([0-9]+)", kind_text)
    if ring is not None:
        kind, count, allowed = "ring", int(ring[1]), _RING_KEYS
        if not 1 <= count <= MAX_RING_CAMERAS:
            raise _BadPart(f"a ring has 1 to {MAX_RING_CAMERAS} cameras, got {count}")
        focal, size = 1145.0, (1000, 1000)
    elif kind_text == "handheld":
        kind, count, allowed = "handheld", 1, _HANDHELD_KEYS
        focal, size = 1500.0, (1920, 1080)
    elif kind_text == "ring":
        raise _BadPart("'ring' needs a camera count, e.g. ring4")
    else:
        raise _BadPart(f"unknown camera kind {kind_text!r}; use ringN or handheld")
    if colon and not option_text:
        raise _BadPart("':' must be followed by options")
    options = _options(option_text, allowed, kind) if colon else {}
    if "focal" in options:
        focal = _positive_number("focal", options["focal"], "pixels")
    if "size" in options:
        size = _size(options["size"])
    distortion = options.get("distortion", "none")
    if distortion not in _DISTORTIONS:
        raise _BadPart(f"distortion must be one of {', '.join(_DISTORTIONS)}, got {distortion!r}")
    camera_id = options.get("id", kind)
    if re.fullmatch(r"[A-Za-z0-9_.-]+", camera_id) is None:
        raise _BadPart(f"id must use letters, digits, '_', '.' or '-', got {camera_id!r}")
    seed = None
    if "seed" in options:
        if re.fullmatch(r"[0-9]+", options["seed"]) is None:
            raise _BadPart(f"seed must be a non-negative integer, got {options['seed']!r}")
        seed = int(options["seed"])
    return CameraRequest(
        kind=kind,
        count=count,
        focal=focal,
        width=size[0],
        height=size[1],
        distortion=distortion,
        camera_id=camera_id,
        seed=seed,
        camera_height_mm=(
            _positive_number("height", options["height"], "mm") if "height" in options else None
        ),
        distance_mm=(
            _positive_number("distance", options["distance"], "mm")
            if "distance" in options
            else None
        ),
    )


def parse_camera_spec(spec: str) -> list[CameraRequest]:
    """The camera requests of a ``--cameras`` spec such as ``ring4+handheld:seed=3``.

    Raises :class:`~posebench.errors.CameraSpecError` naming the bad part, with the grammar.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise CameraSpecError(f"empty camera spec {spec!r}\n{CAMERA_SPEC_GRAMMAR}")
    requests = []
    for part in spec.split("+"):
        try:
            if not part.strip():
                raise _BadPart("empty part between '+' signs")
            requests.append(_request(part.strip()))
        except _BadPart as problem:
            raise CameraSpecError(
                f"invalid camera spec {spec!r}: {problem} (in part {part.strip()!r})\n"
                f"{CAMERA_SPEC_GRAMMAR}"
            ) from None
    return requests
