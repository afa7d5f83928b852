"""--security of the benchmarks (benchmarks/common/security.py)."""

from __future__ import annotations

import pytest

from benchmarks.common.security import each_mode, parse_modes
from streams.settings import Settings, StackSettings


def test_off_goes_through_the_plain_listeners_for_clients_and_processes() -> None:
    settings = Settings(stack=StackSettings(kafka_plain_port=19094, mqtt_plain_port=11884))
    modes = {mode: (s, env) for mode, s, env in each_mode(settings, parse_modes("on,off"))}
    assert modes["on"] == (settings, {})
    off, env = modes["off"]
    assert (off.kafka.bootstrap, off.kafka.security_protocol) == ("127.0.0.1:19094", "PLAINTEXT")
    assert (off.mqtt.port, off.mqtt.tls) == (11884, False)
    assert env["VITALSTREAM_KAFKA__SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert env["VITALSTREAM_MQTT__TLS"] == "false"


def test_off_without_plain_listeners_stops_before_anything_runs() -> None:
    settings = Settings(stack=StackSettings(kafka_plain_port=None, mqtt_plain_port=None))
    with pytest.raises(SystemExit, match="KAFKA_PLAIN_PORT"):
        list(each_mode(settings, ("on", "off")))
    with pytest.raises(SystemExit):
        parse_modes("on,plain")
