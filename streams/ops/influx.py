"""InfluxDB 1.x from Debian (v1 write API) and VictoriaMetrics (v2 write API)."""

from __future__ import annotations

import base64
import shutil
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from streams.influxql import influxql_rows
from streams.ops.credentials import INFLUX_ADMIN, VICTORIA_USER, Credential, credential
from streams.ops.influx_users import ensure_admin
from streams.ops.service import Service
from streams.ops.templates import render
from streams.security_settings import SecuritySettings

HEALTH_DB = "_vitalstream_health"


def http(method: str, url: str, body: bytes | None = None, timeout_s: float = 5.0,
         auth: Credential | None = None) -> bytes:
    req = urllib.request.Request(url, data=body, method=method)
    if auth is not None:
        token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - loopback URL
        return resp.read()


@dataclass
class InfluxV1Service(Service):
    database: str = "vitalstream"
    retention_check: str = "30m"
    # Where the admin's credentials are (read at each probe: `status` before `up` has none).
    security: SecuritySettings = field(default_factory=SecuritySettings)

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

    def probe(self) -> None:
        """As the admin (created on a server without users): write one point, read it back."""
        admin = credential(self.security, INFLUX_ADMIN)
        ensure_admin(self.url, admin)
        auth = (admin.username, admin.password)
        influxql_rows(self.url, f'CREATE DATABASE "{HEALTH_DB}"', auth=auth, timeout_s=5)
        ts_ms = int(time.time() * 1000)
        http("POST", f"{self.url}/write?db={HEALTH_DB}&precision=ms",
             f"probe ok=1i {ts_ms}".encode(), auth=admin)
        if not influxql_rows(self.url, f"SELECT ok FROM probe WHERE time = {ts_ms}ms", HEALTH_DB,
                             auth=auth, timeout_s=5):
            raise RuntimeError("influxdb probe point not readable")


@dataclass
class VictoriaMetricsService(Service):
    security: SecuritySettings = field(default_factory=SecuritySettings)

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
            # Basic auth on every endpoint; the password comes through the
            # environment (envflag), so it is not in the process list.
            f"-httpAuth.username={credential(self.security, VICTORIA_USER).username}",
            "-envflag.enable",
        ]

    def env(self) -> dict[str, str]:
        return {"httpAuth_password": credential(self.security, VICTORIA_USER).password}

    def probe(self) -> None:
        """Authenticated: write through the InfluxDB v2 API and read the series back."""
        auth = credential(self.security, VICTORIA_USER)
        ts_ms = int(time.time() * 1000)
        line = f"vsprobe,probe=1 ok=1 {ts_ms}".encode()
        http("POST", f"{self.url}/api/v2/write?org=x&bucket=x&precision=ms", line, auth=auth)
        for _ in range(20):
            match = urllib.parse.quote('{__name__="vsprobe_ok"}')
            if http("GET", f"{self.url}/api/v1/export?match[]={match}", auth=auth).strip():
                return
            time.sleep(0.25)
        raise RuntimeError("victoria-metrics probe series not readable")
