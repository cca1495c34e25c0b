"""Atomic writes: build the output under a temporary name beside it, then rename.

A crash leaves at most a hidden ``.<name>.tmp-<host>-<pid>-<token>`` path (and, when it replaced
an older output, ``.<name>.old-...``), never a half-written output under the final name. The next
write of the same output removes such leftovers when the process that made them (same host, its
pid) no longer runs; leftovers of a live writer, or of another host, are left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from posebench.errors import PosebenchError

_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname()) or "host"
_LEFTOVER = re.compile(r"(tmp|old)-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-[0-9a-f]{12}")


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


def _running(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_leftovers(path: Path) -> list[Path]:
    """Remove the temporary siblings of ``path`` left by writers on this host that no longer run."""
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    if not path.parent.is_dir():
        return removed
    for sibling in path.parent.iterdir():
        match = _LEFTOVER.fullmatch(sibling.name[len(prefix):]) if sibling.name.startswith(prefix) else None
        if match and match["host"] == _HOST and int(match["pid"]) != os.getpid() and not _running(int(match["pid"])):
            _remove(sibling)
            removed.append(sibling)
    return removed


@contextmanager
def atomic_output(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` to; rename it into place when the block succeeds.

    The temporary path is removed if the block raises. With ``overwrite=False`` an existing
    ``path`` is an error, checked before any work is done. Leftovers of killed earlier writes of
    ``path`` are removed first (see the module docstring).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise PosebenchError(f"{path} already exists; choose another output path or pass overwrite (--overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_leftovers(path)
    token = f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
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
