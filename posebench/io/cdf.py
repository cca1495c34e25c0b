"""Reader of variables in NASA Common Data Format (CDF) files, through the pure-Python ``cdflib``.

Human3.6M ships its poses as CDF files; ``cdflib`` reads them without the NASA CDF C library.
This module only turns ``cdflib``'s errors into :class:`~posebench.errors.CDFError` messages that
name the file and the variable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebench.errors import CDFError

__all__ = ["read_cdf_variable"]


def read_cdf_variable(path: str | Path, variable: str) -> np.ndarray:
    """All records of ``variable`` in the CDF file ``path``, shape ``(records, *dims)``."""
    import cdflib

    path = Path(path)
    try:
        cdf = cdflib.CDF(str(path))
    except FileNotFoundError:
        raise CDFError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, IndexError) as error:
        raise CDFError(f"{path}: not a readable CDF file ({error})") from None
    names = list(cdf.cdf_info().zVariables) + list(cdf.cdf_info().rVariables)
    if variable not in names:
        raise CDFError(f"{path}: no variable {variable!r}; the file has {names or 'no variables'}")
    try:
        data = cdf.varget(variable)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise CDFError(f"{path}: variable {variable!r} cannot be read ({error})") from None
    return np.asarray(data)
