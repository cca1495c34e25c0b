"""Bounds-checked access to the bytes of a C3D file, its number formats and its diagnostics.

Every read of the C3D reader goes through :class:`C3DSource`, so that a truncated or corrupt
file raises :class:`~posebench.errors.C3DError` naming the file, the byte offset and what was
expected there, instead of a ``struct``, ``numpy`` or ``IndexError`` from deep inside.
"""

from __future__ import annotations

import numpy as np

from posebench.errors import C3DError

BLOCK_SIZE = 512
"""C3D files are organised in 512-byte blocks, numbered from 1."""

PROCESSOR_CODES = {84: "intel", 85: "dec", 86: "mips"}
"""Processor byte of the parameter section (83 + n) and the name posebench uses for it."""


class C3DWarning(UserWarning):
    """A C3D file deviates from the specification but could still be read."""


class NumberFormat:
    """Byte order and floating-point encoding of one processor type.

    ``intel`` is little-endian IEEE 754, ``mips`` (SGI) big-endian IEEE 754 and ``dec`` (VAX)
    little-endian integers with VAX F-floating reals.
    """

    def __init__(self, processor: str) -> None:
        if processor not in PROCESSOR_CODES.values():
            raise ValueError(f"unknown processor {processor!r}")
        self.processor = processor
        order = ">" if processor == "mips" else "<"
        self.byteorder = "big" if processor == "mips" else "little"
        self.int8 = np.dtype("i1")
        self.int16 = np.dtype(order + "i2")
        self.uint16 = np.dtype(order + "u2")
        self.float32_raw = np.dtype("<u4") if processor == "dec" else np.dtype(order + "f4")
        """dtype of the stored 4-byte reals before :meth:`decode_floats`."""

    def decode_floats(self, raw: np.ndarray) -> np.ndarray:
        """Convert stored 4-byte reals (of dtype ``float32_raw``) to float64, vectorised."""
        if self.processor != "dec":
            return raw.astype(np.float64)
        return vax_to_float64(raw)


def vax_to_float64(raw: np.ndarray) -> np.ndarray:
    """Decode VAX F-floating values read as little-endian uint32 into float64.

    A VAX F-float is two little-endian 16-bit words; the first holds the sign, the 8-bit
    exponent (bias 128) and the top 7 bits of the mantissa, whose leading 1 is hidden and which
    is a fraction in [0.5, 1). Swapping the two words gives the bit layout of an IEEE single
    whose value is 4 times larger (exponent bias 127, mantissa in [1, 2)). Two exponents need
    care: 0 means zero in VAX (whatever the other bits; VAX would trap on the "reserved operand"
    with the sign set, which is read as 0 too) and 255, which IEEE reserves for infinities, is
    an ordinary exponent in VAX.
    """
    words = np.ascontiguousarray(raw, dtype=np.uint32).reshape(-1).view("<u2").reshape(-1, 2)
    high, low = words[:, 0], words[:, 1]
    exponent = high & np.uint16(0x7F80)
    nonzero = exponent != 0
    swapped = np.empty_like(words)
    np.multiply(low, nonzero, out=swapped[:, 0], casting="unsafe")
    np.multiply(high, nonzero, out=swapped[:, 1], casting="unsafe")
    bits = swapped.reshape(-1).view("<u4")
    value = np.empty(bits.shape, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        np.multiply(bits.view("<f4"), np.float64(0.25), out=value)
    top = exponent == np.uint16(0x7F80)
    if top.any():
        mantissa = ((bits[top] & np.uint32(0x7FFFFF)) | np.uint32(0x800000)).astype(np.float64)
        magnitude = np.ldexp(mantissa, 255 - 152)
        value[top] = np.where(high[top] >> np.uint16(15) != 0, -magnitude, magnitude)
    return value.reshape(np.shape(raw))


class C3DSource:
    """The bytes of one C3D file, read with bounds checks, plus the warnings raised on it."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data
        self.size = len(data)
        self.warnings: list[str] = []

    def error(self, offset: int, expected: str, found: str = "") -> C3DError:
        """A :class:`C3DError` naming this file, the byte offset and what was expected there."""
        message = f"{self.name}: at byte offset {offset}: expected {expected}"
        if found:
            message += f", found {found}"
        return C3DError(message)

    def warn(self, message: str) -> None:
        """Record a deviation from the specification that the reader worked around."""
        self.warnings.append(message)

    def require(self, offset: int, size: int, expected: str) -> None:
        """Raise :class:`C3DError` unless ``size`` bytes exist at ``offset``."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise self.error(
                offset,
                f"{expected} ({size} bytes)",
                f"end of file at byte {self.size} (the file is truncated)",
            )

    def take(self, offset: int, size: int, expected: str) -> bytes:
        """``size`` bytes at ``offset``, or :class:`C3DError` if the file ends before."""
        self.require(offset, size, expected)
        return self.data[offset : offset + size]

    def array(self, offset: int, dtype: np.dtype, count: int, expected: str) -> np.ndarray:
        """``count`` values of ``dtype`` at ``offset`` (a read-only view of the file bytes)."""
        self.require(offset, count * dtype.itemsize, expected)
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=offset)

    def byte(self, offset: int, expected: str) -> int:
        """The unsigned byte at ``offset``."""
        self.require(offset, 1, expected)
        return self.data[offset]

    def signed_byte(self, offset: int, expected: str) -> int:
        """The signed byte at ``offset``."""
        value = self.byte(offset, expected)
        return value - 256 if value > 127 else value

    def int16(self, offset: int, fmt: NumberFormat, expected: str) -> int:
        """The signed 16-bit integer at ``offset`` in the file's byte order."""
        self.require(offset, 2, expected)
        return int.from_bytes(self.data[offset : offset + 2], fmt.byteorder, signed=True)

    def uint16(self, offset: int, fmt: NumberFormat, expected: str) -> int:
        """The 16-bit word at ``offset`` read as unsigned, in the file's byte order."""
        self.require(offset, 2, expected)
        return int.from_bytes(self.data[offset : offset + 2], fmt.byteorder, signed=False)

    def float32(self, offset: int, fmt: NumberFormat, expected: str) -> float:
        """The 4-byte real at ``offset`` in the file's floating-point format."""
        return float(fmt.decode_floats(self.array(offset, fmt.float32_raw, 1, expected))[0])
