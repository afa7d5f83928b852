"""Encoders for every wire format the gateway accepts, and status messages.

Each is the inverse of its decoder in `devices.decoders` (unit tests check
the round trip through `devices.decoding.decode_payload`):

- ``json``: the native format (one message, many readings, each with ts)
- ``senml``: RFC 8428 pack with a base name, base time and relative times
- ``ble/2a37``: Heart Rate Measurement (uint8 HR, contact bits, RR intervals)
- ``ble/2a5f``: PLX Continuous Measurement (SFLOAT SpO2 and pulse rate,
  device and sensor status bits for quality)
- ``ble/2a1c``: Temperature Measurement (FLOAT Celsius with a UTC time stamp)
- ``ble/2a35``, ``ble/2a5e``, ``ble/2a9d``, ``ble/2a18``: Blood Pressure,
  PLX Spot-Check, Weight and Glucose Measurement (home devices' spot values)
- status: ``devices/{device}/status`` JSON; `WILL_PAYLOAD` the Last Will
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Final, NamedTuple

from analytics.metrics import METRICS, QualityFlag
from devices.decoders.ieee11073 import encode_float, encode_sfloat


class SimReading(NamedTuple):
    metric: str  # canonical name
    value: float  # in the metric's canonical unit
    ts_ms: int  # device time
    quality: tuple[str, ...] = ()  # QualityFlag values


WILL_PAYLOAD: Final = b'{"online":false}'
_SEP: Final = (",", ":")
_CODED: Final = frozenset(n for n, m in METRICS.items() if m.ucum in ("{score}", "{bool}"))
# SenML units (RFC 8428 registry, RFC 8798 secondary units): note "%" in
# SenML is a ratio, so SpO2 goes as "/" (0.97).
SENML_UNITS: Final[dict[str, str]] = {
    "heart_rate": "beat/min", "respiratory_rate": "1/min", "spo2": "/",
    "body_temperature": "Cel", "systolic_bp": "mmHg", "diastolic_bp": "mmHg",
    "mean_bp": "mmHg", "rr_interval": "ms",
}
_SENML_SCALE: Final[dict[str, float]] = {"spo2": 0.01}


def _number(metric: str, value: float) -> float | int:
    return int(value) if metric in _CODED or float(value).is_integer() else value


def encode_json(readings: Sequence[SimReading]) -> bytes:
    """Native json; the message ts is the newest reading's."""
    items = []
    for r in readings:
        item: dict[str, object] = {"metric": r.metric, "value": _number(r.metric, r.value),
                                   "unit": METRICS[r.metric].ucum, "ts": r.ts_ms}
        if r.quality:
            item["quality"] = list(r.quality)
        items.append(item)
    doc = {"v": 1, "ts": max(r.ts_ms for r in readings), "readings": items}
    return json.dumps(doc, separators=_SEP).encode()


def encode_senml(readings: Sequence[SimReading], device_id: str) -> bytes:
    """A SenML pack: bn names the device, bt is the first reading's time (s),
    t is relative. SenML has no quality field: flagged readings are left out,
    as a SenML device would not report what it knows to be wrong."""
    kept = [r for r in readings if not r.quality]
    if not kept:
        raise ValueError("nothing to encode: SenML carries no flagged readings")
    base_ms = kept[0].ts_ms
    pack: list[dict[str, object]] = []
    for r in kept:
        rec: dict[str, object] = {"n": r.metric}
        if r.metric in _CODED:
            rec["v"] = int(r.value)
        else:
            rec["u"] = SENML_UNITS[r.metric]
            scale = _SENML_SCALE.get(r.metric)
            rec["v"] = round(r.value * scale, 6) if scale else _number(r.metric, r.value)
        if r.ts_ms != base_ms:
            rec["t"] = (r.ts_ms - base_ms) / 1000
        pack.append(rec)
    pack[0] = {"bn": f"urn:dev:sim:{device_id}:", "bt": base_ms / 1000, **pack[0]}
    return json.dumps(pack, separators=_SEP).encode()


def encode_2a37(heart_rate: float, rr_interval_ms: Sequence[float] = (),
                contact: bool = True) -> bytes:
    """Heart Rate Measurement: uint8 HR (uint16 above 255), contact supported
    (detected or not), RR intervals in 1/1024 s."""
    hr = round(heart_rate)
    flags = 0x04 | (0x02 if contact else 0x00)
    body = bytearray()
    if hr > 255:
        flags |= 0x01
        body += hr.to_bytes(2, "little")
    else:
        body.append(hr)
    if rr_interval_ms:
        flags |= 0x10
        for rr in rr_interval_ms:
            body += min(round(rr * 1.024), 0xFFFF).to_bytes(2, "little")
    return bytes([flags]) + bytes(body)


