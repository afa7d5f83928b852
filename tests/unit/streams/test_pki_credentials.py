"""The development PKI and service credentials that `stack up` makes (streams/ops)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from streams.ops.credentials import DEV_IDENTITIES, credential, ensure_dev_credentials
from streams.ops.errors import SecurityConfigError
from streams.ops.pki import client_ssl_context, ensure_dev_pki, issue_certificate, server_ssl_context
from streams.security_settings import PrincipalCredentials, SecuritySettings
from streams.settings import Settings


def _sec(tmp_path: Path, **kw: object) -> SecuritySettings:
    return SecuritySettings(
        ca_file=tmp_path / "pki/ca.pem", ca_key_file=tmp_path / "pki/ca.key",
        server_cert_file=tmp_path / "pki/server.pem", server_key_file=tmp_path / "pki/server.key",
        credentials_dir=tmp_path / "secrets", **kw)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dev_pki_files_are_owner_only_and_made_once(tmp_path: Path) -> None:
    sec = _sec(tmp_path)
    written = ensure_dev_pki(sec)
    assert len(written) == 4
    for path in (sec.ca_file, sec.ca_key_file, sec.server_cert_file, sec.server_key_file):
        assert _mode(path) == 0o600, path
    assert _mode(sec.ca_file.parent) == 0o700
    assert ensure_dev_pki(sec) == []  # a second stack up keeps them


def test_server_certificate_names_loopback_and_chains_to_the_ca(tmp_path: Path) -> None:
    sec = _sec(tmp_path)
    ensure_dev_pki(sec)
    cert = x509.load_pem_x509_certificate(sec.server_cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate(sec.ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


async def test_a_real_tls_handshake_verifies_against_the_ca(tmp_path: Path) -> None:
    sec = _sec(tmp_path)
    ensure_dev_pki(sec)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0,
                                        ssl=server_ssl_context(sec))
    port = server.sockets[0].getsockname()[1]
    async with server:
        for host in ("127.0.0.1", "localhost"):
            _, writer = await asyncio.open_connection(host, port, ssl=client_ssl_context(sec))
            writer.close()
        # Another CA's client does not trust this server.
        other = _sec(tmp_path / "other")
        ensure_dev_pki(other)
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=client_ssl_context(other))


def test_server_certificate_is_reissued_for_new_hosts_but_an_operators_is_kept(tmp_path: Path) -> None:
    sec = _sec(tmp_path)
    ensure_dev_pki(sec)
    wider = sec.model_copy(update={"server_hosts": ["127.0.0.1", "localhost", "ward-gw.local"]})
    assert str(sec.server_cert_file) in ensure_dev_pki(wider)
    # A certificate from another CA (the operator's) is never replaced.
    other = _sec(tmp_path / "other")
    ensure_dev_pki(other)
    sec.server_cert_file.write_bytes(other.server_cert_file.read_bytes())
    assert ensure_dev_pki(wider) == []


def test_issued_client_certificate_is_for_clients_only(tmp_path: Path) -> None:
    sec = _sec(tmp_path)
    ensure_dev_pki(sec)
    issued = issue_certificate(sec, "wr-1", valid_days=30)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert cert.subject.rfc4514_string() == "CN=wr-1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) <= dt.timedelta(days=30)
    assert "PRIVATE" not in repr(issued)


def test_missing_ca_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SecurityConfigError, match="stack up"):
        client_ssl_context(_sec(tmp_path))
    with pytest.raises(SecurityConfigError, match="missing"):
        issue_certificate(_sec(tmp_path), "wr-1")


def test_credentials_one_random_owner_only_password_per_identity(tmp_path: Path) -> None:
    sec = _sec(tmp_path)
    assert set(ensure_dev_credentials(sec)) == set(DEV_IDENTITIES)
    assert _mode(sec.credentials_dir) == 0o700
    passwords = set()
    for identity in DEV_IDENTITIES:
        assert _mode(sec.credentials_dir / f"{identity}.password") == 0o600
        cred = credential(sec, identity)
        assert cred.username == identity and len(cred.password) >= 40
        assert cred.password not in repr(cred)
        passwords.add(cred.password)
    assert len(passwords) == len(DEV_IDENTITIES)
    assert ensure_dev_credentials(sec) == []  # kept across stack up


def test_production_override_wins_and_missing_password_says_how_to_fix(tmp_path: Path) -> None:
    sec = _sec(tmp_path, principals={"gateway": PrincipalCredentials(username="svc-gw", password="s3")})
    assert credential(sec, "gateway").username == "svc-gw"
    assert credential(sec, "gateway").password == "s3"
    with pytest.raises(SecurityConfigError, match="VITALSTREAM_SECURITY__PRINCIPALS__WORKER__PASSWORD"):
        credential(sec, "worker")


def test_security_settings_from_the_environment_reach_every_client_section(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALSTREAM_SECURITY__CA_FILE", "/etc/vs/ca.pem")
    monkeypatch.setenv("VITALSTREAM_SECURITY__PRINCIPALS__GATEWAY__PASSWORD", "pw")
    settings = Settings()
    assert settings.security.principals["gateway"].password is not None
    assert settings.security.principals["gateway"].password.get_secret_value() == "pw"
    for section in (settings.kafka, settings.mqtt, settings.influx):
        assert section.security.ca_file == Path("/etc/vs/ca.pem")
    assert "pw" not in str(settings.redacted())
