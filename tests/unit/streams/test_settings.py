import json
from pathlib import Path

import pytest

from streams.settings import PrivacySettings, Settings


def test_nested_environment_variables_configure_each_section(monkeypatch):
    monkeypatch.setenv("VITALSTREAM_KAFKA__PARTITIONS", "12")
    monkeypatch.setenv("VITALSTREAM_INFLUX__API", "v2")
    monkeypatch.setenv("VITALSTREAM_MQTT__PORT", "2883")
    s = Settings()
    assert (s.kafka.partitions, s.influx.api, s.mqtt.port) == (12, "v2", 2883)


def test_invalid_values_are_rejected_with_the_field_named(monkeypatch):
    monkeypatch.setenv("VITALSTREAM_INFLUX__API", "v3")
    with pytest.raises(ValueError, match="api"):
        Settings()


def test_redacted_dump_never_contains_secrets(monkeypatch):
    monkeypatch.setenv("VITALSTREAM_INFLUX__TOKEN", "tok-secret-123")
    monkeypatch.setenv("VITALSTREAM_PRIVACY__PSEUDONYM_KEY", "key-secret-456")
    dump = json.dumps(Settings().redacted())
    assert "tok-secret-123" not in dump and "key-secret-456" not in dump
    assert Settings().influx.token.get_secret_value() == "tok-secret-123"


def test_missing_pseudonym_key_is_a_clear_error(tmp_path: Path):
    privacy = PrivacySettings(key_file=tmp_path / "none.key")
    with pytest.raises(RuntimeError, match="VITALSTREAM_PRIVACY__PSEUDONYM_KEY"):
        privacy.load_key()


def test_dev_key_is_created_once_and_private(tmp_path: Path):
    privacy = PrivacySettings(key_file=tmp_path / "secrets" / "k")
    privacy.ensure_dev_key()
    first = privacy.load_key()
    privacy.ensure_dev_key()
    assert privacy.load_key() == first and len(first) == 64
    assert (tmp_path / "secrets" / "k").stat().st_mode & 0o077 == 0