# Quality flag -> PLX Device and Sensor Status bit (the decoder's mapping, inverted).
_PLX_BITS: Final[dict[str, int]] = {
    QualityFlag.QUESTIONABLE.value: 4,  # poor signal detected
    QualityFlag.LOW_PERFUSION.value: 5,
    QualityFlag.ARTIFACT.value: 6,  # erratic signal detected
    QualityFlag.CONTACT_LOST.value: 13,  # sensor displaced
}


def _sfloat(value: float) -> bytes:
    if float(value).is_integer():
        raw = encode_sfloat(int(value), 0)
    else:
        raw = encode_sfloat(round(value * 10), -1)
    return raw.to_bytes(2, "little")


def encode_2a5f(spo2: float, pulse_rate: float, quality: Sequence[str] = ()) -> bytes:
    """PLX Continuous Measurement: SpO2PR-Normal, plus Device and Sensor
    Status when a quality flag is set."""
    status = 0
    for flag in quality:
        status |= 1 << _PLX_BITS[flag]
    flags = 0x08 if status else 0x00
    out = bytes([flags]) + _sfloat(spo2) + _sfloat(pulse_rate)
    if status:
        out += status.to_bytes(3, "little")
    return out


def encode_2a1c(temp_c: float, ts_ms: int) -> bytes:
    """Temperature Measurement in Celsius (FLOAT, 0.1 resolution) with a
    UTC time stamp (whole seconds)."""
    value = encode_float(round(temp_c * 10), -1).to_bytes(4, "little")
    return bytes([0x02]) + value + _date_time(ts_ms)


def _date_time(ts_ms: int) -> bytes:
    t = time.gmtime(ts_ms // 1000)
    return t.tm_year.to_bytes(2, "little") + bytes(
        [t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec])


def encode_2a35(systolic: float, diastolic: float, mean: float, *, pulse_rate: float | None = None,
                ts_ms: int | None = None, user_id: int | None = None, kpa: bool = False) -> bytes:
    """Blood Pressure Measurement: pressures in mmHg (or kPa, 0.1 resolution), with
    the optional time stamp, pulse rate and user id."""
    flags = 0x01 if kpa else 0x00
    body = b"".join(_sfloat(v / 7.50062 if kpa else v) for v in (systolic, diastolic, mean))
    if ts_ms is not None:
        flags |= 0x02
        body += _date_time(ts_ms)
    if pulse_rate is not None:
        flags |= 0x04
        body += _sfloat(pulse_rate)
    if user_id is not None:
        flags |= 0x08
        body += bytes([user_id])
    return bytes([flags]) + body


def encode_2a5e(spo2: float, pulse_rate: float, *, ts_ms: int | None = None,
                pulse_amplitude_index: float | None = None) -> bytes:
    """PLX Spot-Check Measurement with the optional time stamp and pulse amplitude index."""
    flags = 0
    body = _sfloat(spo2) + _sfloat(pulse_rate)
    if ts_ms is not None:
        flags |= 0x01
        body += _date_time(ts_ms)
    if pulse_amplitude_index is not None:
        flags |= 0x08
        body += _sfloat(pulse_amplitude_index)
    return bytes([flags]) + body


def encode_2a9d(weight_kg: float, *, ts_ms: int | None = None, user_id: int | None = None,
                bmi: float | None = None, height_cm: float | None = None) -> bytes:
    """Weight Measurement in SI units (0.005 kg, BMI 0.1, height 0.001 m); BMI and
    height go together, as the characteristic has one flag for both."""
    flags = 0
    body = round(weight_kg / 0.005).to_bytes(2, "little")
    if ts_ms is not None:
        flags |= 0x02
        body += _date_time(ts_ms)
    if user_id is not None:
        flags |= 0x04
        body += bytes([user_id])
    if bmi is not None and height_cm is not None:
        flags |= 0x08
        body += round(bmi * 10).to_bytes(2, "little") + round(height_cm * 10).to_bytes(2, "little")
    return bytes([flags]) + body


def encode_2a18(glucose_mg_dl: float, ts_ms: int, sequence: int = 0) -> bytes:
    """Glucose Measurement: kg/L (SFLOAT, 1 mg/dL resolution), capillary whole blood
    from a finger, no time offset."""
    concentration = encode_sfloat(round(glucose_mg_dl), -5).to_bytes(2, "little")  # mg/dL = 1e-5 kg/L
    return (bytes([0x02]) + (sequence & 0xFFFF).to_bytes(2, "little") + _date_time(ts_ms)
            + concentration + bytes([0x11]))


def encode_status(ts_ms: int, *, battery_pct: float | None = None, on_body: bool | None = None,
                  online: bool = True, firmware: str | None = "sim-1.0") -> bytes:
    doc: dict[str, object] = {"online": online}
    if battery_pct is not None:
        doc["battery_pct"] = round(battery_pct, 1)
    if on_body is not None:
        doc["on_body"] = on_body
    if firmware is not None:
        doc["firmware"] = firmware
    doc["ts"] = ts_ms
    return json.dumps(doc, separators=_SEP).encode()
