"""From signals to device messages: what each device sends, and when.

`generate_messages(config)` yields every `SimMessage` of the run in the
order the devices send them (`publish_ms`, scenario time), without any
I/O. The MQTT publisher paces them against the wall clock; benchmarks can
feed them anywhere (`iter_payloads`).

Cadences (scenario time): wearables sample at 1 Hz (temperature every
minute) and send one message per `config.window_s` seconds of samples;
bedside monitors send ECG heart rate every 5 s and NIBP every 5, 10 or 15
min in the same windows; BLE straps and oximeters notify every
`config.ble_interval_s`; BLE thermometers every 4 min; nurses chart every
`nurse_interval_s` (about); worn devices send status every
`status_interval_s` and when taken off or put back on.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from analytics.metrics import QualityFlag
from devices.simulator import encoders as enc
from devices.simulator import scenarios as sc
from devices.simulator.config import SimulationConfig
from devices.simulator.encoders import SimReading
from devices.simulator.fleet import SimDevice, SimPatient, build_patients
from devices.simulator.rng import Stream, rng_for
from devices.simulator.signals import BLOCK_S, VitalsBlock, simulate_block

ECG_EVERY_S: Final = 5
THERMOMETER_EVERY_S: Final = 240
TEMPERATURE_EVERY_S: Final = 60
AMBIENT_SKIN_C: Final = 28.0
_ART: Final = (QualityFlag.ARTIFACT.value,)
_LOW: Final = (QualityFlag.LOW_PERFUSION.value,)
_LOST: Final = (QualityFlag.CONTACT_LOST.value,)
_STABLE: Final = sc.ScenarioPlan("stable", None)


@dataclass(frozen=True, slots=True)
class SimMessage:
    topic: str
    payload: bytes
    event_ts_ms: int  # device time of the newest reading (or of the status)
    publish_ms: int  # scenario time the device sends it
    device: str
    fmt: str  # payload format, or "status"
    kind: str  # "vitals", "status" or "will" (the Last Will the broker publishes)
    readings: int


def iter_payloads(config: SimulationConfig) -> Iterator[tuple[str, bytes, int]]:
    """(topic, payload, event_ts_ms) of every message, in send order."""
    for m in generate_messages(config):
        yield m.topic, m.payload, m.event_ts_ms


def total_seconds(config: SimulationConfig) -> int:
    return math.ceil(config.duration_ms / 1000)


def nurse_schedule(config: SimulationConfig, index: int) -> list[int]:
    """Scenario seconds of the nurse rounds of patient `index`."""
    rng = rng_for(config.seed, index, Stream.SCHEDULE)
    n_total = total_seconds(config)
    interval = config.nurse_interval_s
    t = rng.uniform(0.05, 0.3) * min(interval, config.duration_s)
    times = []
    while int(t) < n_total:
        times.append(int(t))
        t += interval + rng.uniform(-0.1, 0.1) * interval
    return times


def generate_messages(config: SimulationConfig) -> Iterator[SimMessage]:
    patients = build_patients(config)
    rounds = [nurse_schedule(config, p.profile.index) for p in patients]
    n_total = total_seconds(config)
    pending: list[tuple[int, int, SimMessage]] = []
    seq = itertools.count()
    for block in range(math.ceil(n_total / BLOCK_S)):
        n_s = min(BLOCK_S, n_total - block * BLOCK_S)
        for patient, nurse in zip(patients, rounds, strict=True):
            vb = simulate_block(config.seed, patient.profile, patient.plan, config.start_ms,
                                block, n_s)
            gen = _BlockMessages(config, patient, vb, block, n_s)
            for msg in gen.all(nurse):
                heapq.heappush(pending, (msg.publish_ms, next(seq), msg))
        block_end_ms = config.start_ms + (block + 1) * BLOCK_S * 1000
        while pending and pending[0][0] < block_end_ms:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]


class _BlockMessages:
    """The messages of one patient's devices for one block of signals."""

    def __init__(self, config: SimulationConfig, patient: SimPatient, vb: VitalsBlock,
                 block: int, n_s: int) -> None:
        self.config, self.patient, self.vb, self.n_s = config, patient, vb, n_s
        self.plan = patient.plan
        self.base_s = block * BLOCK_S
        self.off = sc.off_body(self.plan, vb.t_ms)
        rng = rng_for(config.seed, patient.profile.index, Stream.EPISODES, 1_000_000 + block)
        self.off_hr = np.round(rng.uniform(35, 65, n_s))  # ambient light through an off-body PPG
        self.dead_ms = sc.dead_from_ms(self.plan)

    def all(self, nurse: list[int]) -> Iterator[SimMessage]:
        for device in self.patient.devices:
            if device.kind in ("wearable", "bedside"):
                yield from self.windows(device)
            elif device.kind == "hr_strap":
                yield from self.strap(device)
            elif device.kind == "oximeter":
                yield from self.oximeter(device)
            elif device.kind == "thermometer":
                yield from self.thermometer(device)
            elif device.kind == "chart":
                yield from self.chart(device, nurse)
            if device.worn:
                yield from self.status(device)

    # -- helpers -------------------------------------------------------------------------

    def _topic(self, device: SimDevice, fmt: str | None) -> str:
        root = self.config.topic_root
        if fmt is None:
            return f"{root}/{device.device_id}/status"
        return f"{root}/{device.device_id}/vitals/{fmt}"

    def _skew(self, device: SimDevice, t_ms: int) -> int:
        return sc.clock_offset_ms(self.plan, t_ms) if device.worn and device.timestamps else 0

    def _send_ms(self, device: SimDevice, send_ms: int, live_only: bool = False) -> int | None:
        """When the message leaves the device, or None when it never does."""
        if device.primary and self.dead_ms is not None and send_ms >= self.dead_ms:
            return None
        if device.worn:
            upload = sc.upload_ms(self.plan, send_ms)
            if upload != send_ms and (live_only or not device.timestamps):
                return None  # no uplink, and nothing to buffer it with
            return upload
        return send_ms

    def _vitals(self, device: SimDevice, readings: list[SimReading], send_ms: int,
                event_ms: int | None = None) -> Iterator[SimMessage]:
        publish = self._send_ms(device, send_ms)
        if publish is None or not readings:
            return
        if device.fmt == "json":
            payload, count = enc.encode_json(readings), len(readings)
        elif device.fmt == "senml":
            count = sum(1 for r in readings if not r.quality)
            if not count:
                return
            payload = enc.encode_senml(readings, device.device_id)
        else:
            raise AssertionError(device.fmt)
        yield SimMessage(self._topic(device, device.fmt), payload,
                         event_ms if event_ms is not None else max(r.ts_ms for r in readings),
                         publish, device.device_id, device.fmt, "vitals", count)

    # -- device kinds --------------------------------------------------------------------

    def windows(self, device: SimDevice) -> Iterator[SimMessage]:
        window = self.config.window_s
        end_ms = self.config.end_ms
        for i0 in range(0, self.n_s, window):
            i1 = min(i0 + window, self.n_s)
            if device.kind == "wearable":
                readings = self._wearable(device, i0, i1)
            else:
                readings = self._bedside(i0, i1)
            send = min(int(self.vb.t_ms[i1 - 1]) + 1000 + device.offset_ms, end_ms)
            yield from self._vitals(device, readings, send)

    def _wearable(self, device: SimDevice, i0: int, i1: int) -> list[SimReading]:
        vb, out = self.vb, []
        onset = self.plan.onset_ms or 0
        for i in range(i0, i1):
            t = int(vb.t_ms[i])
            ts = t + device.offset_ms + self._skew(device, t)
            minute = (self.base_s + i) % TEMPERATURE_EVERY_S == 0
            if self.off[i]:
                out.append(SimReading("heart_rate", float(self.off_hr[i]), ts, _LOST))
                if minute:
                    body = float(vb.body_temperature[i])
                    cooled = math.exp(-(t - onset) / 300_000)
                    skin = AMBIENT_SKIN_C + (body - AMBIENT_SKIN_C) * cooled
                    out.append(SimReading("body_temperature", round(skin, 1), ts, _LOST))
                continue
            if vb.dropout[i]:
                continue
            art = _ART if vb.artifact[i] else ()
            spo2_q = art or (_LOW if vb.low_perfusion[i] else ())
            out.append(SimReading("heart_rate", float(vb.heart_rate[i]), ts, art))
            out.append(SimReading("spo2", float(vb.spo2[i]), ts, spo2_q))
            out.append(SimReading("respiratory_rate", float(vb.respiratory_rate[i]), ts, art))
            if minute:
                out.append(SimReading("body_temperature", float(vb.body_temperature[i]), ts))
        out.extend(self._beats(device, int(vb.t_ms[i0]), int(vb.t_ms[i1 - 1]) + 1000))
        out.sort(key=lambda r: r.ts_ms)
        return out

    def _beats(self, device: SimDevice, lo_ms: int, hi_ms: int) -> list[SimReading]:
        vb = self.vb
        a, b = np.searchsorted(vb.beat_ms, [lo_ms, hi_ms])
        out = []
        t0 = int(vb.t_ms[0])
        beats = zip(vb.beat_ms[a:b].tolist(), vb.rr_interval_ms[a:b].tolist(), strict=True)
        for beat_ms, rr in beats:
            i = min((beat_ms - t0) // 1000, self.n_s - 1)
            if self.off[i] or vb.dropout[i]:
                continue
            ts = beat_ms + self._skew(device, beat_ms)
            out.append(SimReading("rr_interval", rr, ts, _ART if vb.artifact[i] else ()))
        return out

    def _bedside(self, i0: int, i1: int) -> list[SimReading]:
        vb, p, out = self.vb, self.patient.profile, []
        phase = (p.index * 37) % p.nibp_interval_s
        for i in range(i0, i1):
            s = self.base_s + i
            t = int(vb.t_ms[i])
            if s % ECG_EVERY_S == 0:
                out.append(SimReading("heart_rate", float(vb.ecg_heart_rate[i]), t))
            if s % p.nibp_interval_s == phase:
                out.append(SimReading("systolic_bp", float(vb.systolic_bp[i]), t))
                out.append(SimReading("diastolic_bp", float(vb.diastolic_bp[i]), t))
                out.append(SimReading("mean_bp", float(vb.mean_bp[i]), t))
        return out

    def _ble_seconds(self, every_s: int) -> Iterator[int]:
        first = (-self.base_s) % every_s
        return iter(range(first, self.n_s, every_s))

    def _ble(self, device: SimDevice, i: int, payload: bytes, count: int) -> Iterator[SimMessage]:
        ts = int(self.vb.t_ms[i]) + device.offset_ms
        publish = self._send_ms(device, ts)
        if publish is not None:
            yield SimMessage(self._topic(device, device.fmt), payload, ts, publish,
                             device.device_id, device.fmt, "vitals", count)

    def strap(self, device: SimDevice) -> Iterator[SimMessage]:
        vb = self.vb
        every = self.config.ble_interval_s
        for i in self._ble_seconds(every):
            if vb.dropout[i]:
                continue
            if self.off[i]:
                yield from self._ble(device, i, enc.encode_2a37(self.off_hr[i], contact=False), 1)
                continue
            ts = int(vb.t_ms[i]) + device.offset_ms
            rr = [r.value for r in self._beats(device, ts - min(every, 2) * 1000, ts + 1)]
            payload = enc.encode_2a37(float(vb.heart_rate[i]), rr)
            yield from self._ble(device, i, payload, 1 + len(rr))

    def oximeter(self, device: SimDevice) -> Iterator[SimMessage]:
        vb = self.vb
        for i in self._ble_seconds(self.config.ble_interval_s):
            if vb.dropout[i] or self.off[i]:
                continue
            quality = _ART if vb.artifact[i] else (_LOW if vb.low_perfusion[i] else ())
            payload = enc.encode_2a5f(float(vb.spo2[i]), float(vb.heart_rate[i]), quality)
            yield from self._ble(device, i, payload, 2)

    def thermometer(self, device: SimDevice) -> Iterator[SimMessage]:
        vb = self.vb
        for i in self._ble_seconds(THERMOMETER_EVERY_S):
            if self.off[i]:
                continue
            t = int(vb.t_ms[i])
            ts = t + self._skew(device, t)
            publish = self._send_ms(device, t)
            if publish is not None:
                yield SimMessage(self._topic(device, device.fmt),
                                 enc.encode_2a1c(float(vb.body_temperature[i]), ts), ts, publish,
                                 device.device_id, device.fmt, "vitals", 1)

    def chart(self, device: SimDevice, nurse: list[int]) -> Iterator[SimMessage]:
        vb, p, plan = self.vb, self.patient.profile, self.plan
        for s in nurse:
            i = s - self.base_s
            if not 0 <= i < self.n_s:
                continue
            t = int(vb.t_ms[i])
            readings = [
                SimReading("consciousness", float(sc.consciousness(plan, t)), t),
                SimReading("supplemental_oxygen", float(sc.supplemental_oxygen(plan, p, t)), t),
                SimReading("spo2_scale2", 1.0 if p.scale2 else 0.0, t),
                SimReading("respiratory_rate", float(vb.respiratory_rate[i]), t),
                SimReading("body_temperature", float(vb.body_temperature[i]), t),
            ]
            if not p.has_bedside:
                readings.append(SimReading("systolic_bp", float(vb.systolic_bp[i]), t))
                readings.append(SimReading("diastolic_bp", float(vb.diastolic_bp[i]), t))
            yield from self._vitals(device, readings, t)

    def status(self, device: SimDevice) -> Iterator[SimMessage]:
        cfg, vb, plan = self.config, self.vb, self.plan
        seconds: set[int] = set()
        if cfg.status_interval_s > 0:
            every = max(1, round(cfg.status_interval_s))
            seconds.update(range((-self.base_s) % every, self.n_s, every))
        if plan.name == "off_body":
            for edge in (plan.onset_ms, plan.end_ms):
                if edge is not None:
                    i = (edge - int(vb.t_ms[0])) // 1000
                    if 0 <= i < self.n_s:
                        seconds.add(i)
        battery_plan = plan if device.primary else _STABLE
        for i in sorted(seconds):
            t = int(vb.t_ms[i]) + device.offset_ms
            publish = self._send_ms(device, t, live_only=True)
            if publish is None:
                continue
            payload = enc.encode_status(
                t + self._skew(device, t),
                battery_pct=sc.battery_pct(battery_plan, self.patient.profile, cfg.start_ms, t),
                on_body=not bool(self.off[i]),
            )
            yield SimMessage(self._topic(device, None), payload, t + self._skew(device, t),
                             publish, device.device_id, "status", "status", 0)
        dead = self.dead_ms
        t0 = int(vb.t_ms[0])
        if device.primary and dead is not None and t0 <= dead < t0 + self.n_s * 1000:
            yield SimMessage(self._topic(device, None), enc.WILL_PAYLOAD, dead, dead,
                             device.device_id, "status", "will", 0)
