"""Bluetooth GATT characteristics of the health profiles, forwarded as raw bytes.

- ``ble/2a37`` Heart Rate Measurement (Heart Rate Service)
- ``ble/2a1c`` Temperature Measurement (Health Thermometer Service)
- ``ble/2a5f`` PLX Continuous Measurement (Pulse Oximeter Service)

Layouts follow the Bluetooth GATT Specification Supplement; all integers are
little endian. A characteristic without a time field takes the gateway's
receipt time. Bytes beyond what the flags announce are a firmware bug and
reject the message (malformed), as does a message cut short.
docs/payloads.md has byte-level examples and the quality-flag mapping.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from typing import Final

from analytics.metrics import QualityFlag
from devices.decoders.base import Observation, Rejection
from devices.decoders.ieee11073 import decode_float, decode_sfloat
from devices.errors import DecodeError
from devices.records import RejectReason

_MALFORMED: Final = RejectReason.MALFORMED
_CONTACT_LOST: Final = (QualityFlag.CONTACT_LOST,)


def short(name: str, need: int, have: int) -> DecodeError:
    return DecodeError(_MALFORMED, f"{name}: needs {need} bytes for the flagged fields, got {have}")


def trailing(name: str, used: int, have: int) -> DecodeError:
    return DecodeError(
        _MALFORMED, f"{name}: {have - used} bytes after the fields the flags announce"
    )


def special(metric: str, name: str, index: int) -> Rejection:
    return Rejection(
        RejectReason.NOT_FINITE, f"{metric}: device sent IEEE 11073 special value {name}", index
    )


def sfloat_readings(
    fields: Sequence[tuple[int, str, str, int]], ts_ms: int, quality: tuple[QualityFlag, ...]
) -> tuple[list[Observation], list[Rejection]]:
    """(reading index, metric, unit, raw SFLOAT) -> observations, and a `not_finite`
    rejection for each IEEE 11073 special value (that reading only)."""
    observations: list[Observation] = []
    rejections: list[Rejection] = []
    for index, metric, unit, raw in fields:
        value = decode_sfloat(raw)
        if type(value) is str:
            rejections.append(special(metric, value, index))
        else:
            observations.append(Observation(index, metric, value, unit, ts_ms, quality))
    return observations, rejections


def u16(payload: bytes, offset: int) -> int:
    return payload[offset] | payload[offset + 1] << 8


class HeartRateMeasurementDecoder:
    """0x2A37. Flags: bit0 HR is uint16 (else uint8); bits1-2 sensor contact
    (0b10: supported, not detected -> quality contact_lost; 0b11 detected);
    bit3 Energy Expended (uint16 kJ) present, skipped: not a vital sign;
    bit4 RR-Intervals present (uint16 each, 1/1024 s) -> rr_interval in ms.

    RR intervals are all in one notification; the last one ends at about
    receipt time, each earlier one ends where the next began, so
    ``ts_ms = received_ms - (sum of the later intervals)``. Each beat thus
    keeps its own time (the same time would collapse them into one point in
    InfluxDB). Reading index: 0 heart rate, 1.. the RR intervals in order.
    """

    fmt = "ble/2a37"

    def sensor_contact(self, payload: bytes) -> bool | None:
        """Flags bits 1-2: 0b11 detected, 0b10 not detected, else not supported."""
        contact = (payload[0] >> 1) & 0b11
        return None if contact < 0b10 else contact == 0b11

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        size = len(payload)
        if size < 2:
            raise short(self.fmt, 2, size)
        flags = payload[0]
        if flags & 0x01:
            if size < 3:
                raise short(self.fmt, 3, size)
            hr = payload[1] | payload[2] << 8
            offset = 3
        else:
            hr = payload[1]
            offset = 2
        quality = _CONTACT_LOST if (flags >> 1) & 0b11 == 0b10 else ()
        if flags & 0x08:
            offset += 2
            if size < offset:
                raise short(self.fmt, offset, size)
        rr_ms: list[float] = []
        if flags & 0x10:
            if size == offset:
                # docs/payloads.md: the flags announce a field the bytes do not carry.
                raise short(self.fmt, offset + 2, size)
            if (size - offset) % 2:
                raise DecodeError(_MALFORMED, f"{self.fmt}: RR intervals need 2 bytes each")
            rr_ms = [
                (payload[i] | payload[i + 1] << 8) * 1000 / 1024 for i in range(offset, size, 2)
            ]
        elif size > offset:
            raise trailing(self.fmt, offset, size)

        observations = [Observation(0, "heart_rate", hr, "/min", received_ms, quality)]
        later_ms = 0.0
        rr_obs: list[Observation] = []
        for index in range(len(rr_ms), 0, -1):
            value = rr_ms[index - 1]
            rr_obs.append(
                Observation(
                    index, "rr_interval", value, "ms", received_ms - round(later_ms), quality
                )
            )
            later_ms += value
        observations.extend(reversed(rr_obs))
        return observations, []


class TemperatureMeasurementDecoder:
    """0x2A1C. Flags: bit0 Fahrenheit (else Celsius); bit1 Time Stamp present
    (Date Time, 7 bytes: year uint16, month, day, hours, minutes, seconds;
    read as UTC); bit2 Temperature Type present (uint8, ignored). The value
    is a 32-bit IEEE 11073 FLOAT. A time stamp with year, month or day 0
    ("not known") falls back to the receipt time. Reading index: 0.
    """

    fmt = "ble/2a1c"

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        size = len(payload)
        if size < 5:
            raise short(self.fmt, 5, size)
        flags = payload[0]
        need = 5 + (7 if flags & 0x02 else 0) + (1 if flags & 0x04 else 0)
        if size < need:
            raise short(self.fmt, need, size)
        if size > need:
            raise trailing(self.fmt, need, size)
        value = decode_float(int.from_bytes(payload[1:5], "little"))
        ts_ms = received_ms
        if flags & 0x02:
            ts_ms = date_time_ms(payload[5:12], received_ms)
        if type(value) is str:
            return [], [special("body_temperature", value, 0)]
        unit = "[degF]" if flags & 0x01 else "Cel"
        return [Observation(0, "body_temperature", value, unit, ts_ms)], []


def date_time_ms(raw: bytes, received_ms: int, fmt: str = "ble/2a1c") -> int:
    """A 7-byte Date Time (year uint16, month, day, hours, minutes, seconds) read
    as UTC, in epoch ms; year, month or day 0 ("not known"): `received_ms`."""
    year = raw[0] | raw[1] << 8
    month, day, hours, minutes, seconds = raw[2], raw[3], raw[4], raw[5], raw[6]
    if year == 0 or month == 0 or day == 0:
        return received_ms  # "not known" per the Date Time characteristic
    if not (
        1582 <= year <= 9999
        and month <= 12
        and day <= calendar.monthrange(year, month)[1]
        and hours <= 23
        and minutes <= 59
        and seconds <= 59
    ):
        raise DecodeError(_MALFORMED, f"{fmt}: time stamp is not a valid date and time")
    return calendar.timegm((year, month, day, hours, minutes, seconds, 0, 0, 0)) * 1000


# PLX status bits -> quality flag (PLX Service 1.0.1; GATT Specification Supplement).
# contact_lost: not on the patient. low_perfusion: as named. questionable: the
# device doubts accuracy (weak, preliminary, calibrating). artifact: the value is
# likely not the patient's physiology (noise, malfunction, demo or test data).
_Q, _A = QualityFlag.QUESTIONABLE, QualityFlag.ARTIFACT
PLX_MEASUREMENT_STATUS: Final[dict[int, QualityFlag]] = {
    6: _Q,  # early estimated data
    10: _A,  # data for demonstration
    11: _A,  # data for testing
    12: _Q,  # calibration ongoing
    13: _A,  # measurement unavailable
    14: _Q,  # questionable measurement detected
    15: _A,  # invalid measurement detected
}
PLX_DEVICE_SENSOR_STATUS: Final[dict[int, QualityFlag]] = {
    1: _A,  # equipment malfunction detected
    2: _Q,  # signal processing irregularity detected
    3: _Q,  # inadequate signal detected
    4: _Q,  # poor signal detected
    5: QualityFlag.LOW_PERFUSION,  # low perfusion detected
    6: _A,  # erratic signal detected
    7: _A,  # non-pulsatile signal detected
    8: _Q,  # questionable pulse detected
    10: _A,  # sensor interference detected
    11: QualityFlag.CONTACT_LOST,  # sensor unconnected to user
    12: _Q,  # unknown sensor connected
    13: QualityFlag.CONTACT_LOST,  # sensor displaced
    14: _A,  # sensor malfunctioning
    15: QualityFlag.CONTACT_LOST,  # sensor disconnected
}
_FLAG_ORDER: Final = tuple(QualityFlag)


def plx_quality(measurement_status: int, device_sensor_status: int) -> tuple[QualityFlag, ...]:
    """Quality flags for PLX status fields, in QualityFlag order, no repeats."""
    if not (measurement_status or device_sensor_status):
        return ()
    found = {f for bit, f in PLX_MEASUREMENT_STATUS.items() if measurement_status >> bit & 1}
    found.update(
        f for bit, f in PLX_DEVICE_SENSOR_STATUS.items() if device_sensor_status >> bit & 1
    )
    return tuple(f for f in _FLAG_ORDER if f in found)


PLX_OFF_BODY_BITS: Final = 1 << 11 | 1 << 13 | 1 << 15


def plx_status(payload: bytes) -> tuple[int, int, int]:
    """(measurement status, device and sensor status, bytes the flags announce) of a
    0x2A5F value; a status the bytes are too short for reads as 0."""
    size = len(payload)
    flags = payload[0]
    offset = 5 + (4 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
    measurement_status = device_status = 0
    if flags & 0x04:
        if size >= offset + 2:
            measurement_status = payload[offset] | payload[offset + 1] << 8
        offset += 2
    if flags & 0x08:
        if size >= offset + 3:
            device_status = int.from_bytes(payload[offset : offset + 3], "little")
        offset += 3
    if flags & 0x10:
        offset += 2
    return measurement_status, device_status, offset


class PlxContinuousMeasurementDecoder:
    """0x2A5F. Flags, then SpO2PR-Normal (SpO2 %, pulse rate /min; SFLOATs),
    then per flag: bit0 SpO2PR-Fast (4 bytes), bit1 SpO2PR-Slow (4 bytes),
    bit2 Measurement Status (uint16), bit3 Device and Sensor Status (uint24),
    bit4 Pulse Amplitude Index (SFLOAT, %). SpO2PR-Normal and the pulse amplitude
    index become readings (Fast and Slow are other averages of the same signal);
    the status fields become quality flags on all of them. Reading index: 0 spo2,
    1 heart rate, 2 pulse amplitude index.
    """

    fmt = "ble/2a5f"

    def sensor_contact(self, payload: bytes) -> bool | None:
        """Device and Sensor Status bits 11 (unconnected to user), 13 (displaced),
        15 (disconnected): off the body; the field without them: on it."""
        if not payload[0] & 0x08:
            return None
        return not plx_status(payload)[1] & PLX_OFF_BODY_BITS

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        size = len(payload)
        if size < 5:
            raise short(self.fmt, 5, size)
        measurement_status, device_status, offset = plx_status(payload)
        if size < offset:
            raise short(self.fmt, offset, size)
        if size > offset:
            raise trailing(self.fmt, offset, size)

        fields = [(0, "spo2", "%", u16(payload, 1)), (1, "heart_rate", "/min", u16(payload, 3))]
        if payload[0] & 0x10:
            fields.append((2, "pulse_amplitude_index", "%", u16(payload, offset - 2)))
        quality = plx_quality(measurement_status, device_status)
        return sfloat_readings(fields, received_ms, quality)
