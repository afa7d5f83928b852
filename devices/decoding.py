"""The single entry point of device ingestion: bytes in, canonical readings
and rejections out.

    result = decode_payload("json", payload, device_id="wr-0042", received_ms=now_ms)
    result.readings     # list[devices.records.Reading], canonical metric/unit/LOINC
    result.rejections   # list[Rejection]: reason code, detail, reading_index

`decode_payload` never raises, whatever the bytes: a bad message gives one
rejection (reading_index None) and no readings; a bad reading in a good
message gives one rejection with its index while the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from devices.decoders import DECODERS, Observation, Rejection
from devices.decoders.base import ContactReporting, Decoder
from devices.errors import DecodeError
from devices.normalize import coerce_value, convert, resolve_metric, unit_conversion
from devices.records import Reading, RejectReason
from devices.validation import ValidationLimits, check_size, check_time, check_value

logger = logging.getLogger(__name__)

FORMATS: Final[tuple[str, ...]] = (
    "json", "senml", "ble/2a37", "ble/2a1c", "ble/2a5f", "ble/2a35", "ble/2a5e", "ble/2a9d",
    "ble/2a18",
)
DEFAULT_LIMITS: Final = ValidationLimits()

# Each format's decoder and, for a format whose messages say whether the
# sensor touches the patient, its `sensor_contact`. Decided once here, not
# per message: `isinstance` against the runtime-checkable ContactReporting
# walks the protocol's members every call (10.5 µs for the 2A37 decoder,
# 16-20 µs for the json one, which fails it, measured at load 7-9; the whole
# ingest-to-record path is about 65 µs there, benchmarks.gateway.path).
_ContactOf = Callable[[bytes], "bool | None"]
_DISPATCH: Final[MappingProxyType[str, tuple[Decoder, _ContactOf | None]]] = MappingProxyType({
    fmt: (decoder, decoder.sensor_contact if isinstance(decoder, ContactReporting) else None)
    for fmt, decoder in DECODERS.items()
})

__all__ = [
    "DEFAULT_LIMITS",
    "FORMATS",
    "DecodeResult",
    "Rejection",
    "ValidationLimits",
    "decode_payload",
]


@dataclass(frozen=True, slots=True)
class DecodeResult:
    readings: list[Reading]  # canonical metric/unit/loinc, ts_ms int
    rejections: list[Rejection]
    # Sensor on the patient (True), off (False), not said (None): kept even when
    # every reading is rejected, e.g. a strap off the chest sending heart rate 0.
    sensor_contact: bool | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return not self.rejections


def decode_payload(
    fmt: str,
    payload: bytes,
    *,
    device_id: str,
    received_ms: int,
    limits: ValidationLimits = DEFAULT_LIMITS,
) -> DecodeResult:
    """Decode, normalize and validate one device message. Never raises."""
    try:
        size_error = check_size(len(payload), limits)
        if size_error is not None:
            return _whole(*size_error)
        entry = _DISPATCH.get(fmt) if type(fmt) is str else None
        if entry is None:
            return _whole(
                RejectReason.UNKNOWN_FORMAT,
                f"unknown payload format {_show(fmt)}; known: {', '.join(FORMATS)}",
            )
        decoder, contact_of = entry
        observations, rejections = decoder.decode(bytes(payload), received_ms)
        readings = _normalize(observations, rejections, received_ms, limits)
        contact = contact_of(payload) if contact_of is not None else None
    except DecodeError as exc:
        return _whole(exc.reason, exc.detail)
    except Exception as exc:  # the contract: never raise for any input
        # No traceback text: exception messages may quote the payload.
        frame = exc.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
        logger.error(
            "decoder bug device=%s format=%s error=%s at=%s",
            device_id,
            _show(fmt),
            type(exc).__name__,
            where,
        )
        # INTERNAL, not MALFORMED: the bytes may be fine; dead-lettered for replay after a fix.
        return _whole(
            RejectReason.INTERNAL, f"decoder failed ({type(exc).__name__}); kept for replay"
        )
    if len(rejections) > 1:
        rejections.sort(key=_by_index)
    return DecodeResult(readings, rejections, contact)


def _normalize(
    observations: list[Observation],
    rejections: list[Rejection],
    received_ms: int,
    limits: ValidationLimits,
) -> list[Reading]:
    readings: list[Reading] = []
    for index, metric, raw_value, unit, ts_ms, quality, user in observations:
        spec = resolve_metric(metric)
        if spec is None:
            rejections.append(
                Rejection(RejectReason.UNKNOWN_METRIC, f"unknown metric {_show(metric)}", index)
            )
            continue
        conv = unit_conversion(spec.ucum, unit) if unit or not spec.unit_required else None
        if conv is None:
            rejections.append(
                Rejection(
                    RejectReason.UNKNOWN_UNIT,
                    f"unknown unit {_show(unit)} for {spec.name} (canonical: {spec.ucum})"
                    if unit else f"{spec.name} needs a unit (e.g. {spec.ucum})",
                    index,
                )
            )
            continue
        value = coerce_value(spec, raw_value)
        if type(value) is str:
            rejections.append(Rejection(RejectReason.MALFORMED, value, index))
            continue
        value = convert(value, conv)  # type: ignore[arg-type]
        error = check_value(spec.name, value, limits) or check_time(ts_ms, received_ms, limits)
        if error is not None:
            rejections.append(Rejection(error[0], error[1], index))
            continue
        # Validated construction: measured faster than model_construct here
        # (pydantic-core), and it keeps the wire record honest.
        readings.append(
            Reading(
                metric=spec.name,
                loinc=spec.loinc,
                unit=spec.ucum,
                value=value,
                ts_ms=ts_ms,
                quality=list(quality),
                user_id=user,
            )
        )
    return readings


def _whole(reason: RejectReason, detail: str) -> DecodeResult:
    return DecodeResult([], [Rejection(reason, detail)])


def _by_index(rejection: Rejection) -> int:
    return -1 if rejection.reading_index is None else rejection.reading_index


def _show(text: object, limit: int = 40) -> str:
    """A device-supplied name, quoted and cut short for a rejection detail."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
