"""The CLI turns any VitalstreamError into one message and an exit code, no traceback."""

from __future__ import annotations

import pytest

from streams import cli
from streams.commands import schemas
from streams.ops.errors import PortInUseError, ServiceNotReadyError


def _raising(exc: Exception):  # noqa: ANN202
    def run(args: object) -> int:
        raise exc
    return run


def test_a_known_error_is_a_message_and_exit_1(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(schemas, "run", _raising(PortInUseError("kafka", 9092)))
    assert cli.main(["schemas"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "vitalstream schemas: port 9092 for kafka is already in use" in err
    assert "Traceback" not in err


def test_a_retriable_error_exits_75(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "run", _raising(ServiceNotReadyError("influxdb not ready")))
    assert cli.main(["schemas"]) == cli.EXIT_RETRY_LATER


def test_an_unexpected_error_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "run", _raising(ZeroDivisionError("bug")))
    with pytest.raises(ZeroDivisionError):
        cli.main(["schemas"])
