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
import math
import pickle
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from posebench.errors import NPZError

__all__ = ["ALLOWED_GLOBALS", "load_npz"]

_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_SCALAR = np.float32(0).__reduce__()[0]


class _ArrayType:
    """What ``numpy.ndarray`` resolves to: the array type as ``_reconstruct``'s argument, never called.

    numpy pickles an array as ``_reconstruct(ndarray, (0,), b'b')`` and then sets its shape,
    dtype and bytes from data in the pickle, which numpy checks against each other. Calling
    ``ndarray(shape)`` directly, or ``_reconstruct`` with another shape, would allocate memory of
    any size the pickle names (and expose it uninitialised), so both are refused.
    """


_ARRAY_TYPE = _ArrayType()


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """``numpy._core.multiarray._reconstruct`` restricted to the empty array numpy's pickles start from."""
    if subtype is not _ARRAY_TYPE or tuple(shape) != (0,):
        raise pickle.UnpicklingError("_reconstruct is only allowed as numpy pickles an array: (numpy.ndarray, (0,), dtype)")
    return _RECONSTRUCT(np.ndarray, (0,), dtype)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for raw array bytes (latin-1 only)."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(text, "latin1")


#: ``(module, name)`` -> the object a pickle may reference. numpy 1 writes ``numpy.core``,
#: numpy 2 ``numpy._core``; protocol-2 pickles encode raw bytes through ``_codecs.encode``.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): _ARRAY_TYPE,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified = f"{module}.{name}"


def _check_state(instance: Any, state: Any) -> None:
    """Refuse a BUILD (``__setstate__``) that numpy would not check itself.

    numpy trusts the state of an array or dtype: an object array given fewer items than its shape
    holds, or a dtype whose fields, size or flags disagree with its type, lets later reads follow
    pointers made of file bytes. Only the states numpy's own pickles contain pass: an array whose
    data has exactly the size its shape and dtype imply, and a dtype whose state is the one it
    would pickle itself (byte order aside).
    """
    if isinstance(instance, np.dtype):
        own = instance.__reduce__()[2]
        if not (isinstance(state, tuple) and len(state) == len(own) and state[1] in ("<", ">", "|", "=") and state[2:] == own[2:]):
            raise pickle.UnpicklingError(f"dtype {instance} with a state unlike numpy's own ({state!r:.200})")
        return
    if not isinstance(instance, np.ndarray):
        raise pickle.UnpicklingError(f"setting the state of a {type(instance).__name__} is not allowed")
    fields = state[1:] if isinstance(state, tuple) and len(state) == 5 else state
    if not (isinstance(fields, tuple) and len(fields) == 4 and isinstance(fields[0], tuple) and isinstance(fields[1], np.dtype)):
        raise pickle.UnpicklingError("array state is not (shape, dtype, fortran order, data)")
    shape, dtype, _, data = fields
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise pickle.UnpicklingError(f"array shape {shape!r:.200} is not a tuple of sizes")
    count = math.prod(shape)
    if dtype.hasobject:
        valid = isinstance(data, list) and len(data) == count
    else:
        valid = isinstance(data, (bytes, bytearray, str)) and len(data) == count * dtype.itemsize
    if not valid:
        raise pickle.UnpicklingError(f"array data does not match its shape {shape} and dtype {dtype}")


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (whose BUILD step can be checked) with an allow-list of globals."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_build(self) -> None:
        _check_state(self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build

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
        shape, _, dtype = read_header(stream)
    except (ValueError, SyntaxError, tokenize.TokenError) as error:
        # numpy parses the header dict with tokenize and ast, whose errors it does not all wrap
        raise NPZError(f"{path}: member {member!r} is not a .npy array (unreadable header: {error})") from None
    if not dtype.hasobject:
        declared = math.prod(shape) * dtype.itemsize
        present = len(stream.getbuffer()) - stream.tell()
        if declared > present:
            raise NPZError(
                f"{path}: member {member!r} declares a {dtype} array of shape {shape} ({declared} bytes) "
                f"but holds {present} bytes of data; the file is truncated or corrupt"
            )
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
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, struct.error) as error:
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
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, NotImplementedError, RuntimeError) as error:
                # ValueError: a member name that is not UTF-8; zlib.error: corrupt deflate data;
                # NotImplementedError: unknown compression method; RuntimeError: an encrypted member
                raise NPZError(f"{path}: member {info.filename!r} cannot be read ({error})") from None
            members[name] = _read_member(io.BytesIO(data), path, info.filename)
    return members
