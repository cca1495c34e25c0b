"""Exception types of posebench.

Every error a user can cause with bad input derives from :class:`PosebenchError`; the CLI turns
it into a one-line message and exit code 1. Anything else is a bug.
"""

from __future__ import annotations


class PosebenchError(Exception):
    """Base class of every data or user error posebench reports."""


class SchemaError(PosebenchError):
    """A dataset violates a rule of the unified schema.

    ``table`` is the Parquet table or HDF5 group, ``column`` the column or dataset, ``rule`` the
    short identifier of the violated rule (listed in docs/schema.md).
    """

    def __init__(self, table: str, column: str, rule: str, detail: str) -> None:
        self.table = table
        self.column = column
        self.rule = rule
        self.detail = detail
        super().__init__(f"{table}.{column}: rule '{rule}' violated: {detail}")


class SchemaVersionError(SchemaError):
    """A dataset was written with a schema version this posebench cannot read."""


class DatasetNotFoundError(PosebenchError):
    """The path given as a dataset is neither a Parquet dataset directory nor an HDF5 file."""


class FormatError(PosebenchError):
    """A raw input file is corrupt, truncated or not of the expected format.

    Readers of specific formats subclass it so that callers can catch one format's errors.
    """


class C3DError(FormatError):
    """A C3D file is not C3D, is corrupt or truncated."""


class BVHError(FormatError):
    """A BVH file is corrupt, truncated or inconsistent."""


class TRCError(FormatError):
    """A TRC marker file is corrupt, truncated or inconsistent."""


class SkeletonError(PosebenchError, ValueError):
    """A skeleton or joint mapping definition is inconsistent (parents, left/right pairs, weights)."""


class CameraError(PosebenchError, ValueError):
    """Camera parameters are invalid, or do not fit the points they are applied to."""


class UnknownNameError(PosebenchError, KeyError):
    """A skeleton, joint, joint mapping or distortion model name is not known.

    The message lists the valid names. It is also a :class:`KeyError`, so lookups behave like a
    dictionary's.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputError(PosebenchError, ValueError):
    """An array or option passed to an evaluation function has the wrong shape, type or value.

    Raised by metrics, occlusion masks, movement-range strata and trajectory recovery; the message
    names the argument, what was expected and what was given.
    """


class OpenPoseError(FormatError):
    """An OpenPose JSON keypoint file or folder is invalid or inconsistent."""


class CameraSpecError(PosebenchError, ValueError):
    """A ``--cameras`` specification of virtual cameras does not follow its grammar.

    The message names the offending part and shows the grammar (docs/virtual_cameras.md).
    """


class ModelError(PosebenchError, ValueError):
    """A model's hyper-parameters or inputs are invalid (bad filter widths, wrong input shape, ...).

    The message names the model, the argument, what was expected and what was given.
    """


class CheckpointError(PosebenchError):
    """A checkpoint or training-state file is missing, not safetensors, or its metadata is invalid.

    The message names the file and what is wrong with it.
    """


class LayoutError(FormatError):
    """A raw recording folder does not follow its documented layout.

    Raised for the multi-person moving-camera layout (docs/converters/mmhuman.md): a missing
    file, a field missing from ``camera.json``, a trajectory whose frame count differs from the
    keypoint files. The message names the file, the field and the fix.
    """


class NPZError(FormatError):
    """A NumPy ``.npz`` file is corrupt, or its pickled objects reference anything besides plain data.

    Raised by :func:`posebench.io.npz.load_npz`; the message names the file, the array member and,
    for a refused pickle, the forbidden global (``module.name``).
    """


class CDFError(FormatError):
    """A NASA CDF file cannot be read, or lacks the variable asked for."""
