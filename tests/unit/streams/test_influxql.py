"""streams.influxql against a small HTTP server speaking InfluxDB's /query
answer format (the real server is exercised by every integration test that
reads points back; this pins the row shape, auth header and errors)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from streams.influxql import InfluxQueryError, influxql_rows


class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, dict]] = {}
    seen: list[tuple[dict, str | None]] = []

    def do_POST(self) -> None:  # noqa: N802
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.seen.append((form, self.headers.get("Authorization")))
        status, body = self.answers[form["q"][0]]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_rows_merge_tags_and_columns_in_epoch_ms(server: str) -> None:
    _Handler.answers["SELECT"] = (200, {"results": [{"series": [
        {"name": "vitals", "tags": {"metric": "spo2"}, "columns": ["time", "value"],
         "values": [[1000, 97.0], [2000, 96.0]]}]}]})
    rows = influxql_rows(server, "SELECT", "db1", auth=("reader", "s3cret"))
    assert rows == [{"metric": "spo2", "time": 1000, "value": 97.0},
                    {"metric": "spo2", "time": 2000, "value": 96.0}]
    form, header = _Handler.seen[-1]
    assert form["db"] == ["db1"] and form["epoch"] == ["ms"]
    assert header == "Basic " + base64.b64encode(b"reader:s3cret").decode()


def test_an_influxql_error_and_an_http_error_are_clear(server: str) -> None:
    _Handler.answers["BAD"] = (200, {"results": [{"error": "database not found: x"}]})
    _Handler.answers["DENIED"] = (401, {"error": "authorization failed"})
    with pytest.raises(InfluxQueryError, match="database not found"):
        influxql_rows(server, "BAD")
    with pytest.raises(InfluxQueryError, match="HTTP 401"):
        influxql_rows(server, "DENIED")
