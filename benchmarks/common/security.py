"""What security costs: the same stack with and without TLS and SASL.

"on" is the stack as configured (MQTT over TLS, Kafka SASL SCRAM over TLS
with ACLs); "off" goes through its comparison listeners (stack.kafka_plain_port:
PLAINTEXT Kafka whose anonymous clients are super users; stack.mqtt_plain_port:
plain-TCP MQTT, still with passwords), which `stack up` opens only when asked.
InfluxDB stays as it is in both (loopback HTTP with basic auth). Each mode
gives the benchmark's own settings and the environment overrides for the
`vitalstream` processes it starts.
"""

from __future__ import annotations

from collections.abc import Iterator

from streams.settings import Settings

MODES = ("on", "off")


def parse_modes(text: str) -> tuple[str, ...]:
    """`--security on`, `off` or `on,off` (both in one run, in that order)."""
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes):
        raise SystemExit(f"--security takes on, off or on,off, not {text!r}")
    return modes


def security_off(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """The same stack through its plain listeners: no TLS on either, no SASL on Kafka."""
    s = settings.stack
    if s.kafka_plain_port is None or s.mqtt_plain_port is None:
        raise SystemExit("--security off needs a stack started with "
                         "VITALSTREAM_STACK__KAFKA_PLAIN_PORT and VITALSTREAM_STACK__MQTT_PLAIN_PORT")
    bootstrap = f"127.0.0.1:{s.kafka_plain_port}"
    off = settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"bootstrap": bootstrap,
                                                   "security_protocol": "PLAINTEXT"}),
        "mqtt": settings.mqtt.model_copy(update={"port": s.mqtt_plain_port, "tls": False}),
    })
    return off, {"VITALSTREAM_KAFKA__BOOTSTRAP": bootstrap,
                 "VITALSTREAM_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT",
                 "VITALSTREAM_MQTT__PORT": str(s.mqtt_plain_port), "VITALSTREAM_MQTT__TLS": "false"}


def each_mode(settings: Settings, modes: tuple[str, ...]) -> Iterator[tuple[str, Settings, dict[str, str]]]:
    """(mode, settings, process env overrides) for each mode asked for; checks
    first that "off" is possible, so a run does not fail halfway."""
    off = security_off(settings) if "off" in modes else None
    for mode in modes:
        if mode == "off" and off is not None:
            yield mode, *off
        else:
            yield mode, settings, {}
