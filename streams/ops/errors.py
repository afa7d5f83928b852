"""Errors of the native stack."""

from analytics.errors import VitalstreamError


class StackError(VitalstreamError):
    """Root error of `vitalstream stack`."""

    retriable = False


class PortInUseError(StackError):
    def __init__(self, service: str, port: int) -> None:
        super().__init__(
            f"port {port} for {service} is already in use by another process; "
            f"stop it or choose another port (VITALSTREAM_STACK__*_PORT)"
        )
        self.service = service
        self.port = port


class ServiceNotReadyError(StackError):
    retriable = True


class SecurityConfigError(StackError):
    """A certificate, key or credential is missing or unusable: fix the configuration."""
