"""E-mail channel: stdlib smtplib, in a worker thread (no extra dependency).

One SMTP session per message: pages are rare and a long-lived connection
would be dropped by most relays anyway. 4xx replies and network errors are
retried; 5xx (permanent) replies are not.

TLS (`tls`): `starttls` (the default; a relay that does not offer STARTTLS is
a permanent failure, never a fallback to plain text) or `implicit` (SMTPS,
port 465), both verifying the relay's certificate and host name against the
system's trust store or `ca_file`; `none` only where explicitly configured.
Credentials are sent only inside TLS.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from streams.notify.errors import DeliveryError
from streams.notify.message import Notification
from streams.notify.routing import Target


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    from_addr: str
    username: str | None = None
    password: str | None = None
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    timeout_s: float = 10.0
    ca_file: Path | None = None  # None: the system's trust store

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context  # check_hostname and CERT_REQUIRED are the defaults


class EmailChannel:
    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def build(self, target: Target, notification: Notification,
              idempotency_key: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.config.from_addr
        msg["To"] = target.address
        msg["Subject"] = _header(notification.subject())
        # Stable per page: mail clients thread and de-duplicate on it.
        msg["Message-ID"] = f"<{_safe(idempotency_key)}@vitalstream>"
        if notification.ref:
            msg["X-Vitalstream-Ref"] = _header(notification.ref)
        msg.set_content(notification.text())
        return msg

    async def send(self, target: Target, notification: Notification,
                   idempotency_key: str) -> None:
        msg = self.build(target, notification, idempotency_key)
        await asyncio.to_thread(self._send_blocking, msg)

    def _send_blocking(self, msg: EmailMessage) -> None:
        c = self.config
        try:
            smtp: smtplib.SMTP
            if c.tls == "implicit":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s,
                                        context=c.tls_context())
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
            with smtp:
                if c.tls == "starttls":
                    smtp.starttls(context=c.tls_context())
                if c.username:
                    smtp.login(c.username, c.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS: never send in clear
            raise DeliveryError("SMTP relay does not offer STARTTLS", retriable=False) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"SMTP relay certificate not trusted: {exc.verify_message}",
                                retriable=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code}", retriable=exc.smtp_code < 500) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"SMTP recipients refused {codes}",
                                retriable=all(code < 500 for code in codes)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP unreachable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        pass


def _header(text: str) -> str:
    """A header value from data (ward, bed, rule): a CR or LF would end the
    header (email refuses it, or worse, a relay reads a new header), so
    control characters become spaces."""
    return "".join(" " if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "-" for ch in text)
