"""IEEE 11073-20601 medical number types, as Bluetooth health profiles send them.

- FLOAT (32 bit, little endian): 24-bit signed mantissa, 8-bit signed
  exponent (the high byte); value = mantissa * 10**exponent.
- SFLOAT (16 bit, little endian): 12-bit signed mantissa, 4-bit signed
  exponent (the high nibble).

Special values have exponent 0 and a reserved mantissa: NaN, NRes (not at
this resolution), +INF, -INF and a reserved code. They are not measurements;
`decode_*` return them by name so the rejection can say which one.
"""

from __future__ import annotations

from typing import Final

FLOAT_SPECIAL: Final[dict[int, str]] = {
    0x007FFFFF: "NaN",
    0x00800000: "NRes",
    0x007FFFFE: "+INF",
    0x00800002: "-INF",
    0x00800001: "reserved",
}
SFLOAT_SPECIAL: Final[dict[int, str]] = {
    0x07FF: "NaN",
    0x0800: "NRes",
    0x07FE: "+INF",
    0x0802: "-INF",
    0x0801: "reserved",
}


def _scale(mantissa: int, exponent: int) -> float:
    # Division for negative exponents: 364 / 10 is 36.4, 364 * 0.1 is not.
    if exponent < 0:
        return mantissa / 10 ** (-exponent)
    return float(mantissa * 10**exponent)


def _decode(raw: int, special: dict[int, str], mantissa_bits: int, exponent_bits: int
            ) -> float | str:
    """Two's-complement mantissa in the low bits, exponent in the high bits."""
    name = special.get(raw)
    if name is not None:
        return name
    mantissa = raw & ((1 << mantissa_bits) - 1)
    if mantissa >= 1 << (mantissa_bits - 1):
        mantissa -= 1 << mantissa_bits
    exponent = raw >> mantissa_bits
    if exponent >= 1 << (exponent_bits - 1):
        exponent -= 1 << exponent_bits
    return _scale(mantissa, exponent)


def decode_float(raw: int) -> float | str:
    """A 32-bit FLOAT (already read as uint32 LE): the value, or the name of
    the special value it is."""
    return _decode(raw, FLOAT_SPECIAL, 24, 8)


def decode_sfloat(raw: int) -> float | str:
    """A 16-bit SFLOAT (already read as uint16 LE): the value, or the name of
    the special value it is."""
    return _decode(raw, SFLOAT_SPECIAL, 12, 4)


def encode_sfloat(mantissa: int, exponent: int) -> int:
    """The uint16 of an SFLOAT (for tests and the device simulator)."""
    if not (-2048 <= mantissa <= 2047 and -8 <= exponent <= 7):
        raise ValueError("SFLOAT mantissa is 12 bits, exponent 4 bits (signed)")
    return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)


def encode_float(mantissa: int, exponent: int) -> int:
    """The uint32 of a FLOAT (for tests and the device simulator)."""
    if not (-(2**23) <= mantissa < 2**23 and -128 <= exponent <= 127):
        raise ValueError("FLOAT mantissa is 24 bits, exponent 8 bits (signed)")
    return ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF)
