"""Atomic writes: build the output under a temporary name beside it, then rename.

A crash leaves at most a hidden ``.<name>.tmp-*`` path, never a half-written output under the
final name.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from posebench.errors import PosebenchError


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _default_permissions(path: Path) -> None:
    """Give a written file the permissions a plain ``open`` would (some writers create 0600 files)."""
    if path.is_file():
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(path, 0o666 & ~umask)


@contextmanager
def atomic_output(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` to; rename it into place when the block succeeds.

    The temporary path is removed if the block raises. With ``overwrite=False`` an existing
    ``path`` is an error, checked before any work is done.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise PosebenchError(f"{path} already exists; choose another output path or pass overwrite (--overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    temporary = path.parent / f".{path.name}.tmp-{token}"
    try:
        yield temporary
        _default_permissions(temporary)
        if path.exists():
            if not overwrite:
                raise PosebenchError(f"{path} appeared while it was being written; nothing was replaced")
            retired = path.parent / f".{path.name}.old-{token}"
            os.replace(path, retired)
            os.replace(temporary, path)
            _remove(retired)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists() or temporary.is_symlink():
            _remove(temporary)
