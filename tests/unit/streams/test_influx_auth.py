"""Which InfluxDB / VictoriaMetrics user each principal authenticates as."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.connections import ConnectionSettingsError, influx_auth
from streams.ops.credentials import ensure_dev_credentials
from streams.security_settings import PrincipalCredentials
from streams.settings import Settings
from streams.sinks.errors import influx_refusal


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    s = Settings(security={"credentials_dir": tmp_path / "secrets"})
    ensure_dev_credentials(s.security)
    return s


@pytest.mark.parametrize(("principal", "user"), [
    ("admin", "influx_admin"), ("worker", "influx_writer"), ("notifier", "influx_writer"),
    ("console", "influx_writer"), ("exporter", "influx_exporter"), ("reader", "influx_reader")])
def test_each_principal_is_its_least_privileged_influx_user(settings: Settings, principal: str,
                                                           user: str) -> None:
    auth = influx_auth(settings.influx, principal)  # type: ignore[arg-type]
    assert auth is not None and auth[0] == user
    assert auth[1] == (settings.security.credentials_dir / f"{user}.password").read_text()


def test_the_gateway_has_no_influx_identity(settings: Settings) -> None:
    with pytest.raises(ConnectionSettingsError):
        influx_auth(settings.influx, "gateway")


def test_production_overrides_win(settings: Settings) -> None:
    settings.security.principals["influx_reader"] = PrincipalCredentials(
        username="grafana", password=SecretStr("from-the-vault"))
    assert influx_auth(settings.influx, "reader") == ("grafana", "from-the-vault")
    one_user = settings.influx.model_copy(update={"username": "legacy",
                                                  "password": SecretStr("pw")})
    assert influx_auth(one_user, "worker") == ("legacy", "pw")


def test_v2_is_victoria_metrics_basic_auth_unless_a_token_is_set(settings: Settings) -> None:
    vm = settings.influx.model_copy(update={"api": "v2"})
    auth = influx_auth(vm, "worker")
    assert auth is not None and auth[0] == "victoria"
    assert influx_auth(vm.model_copy(update={"token": SecretStr("t")}), "worker") is None


def test_refusal_names_the_setting_and_never_a_password() -> None:
    text = influx_refusal(401, "influx_writer", "write")
    assert "VITALSTREAM_SECURITY__PRINCIPALS__INFLUX_WRITER__PASSWORD" in text
    assert "HTTP 403" in influx_refusal(403, "influx_reader", "write")
