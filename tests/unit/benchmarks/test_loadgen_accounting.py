"""The compiled load generator's accounting, against a stand-in broker.

The stand-in speaks just enough MQTT 3.1.1 over plain TCP: it accepts every
CONNECT, and per device either acknowledges every PUBLISH, acknowledges two
and drops the connection on the third, or never acknowledges. What the
generator reports must match what the broker saw, message for message, and
its CPU split by phase must add up to its whole CPU.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from benchmarks.e2e import loadgen

DEVICES = ("dev-acks", "dev-drops", "dev-silent")


@dataclass
class DeviceSeen:
    received: int = 0
    acked: int = 0
    dropped: bool = False


@dataclass
class StandInBroker:
    sock: socket.socket = field(default_factory=socket.socket)
    seen: dict[str, DeviceSeen] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> int:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self.lock:
                self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as r:
            kind, body = read_packet(r)
            assert kind == 0x10, "CONNECT first"
            client_id = body[12:12 + int.from_bytes(body[10:12], "big")].decode()
            device = self.seen.setdefault(client_id, DeviceSeen())
            conn.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
            while (packet := read_packet(r)) is not None:
                kind, body = packet
                if kind != 0x32:  # only PUBLISH QoS 1 is answered
                    continue
                topic_len = int.from_bytes(body[:2], "big")
                packet_id = body[2 + topic_len:4 + topic_len]
                device.received += 1
                if client_id == "dev-silent":
                    continue
                if client_id == "dev-drops" and device.received == 3:
                    device.dropped = True
                    return  # closes the connection with the third unacknowledged
                conn.sendall(b"\x40\x02" + packet_id)
                device.acked += 1

    def close(self) -> None:
        self.sock.close()
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(10)


def read_packet(r: object) -> tuple[int, bytes] | None:
    head = r.read(1)  # type: ignore[attr-defined]
    if not head:
        return None
    n, mult = 0, 1
    while True:
        digit = r.read(1)[0]  # type: ignore[attr-defined]
        n += (digit & 0x7F) * mult
        mult *= 128
        if not digit & 0x80:
            break
    return head[0], r.read(n)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return loadgen.build(tmp_path_factory.mktemp("loadgen"))


def test_pubacks_and_phases_match_what_the_broker_saw(binary: Path, tmp_path: Path) -> None:
    broker = StandInBroker()
    port = broker.start()
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps([{"device": d, "password": "pw"} for d in DEVICES]))
    pub = loadgen.CompiledPublisher(binary=binary, host="127.0.0.1", port=port,
                                    credentials_file=creds, drain_s=1.0)
    pub.start()
    try:
        pub.active = len(DEVICES)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                "dev-drops" in broker.seen and broker.seen["dev-drops"].dropped
                and all(d in broker.seen and broker.seen[d].received >= 3
                        for d in ("dev-acks", "dev-silent"))):
            time.sleep(0.05)
        stats = pub.close()
    finally:
        broker.close()
    seen = broker.seen
    assert seen["dev-drops"].dropped
    assert stats.confirmed == sum(d.acked for d in seen.values())
    assert stats.failed == 1  # the third message of dev-drops
    assert stats.unconfirmed == seen["dev-silent"].received
    assert pub.final is not None
    assert int(pub.final["sent"]) == sum(d.received for d in seen.values())
    assert stats.confirmed + stats.failed + stats.unconfirmed == int(pub.final["sent"])

    phases = pub.phases
    assert phases is not None
    assert sum(p.sent for p in phases.values()) == int(pub.final["sent"])
    assert sum(p.handshakes for p in phases.values()) == len(DEVICES)
    assert phases["steady"].sent > 0
    assert sum(p.cpu_s for p in phases.values()) == pytest.approx(float(pub.final["cpu_s"]),
                                                                  abs=0.005)


def test_phase_costs_prices_the_setup_messages_at_the_steady_cost() -> None:
    before = {"idle": loadgen.PhaseTotals(0.01, 0.0, 1.0, 0, 0),
              "setup": loadgen.PhaseTotals(0.5, 0.5, 2.0, 100, 10),
              "steady": loadgen.PhaseTotals(0.2, 0.1, 10.0, 1000, 0)}
    after = {"idle": loadgen.PhaseTotals(0.01, 0.0, 1.0, 0, 0),
             "setup": loadgen.PhaseTotals(1.0, 1.5, 6.0, 2100, 110),  # +1.5 s CPU, 2,000 msgs
             "steady": loadgen.PhaseTotals(0.5, 0.8, 30.0, 21000, 0)}  # +1.0 s CPU, 20,000 msgs
    cost = loadgen.phase_costs(before, after)
    assert cost is not None
    assert cost["steady_msgs"] == 20_000
    assert cost["steady_us_per_msg"] == pytest.approx(50.0)
    assert cost["steady_cpu_pct"] == pytest.approx(5.0)  # 1.0 s of CPU in 20 s
    assert cost["steady_sys_pct_of_cpu"] == pytest.approx(70.0)
    # 1.5 s less 2,000 messages at 50 us = 1.4 s over 100 connections
    assert cost["handshakes"] == 100
    assert cost["handshake_ms"] == pytest.approx(14.0)
    assert loadgen.phase_costs(None, None) is None
