"""Bluetooth home measurements beside the vital signs: a scale and a glucose meter.

- ``ble/2a9d`` Weight Measurement (Weight Scale Service)
- ``ble/2a18`` Glucose Measurement (Glucose Service)

Same conventions as devices.decoders.ble (little endian, flags announce the
fields, time stamps read as UTC). docs/payloads.md has byte-level examples.
"""

from __future__ import annotations

from typing import Final

from analytics.metrics import QualityFlag
from devices.decoders.base import Observation, Rejection
from devices.decoders.ble import date_time_ms, sfloat_readings, short, trailing, u16
from devices.decoders.ble_spot import user_id
from devices.errors import DecodeError
from devices.records import RejectReason

WEIGHT_UNSUCCESSFUL: Final = 0xFFFF  # Weight field: "Measurement Unsuccessful"


class WeightMeasurementDecoder:
    """0x2A9D. Flags: bit0 Imperial (lb and inch; else SI, kg and m); bit1 Time
    Stamp (7 bytes); bit2 User ID (uint8, 0xFF unknown user); bit3 BMI and
    Height (uint16 each). Weight is uint16 with resolution 0.005 kg (SI) or
    0.01 lb (Imperial); BMI 0.1 kg/m2; height 0.001 m (SI) or 0.1 in
    (Imperial). Weight 0xFFFF is "measurement unsuccessful" (rejected
    not_finite). Reading index: 0 weight, 1 BMI, 2 height.
    """

    fmt = "ble/2a9d"

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        size = len(payload)
        if size < 3:
            raise short(self.fmt, 3, size)
        flags = payload[0]
        need = 3 + (7 if flags & 0x02 else 0) + (1 if flags & 0x04 else 0) + (
            4 if flags & 0x08 else 0)
        if size < need:
            raise short(self.fmt, need, size)
        if size > need:
            raise trailing(self.fmt, need, size)
        imperial = bool(flags & 0x01)
        offset = 3
        ts_ms = received_ms
        if flags & 0x02:
            ts_ms = date_time_ms(payload[3:10], received_ms, self.fmt)
            offset = 10
        user = None
        if flags & 0x04:
            user = user_id(payload[offset])
            offset += 1
        observations: list[Observation] = []
        rejections: list[Rejection] = []
        raw_weight = u16(payload, 1)
        if raw_weight == WEIGHT_UNSUCCESSFUL:
            rejections.append(Rejection(
                RejectReason.NOT_FINITE, "body_weight: the scale reports measurement unsuccessful",
                0))
        else:
            # Integer arithmetic first: 14000 * 5 / 1000 is exactly 70.0.
            weight, unit = (raw_weight / 100, "[lb_av]") if imperial else (
                raw_weight * 5 / 1000, "kg")
            observations.append(Observation(0, "body_weight", weight, unit, ts_ms, (), user))
        if flags & 0x08:
            bmi = u16(payload, offset) / 10
            raw_height = u16(payload, offset + 2)
            height, height_unit = (raw_height / 10, "[in_i]") if imperial else (
                raw_height / 1000, "m")
            observations.append(Observation(1, "bmi", bmi, "kg/m2", ts_ms, (), user))
            observations.append(Observation(2, "body_height", height, height_unit, ts_ms, (), user))
        return observations, rejections


# Sensor Status Annunciation bits -> quality flag. artifact: the strip or the
# sensor failed, so the number is not the patient's glucose; questionable: a
# result the meter doubts (small sample, out of its temperature or measuring
# range: "HI"/"LO" results clipped to the range), or a wrong clock.
_Q, _A = QualityFlag.QUESTIONABLE, QualityFlag.ARTIFACT
GLUCOSE_SENSOR_STATUS: Final[dict[int, QualityFlag]] = {
    1: _A,  # sensor malfunction or faulting
    2: _Q,  # sample size insufficient
    3: _A,  # strip insertion error
    4: _A,  # strip type incorrect for device
    5: _Q,  # result higher than the device can process
    6: _Q,  # result lower than the device can process
    7: _Q,  # sensor temperature too high
    8: _Q,  # sensor temperature too low
    9: _A,  # read interrupted: strip pulled too soon
    10: _A,  # general device fault
    11: _Q,  # time fault: the time may be inaccurate
}  # bit 0 (device battery low) says nothing about the result
GLUCOSE_CONTROL_SOLUTION_TYPE: Final = 10  # Type nibble: control solution, not the patient
GLUCOSE_CONTROL_SOLUTION_LOCATION: Final = 4  # Sample Location nibble: control solution
_FLAG_ORDER: Final = tuple(QualityFlag)


def glucose_quality(type_location: int | None, status: int) -> tuple[QualityFlag, ...]:
    """Quality flags of a glucose record: sensor status annunciation, and a control
    solution (a meter check, not a patient sample) flagged artifact."""
    found = {flag for bit, flag in GLUCOSE_SENSOR_STATUS.items() if status >> bit & 1}
    if type_location is not None and (
        type_location & 0x0F == GLUCOSE_CONTROL_SOLUTION_TYPE
        or type_location >> 4 == GLUCOSE_CONTROL_SOLUTION_LOCATION
    ):
        found.add(_A)
    return tuple(f for f in _FLAG_ORDER if f in found)


class GlucoseMeasurementDecoder:
    """0x2A18. Flags: bit0 Time Offset (sint16 minutes) present; bit1 Glucose
    Concentration (SFLOAT) and Type-Sample Location (uint8: type in the low
    nibble, location in the high nibble) present; bit2 concentration in mol/L
    (else kg/L); bit3 Sensor Status Annunciation (uint16) present; bit4
    context information follows (0x2A34, not read). Then Sequence Number
    (uint16) and Base Time (7 bytes), always. Event time = base time + time
    offset. kg/L and mol/L are normalized to mg/dL. A record without a
    concentration carries no reading and is rejected (malformed), so it is
    dead-lettered rather than lost. Reading index: 0.
    """

    fmt = "ble/2a18"

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        size = len(payload)
        if size < 10:
            raise short(self.fmt, 10, size)
        flags = payload[0]
        need = 10 + (2 if flags & 0x01 else 0) + (3 if flags & 0x02 else 0) + (
            2 if flags & 0x08 else 0)
        if size < need:
            raise short(self.fmt, need, size)
        if size > need:
            raise trailing(self.fmt, need, size)
        ts_ms = date_time_ms(payload[3:10], received_ms, self.fmt)
        offset = 10
        if flags & 0x01:
            ts_ms += int.from_bytes(payload[10:12], "little", signed=True) * 60_000
            offset = 12
        if not flags & 0x02:
            raise DecodeError(
                RejectReason.MALFORMED,
                f"{self.fmt}: record carries no glucose concentration (flags bit1 clear)",
            )
        raw = u16(payload, offset)
        type_location = payload[offset + 2]
        status = u16(payload, offset + 3) if flags & 0x08 else 0
        unit = "mol/L" if flags & 0x04 else "kg/L"
        return sfloat_readings(
            [(0, "blood_glucose", unit, raw)], ts_ms, glucose_quality(type_location, status))
