"""`vitalstream staff`: passwords never on the command line; tokens only for the right password."""

from __future__ import annotations

import io
import json
import socket
import stat
from pathlib import Path

import pytest

from streams.cli import main
from streams.ops.credentials import ensure_dev_credentials
from streams.settings import Settings
from streams.staff.accounts import StaffDirectory
from streams.staff.dev import DEV_STAFF, ensure_dev_staff
from streams.staff.tokens import SessionTokens


@pytest.fixture()
def staff_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VITALSTREAM_STAFF__FILE", str(tmp_path / "staff.json"))
    monkeypatch.setenv("VITALSTREAM_STAFF__TOKEN_KEY", "t" * 32)
    # No broker listens here: the account file changes, the broker step reports.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    monkeypatch.setenv("VITALSTREAM_MQTT__PORT", str(closed_port))
    monkeypatch.setenv("VITALSTREAM_SECURITY__CREDENTIALS_DIR", str(tmp_path / "secrets"))
    ensure_dev_credentials(Settings().security, ("admin",))
    return tmp_path / "staff.json"


def run(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(argv)


def test_add_token_remove(staff_env: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, ["staff", "add", "nurse-17", "--name", "A. Nurse", "--ward", "W1",
                             "--password-stdin"], "s3cret-pass\n") == 1  # the broker is down
    err = capsys.readouterr().err
    assert "MQTT broker at 127.0.0.1" in err and "not granted" in err and "again" in err
    assert "s3cret-pass" not in staff_env.read_text() and "s3cret-pass" not in err
    assert stat.S_IMODE(staff_env.stat().st_mode) == 0o600
    capsys.readouterr()
    assert run(monkeypatch, ["staff", "token", "nurse-17", "--password-stdin"],
               "s3cret-pass\n") == 0
    token = capsys.readouterr().out.strip()
    directory = StaffDirectory(staff_env)
    assert SessionTokens(b"t" * 32, directory).verify(token).wards == ("W1",)
    assert run(monkeypatch, ["staff", "token", "nurse-17", "--password-stdin"], "wrong\n") == 1
    assert run(monkeypatch, ["staff", "list", "--json"]) == 0
    listed = capsys.readouterr().out
    assert json.loads(listed)[0]["username"] == "nurse-17" and "hash" not in listed
    assert run(monkeypatch, ["staff", "remove", "nurse-17"]) == 1
    assert "still read its wards' care topics" in capsys.readouterr().err
    assert directory.get("nurse-17") is None


def test_add_refuses_a_short_password(staff_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(monkeypatch, ["staff", "add", "n1", "--name", "N", "--ward", "W1",
                             "--password-stdin"], "short\n") == 1


def test_password_is_not_an_argument(staff_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit):
        run(monkeypatch, ["staff", "add", "n1", "--name", "N", "--ward", "W1",
                          "--password", "x"])


def test_dev_staff_made_once_with_owner_only_passwords(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALSTREAM_STAFF__FILE", str(tmp_path / "staff.json"))
    monkeypatch.setenv("VITALSTREAM_STAFF__DEV_PASSWORDS_FILE", str(tmp_path / "s" / "dev.json"))
    settings = Settings().staff
    assert ensure_dev_staff(settings) == [m.username for m in DEV_STAFF]
    assert ensure_dev_staff(settings) == []
    passwords = json.loads(settings.dev_passwords_file.read_text())
    assert stat.S_IMODE(settings.dev_passwords_file.stat().st_mode) == 0o600
    directory = StaffDirectory(settings.file)
    charge = directory.authenticate("charge-nurse", passwords["charge-nurse"])
    assert charge is not None and charge.wards == ("W1", "W2")
    assert directory.authenticate("nurse-w1", passwords["nurse-w2"]) is None
