"""A throwaway PostgreSQL (Debian's postgresql package) for tests: loopback, a random
port, password authentication, its data directory removed afterwards."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Postgres:
    bin_dir: Path
    port: int
    password: str

    def psql(self, *args: str, sql: str | None = None) -> str:
        """Run psql as the superuser; raises CalledProcessError with its stderr."""
        env = {**os.environ, "PGPASSWORD": self.password}
        cmd = [str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
               "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", *args]
        return subprocess.run(cmd, input=sql, env=env, check=True, capture_output=True,
                              text=True, timeout=60).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make setup` installs it")
    bin_dir = Path(found[-1]).parent
    # initdb refuses to run as root: as root, run the server as `postgres`.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="vs-pg-"))
    data, pwfile = root / "data", root / "pw"
    password = secrets.token_hex(16)
    pwfile.write_text(password)
    if as_user:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=scram-sha-256", f"--pwfile={pwfile}"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
                        "-l", str(root / "log"), "-o",
                        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=90)
        yield Postgres(bin_dir, port, password)
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
