"""Reading text-based capture files whatever their encoding."""

from __future__ import annotations

from pathlib import Path

from posebench.errors import FormatError


def read_text(path: str | Path, error: type[FormatError]) -> str:
    """The file's text: UTF-8, or Latin-1 when it is not valid UTF-8 (older exporters).

    A file that cannot be read raises ``error`` naming the path and the reason.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the file: {exc.strerror}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
