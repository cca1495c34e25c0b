"""Safe reader of NumPy ``.npz`` archives whose arrays may hold pickled Python objects.

VideoPose3D's data files (``data_3d_h36m.npz``, ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` ...) store
nested dicts and lists of arrays as 0-d object arrays, i.e. as pickles. ``np.load(...,
allow_pickle=True)`` would run any code such a pickle names. :func:`load_npz` instead unpickles
with an allow-list: the pickle may build dicts, lists, tuples, sets, strings, bytes, numbers,
booleans, ``None``, numpy arrays, dtypes and numpy scalars, and nothing else. Any other global
(a function or class the pickle wants to call) raises :class:`~posebench.errors.NPZError` before
it is resolved, so nothing of it runs. Rules: docs/converters/h36m.md ("Safe loading").
"""

from __future__ import annotations

import codecs
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from posebench.errors import NPZError

__all__ = ["ALLOWED_GLOBALS", "load_npz"]

_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_SCALAR = np.float32(0).__reduce__()[0]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for raw array bytes (latin-1 only)."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(text, "latin1")


#: ``(module, name)`` -> the object a pickle may reference. numpy 1 writes ``numpy.core``,
#: numpy 2 ``numpy._core``; protocol-2 pickles encode raw bytes through ``_codecs.encode``.
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified = f"{module}.{name}"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent references are not allowed")


def _read_member(stream: io.BytesIO, path: Path, member: str) -> Any:
    try:
        version = np.lib.format.read_magic(stream)
        # Version 3.0 differs from 2.0 only in decoding the header as UTF-8 instead of latin-1.
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        dtype = read_header(stream)[2]
    except ValueError as error:
        raise NPZError(f"{path}: member {member!r} is not a .npy array ({error})") from None
    if not dtype.hasobject:
        stream.seek(0)
        try:
            return np.lib.format.read_array(stream, allow_pickle=False)
        except ValueError as error:
            raise NPZError(f"{path}: member {member!r} is truncated or corrupt ({error})") from None
    try:
        array = _RestrictedUnpickler(stream, encoding="latin1").load()
    except _ForbiddenGlobal as error:
        allowed = ", ".join(sorted({f"{m}.{n}" for m, n in ALLOWED_GLOBALS}))
        raise NPZError(
            f"{path}: member {member!r} holds a pickle that references {error.qualified}, which is not "
            f"plain data; refused without running it. Only dicts, lists, tuples, strings, numbers, "
            f"numpy arrays and scalars are accepted (allowed globals: {allowed}). Re-create the file "
            "from trusted data or convert it with the tool that wrote it"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise NPZError(f"{path}: member {member!r} holds a corrupt pickle ({error})") from None
    if not isinstance(array, np.ndarray):
        raise NPZError(f"{path}: member {member!r} unpickles to {type(array).__name__}, expected a numpy array")
    return array.item() if array.ndim == 0 else array


def load_npz(path: str | Path) -> dict[str, Any]:
    """The members of an ``.npz`` archive by name (without ``.npy``), loaded safely.

    Plain arrays are returned as numpy arrays. Object arrays are unpickled with the allow-list
    :data:`ALLOWED_GLOBALS`; a 0-d object array (how ``np.savez(x=some_dict)`` stores a dict) is
    returned as the object it holds. Anything else in a pickle raises
    :class:`~posebench.errors.NPZError` naming the file, the member and the forbidden global.
    """
    path = Path(path)
    if not path.is_file():
        raise NPZError(f"{path}: no such file")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise NPZError(f"{path}: not an .npz archive (not a zip file)") from None
    members: dict[str, Any] = {}
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise NPZError(f"{path}: member {info.filename!r} cannot be read ({error})") from None
            members[name] = _read_member(io.BytesIO(data), path, info.filename)
    return members
