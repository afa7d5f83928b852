"""Alert event -> delivery latency of the notifier, per channel, against the
running stack (Kafka, Mosquitto, InfluxDB), with a bare baseline.

- notifier: the real NotifyService in this process (routing, directory,
  dedup store, audit, retained lists), delivering to the broker's ward topic,
  a local webhook receiver and a local SMTP server (aiosmtpd).
- baseline: a bare aiokafka consumer that publishes each record with paho
  (QoS 1) and nothing else: no routing, dedup, re-identification or audit.

Latency = arrival at the receiver (wall clock) - event ts_ms (set when the
alert is produced). Alerts are produced at a steady rate, so this measures
latency, not throughput.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

from devices.pseudonym import Pseudonymizer
from streams.connections import kafka_client_kwargs, mqtt_connection
from streams.notify.service import NotifyService
from streams.records import AlertEventRecord
from streams.security_settings import SecuritySettings
from streams.settings import Settings


def now_ms() -> float:
    return time.time() * 1000


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Arrivals:
    """page key (alert id or page reference) -> arrival ms, per channel (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.at: dict[str, dict[str, float]] = {}

    def add(self, channel: str, alert_id: str) -> None:
        t = now_ms()
        with self._lock:
            self.at.setdefault(channel, {}).setdefault(alert_id, t)

    def count(self, channel: str) -> int:
        with self._lock:
            return len(self.at.get(channel, {}))


def webhook_server(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrivals.add("webhook", json.loads(body)["ref"])  # pages carry no alert id
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def smtp_server(arrivals: Arrivals, security: SecuritySettings) -> Any:
    """aiosmtpd requiring STARTTLS with the stack's certificate, as a real relay would."""
    import socket
    import ssl

    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
            msg = message_from_bytes(envelope.original_content)
            arrivals.add("email", str(msg["X-Vitalstream-Ref"]))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(security.server_cert_file), str(security.server_key_file))
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True)
    controller.start()
    return controller


def mqtt_watcher(settings: Settings, topic: str, on: Callable[[bytes], None]) -> mqtt.Client:
    ready = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"bench-watch-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    mqtt_connection(settings.mqtt, "admin").apply(client)  # reads every care topic
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *a: ready.set()
    client.on_message = lambda c, u, m: on(bytes(m.payload))
    client.connect(settings.mqtt.host, settings.mqtt.port)
    client.loop_start()
    if not ready.wait(10):
        raise RuntimeError("MQTT watcher could not subscribe")
    return client


async def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def make_events(run_id: str, pids: list[str], n: int, ward: str) -> list[AlertEventRecord]:
    return [AlertEventRecord(event_id=f"bench-{run_id}-{i}:raised", alert_id=f"bench-{run_id}-{i}",
                             kind="raised", pid=pids[i % len(pids)], rule="spo2_low", severity="high",
                             ts_ms=0, ward=ward, metric="spo2", value=88.0) for i in range(n)]


def latencies(arrivals: Arrivals, channel: str, sent_ms: dict[str, int]) -> list[float]:
    return [t - sent_ms[a] for a, t in arrivals.at.get(channel, {}).items() if a in sent_ms]


