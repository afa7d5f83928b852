"""InfluxDB 1.x from Debian (v1 write API) and VictoriaMetrics (v2 write API)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

from streams.ops.service import Service
from streams.ops.templates import render

HEALTH_DB = "_vitalstream_health"


def http(method: str, url: str, body: bytes | None = None, timeout_s: float = 5.0) -> bytes:
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - loopback URL
        return resp.read()


@dataclass
class InfluxV1Service(Service):
    database: str = "vitalstream"
    retention_check: str = "30m"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def prepare(self) -> None:
        root = self.data_dir.resolve()
        for sub in ("meta", "data", "wal"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        conf = render("influxdb/influxdb.conf.tmpl", bind="127.0.0.1", data_root=root,
                      http_port=self.ports["http"], rpc_port=self.ports["rpc"],
                      retention_check=self.retention_check)
        (root / "influxdb.conf").write_text(conf)

    def argv(self) -> list[str]:
        exe = shutil.which("influxd") or "/usr/bin/influxd"
        return [exe, "-config", str((self.data_dir / "influxdb.conf").resolve())]

    def query(self, q: str, db: str | None = None) -> dict:
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        body = urllib.parse.urlencode(params).encode()
        return json.loads(http("POST", f"{self.url}/query", body))

    def probe(self) -> None:
        """Write one point and read it back."""
        self.query(f'CREATE DATABASE "{HEALTH_DB}"')
        ts_ms = int(time.time() * 1000)
        http("POST", f"{self.url}/write?db={HEALTH_DB}&precision=ms", f"probe ok=1i {ts_ms}".encode())
        result = self.query(f"SELECT ok FROM probe WHERE time = {ts_ms}ms", db=HEALTH_DB)
        if "series" not in result["results"][0]:
            raise RuntimeError("influxdb probe point not readable")


@dataclass
class VictoriaMetricsService(Service):
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        exe = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        return [
            exe,
            f"-storageDataPath={self.data_dir.resolve()}",
            f"-httpListenAddr=127.0.0.1:{self.ports['http']}",
            "-retentionPeriod=100y",  # the demo writes historic timestamps
            "-loggerLevel=WARN",
        ]

    def probe(self) -> None:
        """Write through the InfluxDB v2 API and read the series back."""
        ts_ms = int(time.time() * 1000)
        line = f"vsprobe,probe=1 ok=1 {ts_ms}".encode()
        http("POST", f"{self.url}/api/v2/write?org=x&bucket=x&precision=ms", line)
        for _ in range(20):
            match = urllib.parse.quote('{__name__="vsprobe_ok"}')
            if http("GET", f"{self.url}/api/v1/export?match[]={match}").strip():
                return
            time.sleep(0.25)
        raise RuntimeError("victoria-metrics probe series not readable")
