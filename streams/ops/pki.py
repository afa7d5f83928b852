"""The development PKI: a CA and the server certificate every native service presents.

`vitalstream stack up` calls `ensure_dev_pki`: it creates, at the paths of
`settings.security`, a CA (`ca.pem`, `ca.key`) and a server certificate for
`server_hosts` (127.0.0.1 and localhost), all owner-only. Kafka, Mosquitto
and the HTTPS endpoints present that certificate; every client verifies it
against `ca_file`. Enrollment signs devices' client certificates with the
same CA (`issue_certificate`).

Keys are ECDSA P-256: a TLS handshake costs the server a fraction of an RSA
one, which matters with thousands of devices reconnecting. The private keys
are unencrypted PKCS#8, the one format Kafka's PEM key store, OpenSSL
(Mosquitto) and Python's ssl module all read.

Production sets the paths to its own PKI; an existing server certificate
that is not the dev CA's is never replaced (`ensure_dev_pki` only fills in
what is missing, or renews the dev CA's own certificates near expiry).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from streams.ops.credentials import write_owner_only
from streams.ops.errors import SecurityConfigError
from streams.security_settings import SecuritySettings

CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 397  # the longest validity browsers accept for a server certificate
RENEW_BEFORE_DAYS = 30
CA_COMMON_NAME = "vitalstream development CA"
SERVER_COMMON_NAME = "vitalstream-services"


@dataclass(frozen=True)
class IssuedCertificate:
    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(hosts: list[str] | tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _make_ca() -> IssuedCertificate:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCertificate(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _load_ca(sec: SecuritySettings) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        ca_cert = x509.load_pem_x509_certificate(sec.ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key(sec.ca_key_file.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise SecurityConfigError(
            f"the CA's certificate or key is missing ({exc.filename}); `vitalstream stack up` "
            "creates a development CA, production signs with its own") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise SecurityConfigError(f"{sec.ca_key_file}: expected an EC private key")
    return ca_cert, ca_key


def issue_certificate(sec: SecuritySettings, common_name: str, *, hosts: tuple[str, ...] = (),
                      server: bool = False, client: bool = True,
                      valid_days: int = SERVER_VALID_DAYS) -> IssuedCertificate:
    """A certificate signed by the CA at `sec.ca_file`/`ca_key_file` (a device, a service)."""
    ca_cert, ca_key = _load_ca(sec)
    key = _new_key()
    now = _now()
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=valid_days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=False, crl_sign=False, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return IssuedCertificate(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _server_needs_new(sec: SecuritySettings, ca_cert: x509.Certificate) -> bool:
    """Missing, or ours and near expiry, issued by another CA or for other hosts."""
    if not (sec.server_cert_file.exists() and sec.server_key_file.exists()):
        return True
    cert = x509.load_pem_x509_certificate(sec.server_cert_file.read_bytes())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False  # the operator's certificate: not ours to replace
    if cert.not_valid_after_utc - _now() < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return True
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    return set(sans) != set(_san(sec.server_hosts))


def ensure_dev_pki(sec: SecuritySettings) -> list[str]:
    """Create the dev CA and server certificate where missing; returns the files written."""
    written = []
    for directory in {sec.ca_file.parent, sec.server_cert_file.parent}:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not sec.ca_file.exists():
        if sec.server_cert_file.exists():
            raise SecurityConfigError(
                f"{sec.server_cert_file} exists but its CA {sec.ca_file} does not; "
                "set VITALSTREAM_SECURITY__CA_FILE, or delete both to make a new dev CA")
        ca = _make_ca()
        write_owner_only(sec.ca_key_file, ca.key_pem)
        write_owner_only(sec.ca_file, ca.cert_pem)
        written += [str(sec.ca_key_file), str(sec.ca_file)]
    ca_cert = x509.load_pem_x509_certificate(sec.ca_file.read_bytes())
    if _server_needs_new(sec, ca_cert):
        issued = issue_certificate(sec, SERVER_COMMON_NAME, hosts=tuple(sec.server_hosts),
                                   server=True, client=True)
        write_owner_only(sec.server_key_file, issued.key_pem)
        write_owner_only(sec.server_cert_file, issued.cert_pem)
        written += [str(sec.server_key_file), str(sec.server_cert_file)]
    return written


def client_ssl_context(sec: SecuritySettings) -> ssl.SSLContext:
    """Verifies the server against the CA (hostname included), TLS 1.2 or later."""
    if not sec.ca_file.exists():
        raise SecurityConfigError(
            f"CA file {sec.ca_file} is missing: run `vitalstream stack up` (development) "
            "or set VITALSTREAM_SECURITY__CA_FILE")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(sec.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def server_ssl_context(sec: SecuritySettings) -> ssl.SSLContext:
    """For an HTTPS (or other TLS) server presenting the configured server certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(sec.server_cert_file), str(sec.server_key_file))
    except (FileNotFoundError, ssl.SSLError) as exc:
        raise SecurityConfigError(
            f"cannot load the server certificate {sec.server_cert_file} / key "
            f"{sec.server_key_file}: {exc}") from None
    return context