async def bench_notifier(settings: Settings, n: int, rate_hz: float) -> dict[str, list[float]]:
    from streams.commands.notify import build_config

    run_id = uuid.uuid4().hex[:8]
    ward = f"BENCH{run_id}"
    arrivals = Arrivals()
    sent: dict[str, int] = {}
    web = webhook_server(arrivals)
    smtp = smtp_server(arrivals, settings.security)
    watcher = mqtt_watcher(settings, f"care/{ward}/alerts",
                           lambda p: arrivals.add("mqtt", json.loads(p)["ref"]))
    by_ref: dict[str, str] = {}  # page reference -> alert id, from the notifier's store
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        pseudo = Pseudonymizer(settings.privacy.load_key())
        patients = [f"BENCH-{run_id}-{i}" for i in range(20)]
        (tmp_path / "registry.json").write_text(json.dumps({"devices": [
            {"device": f"bench-{run_id}-{i}", "patient_id": p, "ward": ward, "bed": str(i)}
            for i, p in enumerate(patients)]}))
        (tmp_path / "routes.json").write_text(json.dumps({
            "targets": [
                {"name": "ward-mqtt", "channel": "mqtt"},
                {"name": "pager", "channel": "webhook",
                 "url": f"http://127.0.0.1:{web.server_address[1]}/hook"},
                {"name": "mail", "channel": "email", "to": ["bench@example.org"]},
            ],
            "routes": [{"wards": [ward], "targets": ["ward-mqtt", "pager", "mail"]}],
        }))
        config = build_config(settings)
        config.notify = config.notify.model_copy(update={
            "group_id": f"bench-notify-{run_id}", "data_dir": tmp_path / "notify",
            "routes_file": tmp_path / "routes.json", "registry_file": tmp_path / "registry.json",
            "mqtt_client_id": f"bench-notify-{run_id}", "http_port": 0, "guard_enabled": False,
            "smtp": config.notify.smtp.model_copy(update={
                "port": smtp.port, "tls": "starttls", "ca_file": settings.security.ca_file}),
            "webhook": config.notify.webhook.model_copy(update={
                "secret": SecretStr(f"bench-{run_id}-webhook-secret")}),
        })
        config.registry_file = tmp_path / "registry.json"
        events = make_events(run_id, [pseudo.pseudonym(p) for p in patients], n, ward)
        try:
            async with NotifyService(config) as service:
                await produce_recording(settings, events, rate_hz, sent)
                await wait_for(lambda: all(arrivals.count(c) >= n
                                           for c in ("mqtt", "webhook", "email")), 60)
                by_ref = {service.notifier.alert_ref(a): a for a in sent}
        finally:
            watcher.disconnect()
            watcher.loop_stop()
            web.shutdown()
            web.server_close()
            smtp.stop()
    sent_by_ref = {ref: sent[a] for ref, a in by_ref.items()}
    return {c: latencies(arrivals, c, sent_by_ref) for c in ("mqtt", "webhook", "email")}


async def produce_recording(settings: Settings, events: list[AlertEventRecord], rate_hz: float,
                            sent: dict[str, int], topic: str = "alerts") -> None:
    producer = AIOKafkaProducer(**kafka_client_kwargs(settings.kafka, "admin"), acks="all",
                                linger_ms=0)
    await producer.start()
    try:
        for ev in events:
            ts = int(now_ms())
            sent[ev.alert_id] = ts
            ev = ev.model_copy(update={"ts_ms": ts})
            await producer.send_and_wait(topic, ev.to_bytes(), key=ev.pid.encode())
            await asyncio.sleep(1 / rate_hz)
    finally:
        await producer.stop()


async def bench_baseline(settings: Settings, n: int, rate_hz: float) -> list[float]:
    """aiokafka consume -> paho publish, nothing else."""
    run_id = uuid.uuid4().hex[:8]
    topic = f"care/BASE{run_id}/alerts"
    arrivals = Arrivals()
    sent: dict[str, int] = {}
    watcher = mqtt_watcher(settings, topic,
                           lambda p: arrivals.add("mqtt", json.loads(p)["alert_id"]))
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                            client_id=f"bench-base-{run_id}", protocol=mqtt.MQTTv5)
    # The notifier's identity and TLS, so the baseline pays the same costs.
    mqtt_connection(settings.mqtt, "notifier").apply(publisher)
    publisher.connect(settings.mqtt.host, settings.mqtt.port)
    publisher.loop_start()
    consumer = AIOKafkaConsumer("alerts", **kafka_client_kwargs(settings.kafka, "admin"),
                                group_id=f"bench-base-{run_id}", auto_offset_reset="latest")
    await consumer.start()
    assigned = await wait_for(lambda: bool(consumer.assignment()), 30)
    if not assigned:
        raise RuntimeError("baseline consumer got no partitions")
    for tp in consumer.assignment():
        await consumer.seek_to_end(tp)
        await consumer.position(tp)

    async def relay() -> None:
        async for msg in consumer:
            if msg.value and f"base-{run_id}" in msg.value.decode():
                publisher.publish(topic, msg.value, qos=1)

    task = asyncio.create_task(relay())
    events = [ev.model_copy(update={"alert_id": f"base-{run_id}-{i}"})
              for i, ev in enumerate(make_events(run_id, ["0" * 32], n, "BASE"))]
    try:
        await produce_recording(settings, events, rate_hz, sent)
        await wait_for(lambda: arrivals.count("mqtt") >= n, 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
        publisher.disconnect()
        publisher.loop_stop()
        watcher.disconnect()
        watcher.loop_stop()
    return latencies(arrivals, "mqtt", sent)
