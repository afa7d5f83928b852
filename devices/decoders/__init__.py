"""Payload decoders, one per format of the topic `devices/{device_id}/vitals/{format}`.

Use `devices.decoding.decode_payload`, which adds normalization, validation
and the never-raise contract; `DECODERS` is the registry it dispatches on.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from devices.decoders.base import Decoder, Observation, Rejection
from devices.decoders.ble import (
    HeartRateMeasurementDecoder,
    PlxContinuousMeasurementDecoder,
    TemperatureMeasurementDecoder,
)
from devices.decoders.ble_metabolic import GlucoseMeasurementDecoder, WeightMeasurementDecoder
from devices.decoders.ble_spot import (
    BloodPressureMeasurementDecoder,
    PlxSpotCheckMeasurementDecoder,
)
from devices.decoders.native import JsonDecoder
from devices.decoders.senml import SenmlDecoder

DECODERS: Final[MappingProxyType[str, Decoder]] = MappingProxyType(
    {
        d.fmt: d
        for d in (
            JsonDecoder(),
            SenmlDecoder(),
            HeartRateMeasurementDecoder(),
            TemperatureMeasurementDecoder(),
            PlxContinuousMeasurementDecoder(),
            BloodPressureMeasurementDecoder(),
            PlxSpotCheckMeasurementDecoder(),
            WeightMeasurementDecoder(),
            GlucoseMeasurementDecoder(),
        )
    }
)

__all__ = [
    "DECODERS",
    "BloodPressureMeasurementDecoder",
    "GlucoseMeasurementDecoder",
    "PlxSpotCheckMeasurementDecoder",
    "WeightMeasurementDecoder",
    "Decoder",
    "HeartRateMeasurementDecoder",
    "JsonDecoder",
    "Observation",
    "PlxContinuousMeasurementDecoder",
    "Rejection",
    "SenmlDecoder",
    "TemperatureMeasurementDecoder",
]
