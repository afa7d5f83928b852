"""Security settings: the CA clients trust, the server certificate, service credentials.

Development (`vitalstream stack up`) makes a CA, a server certificate for
127.0.0.1/localhost (streams/ops/pki.py) and one random password per service
identity (streams/ops/credentials.py) at the default paths under `.stack/`.
Production points the paths at its own PKI and gives each service its
credentials here, e.g.

    VITALSTREAM_SECURITY__CA_FILE=/etc/vitalstream/ca.pem
    VITALSTREAM_SECURITY__PRINCIPALS__GATEWAY__USERNAME=svc-gateway
    VITALSTREAM_SECURITY__PRINCIPALS__GATEWAY__PASSWORD=...

An override wins over the file in `credentials_dir`. See docs/security.md.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class PrincipalCredentials(BaseModel):
    """A production override for one identity; unset parts fall back to the dev files."""

    username: str | None = None
    password: SecretStr | None = None


class SecuritySettings(BaseModel):
    # The CA every client verifies servers against (Kafka, Mosquitto, HTTPS).
    ca_file: Path = Path(".stack/pki/ca.pem")
    # Only the development CA's key is here: it signs the dev server
    # certificate and enrolled devices' client certificates. Production keeps
    # its CA key elsewhere and leaves this file absent.
    ca_key_file: Path = Path(".stack/pki/ca.key")
    server_cert_file: Path = Path(".stack/pki/server.pem")
    server_key_file: Path = Path(".stack/pki/server.key")
    # Names the dev server certificate is valid for (DNS names or IP addresses).
    server_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost"])
    # One `<identity>.password` file per identity, owner-only (made by `stack up`).
    credentials_dir: Path = Path(".stack/secrets")
    # Production: per identity ("gateway", "worker", ...), a username and/or password.
    principals: dict[str, PrincipalCredentials] = Field(default_factory=dict)
    # SCRAM mechanism for Kafka SASL.
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
