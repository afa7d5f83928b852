"""Device status messages and the MQTT Last Will, on `devices/{device_id}/status`.

    {"online": true, "battery_pct": 81, "on_body": true, "firmware": "2.4.1", "ts": 1700000000000}
    {"online": false}          <- a typical Last Will, published by the broker
    offline                    <- plain-text Last Wills are accepted too

Every field is optional. A status message from the device itself means it
is online unless it says otherwise; `ts` (epoch ms) defaults to the receipt
time. Same contract as `devices.decoding.decode_payload`: never raises, a
bad message gives a rejection (reading_index None) and no status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from devices.decoders.base import Rejection
from devices.decoders.native import load_json, parse_ts_ms
from devices.errors import DecodeError
from devices.records import RejectReason
from devices.validation import ValidationLimits, check_size, check_time

_DEFAULT_LIMITS: Final = ValidationLimits()
_PLAIN: Final[dict[bytes, bool]] = {b"online": True, b"offline": False}
_MALFORMED: Final = RejectReason.MALFORMED


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    device: str
    ts_ms: int
    online: bool
    battery_pct: float | None = None  # 0-100
    on_body: bool | None = None  # None: the device does not say
    firmware: str | None = None


@dataclass(frozen=True, slots=True)
class StatusResult:
    status: DeviceStatus | None
    rejections: list[Rejection]


def parse_status(
    payload: bytes,
    *,
    device_id: str,
    received_ms: int,
    limits: ValidationLimits = _DEFAULT_LIMITS,
) -> StatusResult:
    """Parse a status message or Last Will. Never raises."""
    try:
        size_error = check_size(len(payload), limits)
        if size_error is not None:
            return _rejected(*size_error)
        return StatusResult(_parse(bytes(payload), device_id, received_ms, limits), [])
    except DecodeError as exc:
        return _rejected(exc.reason, exc.detail)
    except Exception as exc:  # the contract: never raise for any input
        return _rejected(RejectReason.INTERNAL, f"status parser failed ({type(exc).__name__})")


def _parse(
    payload: bytes, device_id: str, received_ms: int, limits: ValidationLimits
) -> DeviceStatus:
    plain = _PLAIN.get(payload.strip().lower())
    if plain is not None:
        return DeviceStatus(device_id, received_ms, plain)
    if not payload.strip():
        raise DecodeError(_MALFORMED, "empty status (a cleared retained message?)")
    doc = load_json(payload)
    if type(doc) is not dict:
        raise DecodeError(_MALFORMED, "status must be a JSON object")

    online = doc.get("online", True)
    if type(online) is not bool:
        raise DecodeError(_MALFORMED, '"online" must be true or false')
    on_body = doc.get("on_body")
    if on_body is not None and type(on_body) is not bool:
        raise DecodeError(_MALFORMED, '"on_body" must be true or false')
    firmware = doc.get("firmware")
    if firmware is not None and (type(firmware) is not str or len(firmware) > 64):
        raise DecodeError(_MALFORMED, '"firmware" must be a string of at most 64 characters')
    battery = doc.get("battery_pct")
    if battery is not None:
        if type(battery) not in (int, float):
            raise DecodeError(_MALFORMED, '"battery_pct" must be a number')
        try:
            battery = float(battery)
        except OverflowError:
            battery = math.inf
        if not (math.isfinite(battery) and 0 <= battery <= 100):
            raise DecodeError(RejectReason.OUT_OF_RANGE, '"battery_pct" must be within 0-100')
    ts_ms = received_ms
    if "ts" in doc:
        parsed = parse_ts_ms(doc["ts"])
        if parsed is None:
            raise DecodeError(_MALFORMED, '"ts" must be epoch milliseconds (a number)')
        ts_ms = parsed
        time_error = check_time(ts_ms, received_ms, limits)
        if time_error is not None:
            raise DecodeError(*time_error)
    return DeviceStatus(device_id, ts_ms, online, battery, on_body, firmware)


def _rejected(reason: RejectReason, detail: str) -> StatusResult:
    return StatusResult(None, [Rejection(reason, detail)])
