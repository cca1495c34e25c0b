"""The C3D header (block 1) and the processor type stored at the start of the parameter section."""

from __future__ import annotations

from dataclasses import dataclass

from posebench.io.c3d_source import BLOCK_SIZE, PROCESSOR_CODES, C3DSource, NumberFormat

C3D_KEY = 0x50
"""Second byte of every C3D file."""


@dataclass(frozen=True)
class C3DHeader:
    """The fields of the 512-byte header that locate and describe the data.

    Counts are 16-bit words read as unsigned (vendors store values above 32767 that way).
    """

    parameter_block: int
    point_count: int
    analog_values_per_frame: int
    first_frame: int
    last_frame: int
    scale: float
    data_block: int
    analog_samples_per_frame: int
    rate: float


def read_processor(source: C3DSource) -> tuple[int, NumberFormat]:
    """Check the C3D key and return (parameter block number, number format of the file).

    The processor type lives in byte 4 of the parameter section; the header's own numbers can
    only be decoded once it is known.
    """
    source.require(0, BLOCK_SIZE, "a 512-byte C3D header")
    parameter_block = source.data[0]
    key = source.data[1]
    if key != C3D_KEY:
        raise source.error(
            1, f"the C3D key 0x{C3D_KEY:02X} (this is not a C3D file)", f"0x{key:02X}"
        )
    if parameter_block < 2:
        raise source.error(
            0, "the block number of the parameter section (2 or more)", str(parameter_block)
        )
    section = (parameter_block - 1) * BLOCK_SIZE
    code = source.byte(section + 3, "the processor type of the parameter section")
    if code not in PROCESSOR_CODES:
        raise source.error(
            section + 3,
            "a processor type of 84 (Intel), 85 (DEC) or 86 (MIPS/SGI)",
            str(code),
        )
    return parameter_block, NumberFormat(PROCESSOR_CODES[code])


def read_header(source: C3DSource, parameter_block: int, fmt: NumberFormat) -> C3DHeader:
    """Decode the header words (1-based word numbers of the C3D specification in comments)."""

    def word(number: int, what: str) -> int:
        return source.uint16(2 * (number - 1), fmt, f"header word {number} ({what})")

    def real(number: int, what: str) -> float:
        return source.float32(2 * (number - 1), fmt, f"header words {number}-{number + 1} ({what})")

    return C3DHeader(
        parameter_block=parameter_block,
        point_count=word(2, "number of points"),
        analog_values_per_frame=word(3, "analog values per frame"),
        first_frame=word(4, "first frame"),
        last_frame=word(5, "last frame"),
        scale=real(7, "point scale"),
        data_block=word(9, "data start block"),
        analog_samples_per_frame=word(10, "analog samples per frame"),
        rate=real(11, "frame rate"),
    )
