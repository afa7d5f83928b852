"""One measurement: a fresh process holds N patients' worker state, fed
1 Hz readings in 1-second messages (the five vitals of benchmarks.e2e), and
reports its RSS after every simulated minute.

The state is the worker's own: a `PatientProcessor` built with the worker's
production configuration (streams/worker.py), one `PatientState` per patient
in a dict (the worker's cache), a checkpoint every `checkpoint_s` simulated
seconds whose records go into a dict, as the `memory://` table store holds
them (with `rocksdb://` they live in RocksDB's memtables and block cache
instead, outside Python's heap). Kafka, Faust and the InfluxDB sink are not
in this process: their buffers do not depend on the number of patients.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from typing import Any

from analytics.alerts import AlertMachine
from analytics.metrics import metric_for
from benchmarks.common.procs import status_mb
from streams.pipeline.inputs import parse_reading_batches
from streams.pipeline.processor import PatientProcessor, ProcessorConfig
from streams.pipeline.state import PatientState, checkpoint_records
from streams.settings import Settings
from streams.worker import DEFAULT_SPECS, load_rules

VITALS = ("heart_rate", "spo2", "respiratory_rate", "rr_interval", "body_temperature")


def rss_mb() -> float:
    rss = status_mb("self", "VmRSS")
    if rss is None:
        raise RuntimeError("no VmRSS in /proc/self/status")
    return rss


def production_processor(settings: Settings) -> PatientProcessor:
    w = settings.worker
    return PatientProcessor(
        ProcessorConfig(specs=DEFAULT_SPECS, allowed_lateness_ms=w.allowed_lateness_ms,
                        idle_timeout_ms=w.idle_timeout_ms, max_lead_ms=w.max_lead_ms,
                        technical=w.technical.analytics()),
        AlertMachine(load_rules(settings)))


def message(k: int, pid: str, second: int, ts_ms: int) -> dict[str, Any]:
    """Patient k's message: five readings at ts_ms (values wiggle, one in 25 desaturates)."""
    wiggle = (k * 7 + second) % 11 - 5
    low = k % 25 == 0
    values = (72.0 + wiggle, 85.0 if low else 97.0, 16.0 + wiggle // 2, 830.0 + 4 * wiggle, 36.8)
    readings = []
    for metric, value in zip(VITALS, values, strict=True):
        spec = metric_for(metric)
        assert spec is not None
        readings.append({"metric": metric, "unit": spec.ucum, "value": value, "ts_ms": ts_ms})
    return {"v": 1, "pid": pid, "device": f"dev-{pid}", "ward": "MEM", "source": "json",
            "msg_id": f"{pid}-{second}", "received_ms": ts_ms, "readings": readings}


def run(patients: int, seconds: int, checkpoint_s: int) -> None:
    """Prints one JSON line per simulated minute: minute, rss_mb, table_mb, patients."""
    processor = production_processor(Settings())
    # The records are the ones the worker accepts (the wire model checks them).
    sample = json.dumps(message(0, "p0", 0, 0)).encode()
    assert parse_reading_batches([sample], "vitals.normalized").batches, "sample rejected"
    cache: dict[str, PatientState] = {}
    table: dict[bytes, bytes] = {}
    pids = [f"mem-{k:06d}" for k in range(patients)]
    now_ms = int(time.time() * 1000)
    t0_ms = now_ms - now_ms % 60_000 - seconds * 1000  # the recent past, never the future
    gc.collect()
    print(json.dumps({"minute": 0, "rss_mb": round(rss_mb(), 1), "table_mb": 0.0,
                      "patients": patients}), flush=True)
    for s in range(seconds):
        ts_ms = t0_ms + s * 1000
        for k, pid in enumerate(pids):
            state = cache.get(pid)
            if state is None:
                state = cache[pid] = processor.new_state(pid)
            processor.process_batch(state, message(k, pid, s, ts_ms), ts_ms)
        if (s + 1) % checkpoint_s == 0:
            for pid in pids:
                for key, value in checkpoint_records(cache[pid]):
                    if value is None:
                        table.pop(key, None)
                    else:
                        table[key] = value
        if (s + 1) % 60 == 0:
            gc.collect()
            table_mb = sum(len(k) + len(v) for k, v in table.items()) / 2**20
            print(json.dumps({"minute": (s + 1) // 60, "rss_mb": round(rss_mb(), 1),
                              "table_mb": round(table_mb, 1), "patients": patients}), flush=True)


if __name__ == "__main__":
    run(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
