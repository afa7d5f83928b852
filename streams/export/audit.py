"""The release audit: every research export leaves a record, in a log and in InfluxDB.

The log is append-only JSON lines (opened for append, never rewritten; the
operator can make it append-only at the file-system level with `chattr +a`).
The same record goes to InfluxDB (`export_audit` in the audit database) so
that it sits beside the data it describes. Records hold study ids, counts and
hashes, never patient data.
"""

from __future__ import annotations

import getpass
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from streams.export.errors import ExportError
from streams.sinks.errors import influx_refusal
from streams.sinks.lineprotocol import line


def audit_record(*, study_id: str, approval: Any, files: dict[str, dict[str, Any]],
                 suppressed: dict[str, int], released_by: str | None = None) -> dict[str, Any]:
    return {
        "ts_ms": int(time.time() * 1000),
        "released_by": released_by or getpass.getuser(),
        "study_id": study_id,
        "drb_reference": approval.drb_reference,
        "irb_reference": approval.irb_reference,
        "data_steward": approval.data_steward,
        "approval_sha256": approval.sha256,
        "files": files,
        "suppressed": suppressed,
    }


def append_log(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_influx(url: str, database: str, auth: tuple[str, str] | None,
                 record: dict[str, Any], timeout_s: float = 10) -> None:
    """The record as one `export_audit` point (tag study, fields per file)."""
    fields: dict[str, Any] = {"released_by": record["released_by"],
                              "drb_reference": record["drb_reference"],
                              "irb_reference": record["irb_reference"],
                              "approval_sha256": record["approval_sha256"],
                              "suppressed": sum(record["suppressed"].values())}
    for name, info in record["files"].items():
        table = name.removesuffix(".csv")
        fields[f"{table}_rows"] = int(info["rows"])
        fields[f"{table}_sha256"] = info["sha256"]
    point = line("export_audit", {"study": record["study_id"]}, fields, record["ts_ms"])
    assert point is not None
    request = urllib.request.Request(
        f"{url.rstrip('/')}/write?db={database}&precision=ms", data=point.encode(), method="POST")
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):  # noqa: S310
            pass
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # configuration: the same write would be refused again
            raise ExportError(f"{influx_refusal(exc.code, auth[0] if auth else None, 'audit write')}"
                              "; the release is in the audit log, write it again once "
                              "fixed, before handing the files out") from None
        raise ExportError(f"audit record not written to InfluxDB (HTTP {exc.code}); the "
                          "release is in the audit log, write it again before handing the "
                          "files out") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ExportError(f"audit record not written to InfluxDB ({exc}); the release is "
                          "in the audit log, write it again before handing the files out") from exc
