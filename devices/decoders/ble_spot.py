"""Bluetooth spot measurements of vital signs: a cuff and a spot-check oximeter.

- ``ble/2a35`` Blood Pressure Measurement (Blood Pressure Service)
- ``ble/2a5e`` PLX Spot-Check Measurement (Pulse Oximeter Service)

Layouts follow the Bluetooth GATT Specification Supplement; integers little
endian, numbers IEEE 11073 SFLOAT. As for the other characteristics
(devices.decoders.ble), bytes missing for what the flags announce or bytes
after the last announced field reject the message (malformed), a special
SFLOAT (NaN, NRes, +-INF, reserved) rejects that reading only (not_finite),
and a time stamp is read as UTC. docs/payloads.md has byte-level examples.
"""

from __future__ import annotations

from typing import Final

from analytics.metrics import QualityFlag
from devices.decoders.base import Observation, Rejection
from devices.decoders.ble import (
    PLX_OFF_BODY_BITS,
    date_time_ms,
    plx_quality,
    sfloat_readings,
    short,
    trailing,
    u16,
)

UNKNOWN_USER: Final = 0xFF  # User ID "unknown user" (User Data Service)

# Blood Pressure Measurement Status bits -> quality flag. Any of them makes the
# oscillometric reading less trustworthy; body movement is the classic motion
# artefact. Bits 3-4 are the Pulse Rate Range Detection field (0 within range,
# 1 above the upper limit, 2 below the lower limit, 3 reserved).
_Q, _A = QualityFlag.QUESTIONABLE, QualityFlag.ARTIFACT
BP_MEASUREMENT_STATUS: Final[dict[int, QualityFlag]] = {
    0: _A,  # body movement during measurement
    1: _Q,  # cuff fit too loose
    2: _Q,  # irregular pulse detected
    5: _Q,  # improper measurement position
}
_FLAG_ORDER: Final = tuple(QualityFlag)


def bp_quality(status: int) -> tuple[QualityFlag, ...]:
    """Quality flags of a Blood Pressure Measurement Status, in QualityFlag order."""
    found = {flag for bit, flag in BP_MEASUREMENT_STATUS.items() if status >> bit & 1}
    if (status >> 3) & 0b11 in (1, 2):  # pulse rate outside the range the cuff measures in
        found.add(_Q)
    return tuple(f for f in _FLAG_ORDER if f in found)


def user_id(raw: int) -> int | None:
    return None if raw == UNKNOWN_USER else raw


class BloodPressureMeasurementDecoder:
    """0x2A35. Flags: bit0 units kPa (else mmHg); bit1 Time Stamp (7 bytes);
    bit2 Pulse Rate (SFLOAT, /min); bit3 User ID (uint8, 0xFF unknown user);
    bit4 Measurement Status (uint16). Systolic, diastolic and mean arterial
    pressure (SFLOAT each) are always present; the units bit applies to all
    three (kPa converted to mm[Hg] by normalization). The status bits become
    quality flags on every reading of the message. Reading index: 0 systolic,
    1 diastolic, 2 mean arterial pressure, 3 pulse rate.
    """

    fmt = "ble/2a35"

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        size = len(payload)
        if size < 7:
            raise short(self.fmt, 7, size)
        flags = payload[0]
        need = (7 + (7 if flags & 0x02 else 0) + (2 if flags & 0x04 else 0)
                + (1 if flags & 0x08 else 0) + (2 if flags & 0x10 else 0))
        if size < need:
            raise short(self.fmt, need, size)
        if size > need:
            raise trailing(self.fmt, need, size)
        unit = "kPa" if flags & 0x01 else "mm[Hg]"
        fields = [
            (0, "systolic_bp", unit, u16(payload, 1)),
            (1, "diastolic_bp", unit, u16(payload, 3)),
            (2, "mean_bp", unit, u16(payload, 5)),
        ]
        offset = 7
        ts_ms = received_ms
        if flags & 0x02:
            ts_ms = date_time_ms(payload[7:14], received_ms, self.fmt)
            offset = 14
        if flags & 0x04:
            fields.append((3, "heart_rate", "/min", u16(payload, offset)))
            offset += 2
        user = None
        if flags & 0x08:
            user = user_id(payload[offset])
            offset += 1
        quality = bp_quality(u16(payload, offset)) if flags & 0x10 else ()
        observations, rejections = sfloat_readings(fields, ts_ms, quality)
        return [o._replace(user_id=user) for o in observations], rejections


class PlxSpotCheckMeasurementDecoder:
    """0x2A5E. Flags, then SpO2PR-Spot-Check (SpO2 %, pulse rate /min; SFLOATs),
    then per flag: bit0 Timestamp (7 bytes), bit1 Measurement Status (uint16),
    bit2 Device and Sensor Status (uint24), bit3 Pulse Amplitude Index (SFLOAT,
    %); bit4 "device clock is not set": the time stamp is then ignored and the
    receipt time used. The status fields become quality flags as for 0x2A5F.
    Reading index: 0 spo2, 1 heart rate, 2 pulse amplitude index.
    """

    fmt = "ble/2a5e"

    def sensor_contact(self, payload: bytes) -> bool | None:
        """Device and Sensor Status bits 11, 13, 15 as for 0x2A5F."""
        if not payload[0] & 0x04:
            return None
        return not self._status(payload)[1] & PLX_OFF_BODY_BITS

    def _status(self, payload: bytes) -> tuple[int, int, int]:
        """(measurement status, device and sensor status, announced size)."""
        flags = payload[0]
        offset = 5 + (7 if flags & 0x01 else 0)
        measurement = device = 0
        if flags & 0x02:
            measurement = u16(payload, offset) if len(payload) >= offset + 2 else 0
            offset += 2
        if flags & 0x04:
            if len(payload) >= offset + 3:
                device = int.from_bytes(payload[offset : offset + 3], "little")
            offset += 3
        if flags & 0x08:
            offset += 2
        return measurement, device, offset

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        size = len(payload)
        if size < 5:
            raise short(self.fmt, 5, size)
        flags = payload[0]
        measurement, device, need = self._status(payload)
        if size < need:
            raise short(self.fmt, need, size)
        if size > need:
            raise trailing(self.fmt, need, size)
        ts_ms = received_ms
        if flags & 0x01:
            stamp_ms = date_time_ms(payload[5:12], received_ms, self.fmt)
            if not flags & 0x10:  # a clock never set says 2000-01-01 or so: not the event time
                ts_ms = stamp_ms
        fields = [(0, "spo2", "%", u16(payload, 1)), (1, "heart_rate", "/min", u16(payload, 3))]
        if flags & 0x08:
            fields.append((2, "pulse_amplitude_index", "%", u16(payload, need - 2)))
        return sfloat_readings(fields, ts_ms, plx_quality(measurement, device))
