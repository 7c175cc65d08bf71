"""Validated, frozen client configuration: endpoints, TLS, limits, timeouts.

Secrets (passwords, private keys) are kept out of every ``repr``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import grpc

from ._keys import to_bytes, to_timeout
from .errors import InvalidArgumentError

__all__ = ["TLS", "ClientConfig", "Endpoint"]

#: Default per-call deadline in seconds.
DEFAULT_TIMEOUT: Final = 5.0
#: etcd's default ``--max-txn-ops``.
DEFAULT_MAX_TXN_OPS: Final = 128
#: etcd's default ``--max-request-bytes`` (1.5 MiB).
DEFAULT_MAX_REQUEST_BYTES: Final = 1536 * 1024
#: The gRPC send limit, as in Go's client (server limit + 512 KiB overhead).
MAX_SEND_BYTES: Final = 2 * 1024 * 1024


def _read(value: str | os.PathLike[str] | bytes | None, name: str) -> bytes | None:
    """PEM data: ``bytes`` are used as they are; a ``str`` or path is a file to read."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str | os.PathLike):
        try:
            with open(value, "rb") as f:
                return f.read()
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read TLS {name} file {value!r}: {exc}") from exc
    raise TypeError(f"TLS {name} must be a path or PEM bytes, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class TLS:
    """TLS settings: CA bundle, optional client certificate (mTLS), server name.

    ``ca``, ``cert`` and ``key`` are file paths or PEM ``bytes``. Without ``ca``
    the system roots are used. ``server_name`` overrides the name checked
    against the server's certificate (needed when endpoints are IP addresses
    and the certificate names a host).
    """

    ca: str | os.PathLike[str] | bytes | None = None
    cert: str | os.PathLike[str] | bytes | None = None
    key: str | os.PathLike[str] | bytes | None = field(default=None, repr=False)
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise InvalidArgumentError("TLS cert and key must be given together")
        if self.server_name is not None and not isinstance(self.server_name, str):
            raise TypeError("TLS server_name must be str")

    def credentials(self) -> grpc.ChannelCredentials:
        """Build the gRPC channel credentials (reads the files now)."""
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "ca"),
            private_key=_read(self.key, "key"),
            certificate_chain=_read(self.cert, "cert"),
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One etcd member address; ``secure`` is True for ``https://``."""

    host: str
    port: int
    secure: bool

    @property
    def address(self) -> str:
        """``host:port``, with IPv6 hosts in brackets."""
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @classmethod
    def parse(cls, text: object) -> Endpoint:
        """Parse ``host:port``, ``http://host:port`` or ``https://host:port``."""
        if not isinstance(text, str):
            raise TypeError(f"an endpoint must be str, not {type(text).__name__}")
        rest = text.strip()
        secure = False
        if "://" in rest:
            scheme, rest = rest.split("://", 1)
            if scheme not in ("http", "https"):
                raise InvalidArgumentError(f"endpoint {text!r}: scheme must be http or https")
            secure = scheme == "https"
        rest = rest.rstrip("/")
        if rest.startswith("["):
            host, sep, port_text = rest[1:].partition("]:")
        else:
            host, sep, port_text = rest.rpartition(":")
        if not sep or not host or "/" in rest or not port_text.isdigit():
            raise InvalidArgumentError(
                f"endpoint {text!r} must look like host:port, http://host:port "
                "or https://host:port"
            )
        port = int(port_text)
        if not 0 < port < 65536:
            raise InvalidArgumentError(f"endpoint {text!r}: port out of range")
        return cls(host, port, secure)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a :class:`aetcd.Client` is configured with, validated."""

    endpoints: tuple[Endpoint, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TLS | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    max_txn_ops: int = DEFAULT_MAX_TXN_OPS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    keepalive_time: float = 10.0
    keepalive_timeout: float = 5.0
    namespace: bytes = b""

    @classmethod
    def build(
        cls,
        endpoints: str | Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        tls: TLS | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        keepalive_time: float = 10.0,
        keepalive_timeout: float = 5.0,
        namespace: str | bytes = b"",
    ) -> ClientConfig:
        """Validate user settings (raising before any I/O) and freeze them."""
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        eps = tuple(Endpoint.parse(e) for e in endpoints)
        if not eps:
            raise InvalidArgumentError("at least one endpoint is required")
        if len({e.secure for e in eps}) > 1:
            raise InvalidArgumentError("endpoints mix http:// and https://")
        if tls is not None and not isinstance(tls, TLS):
            raise TypeError(f"tls must be an aetcd.TLS, not {type(tls).__name__}")
        if eps[0].secure and tls is None:
            tls = TLS()
        if (username is None) != (password is None):
            raise InvalidArgumentError("username and password must be given together")
        if username is not None and (not isinstance(username, str) or not username):
            raise InvalidArgumentError("username must be a non-empty str")
        if password is not None and not isinstance(password, str):
            raise TypeError("password must be str")
        for name, value in (("max_txn_ops", max_txn_ops), ("max_request_bytes", max_request_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidArgumentError(f"{name} must be a positive int")
        if max_request_bytes > MAX_SEND_BYTES:
            raise InvalidArgumentError(
                f"max_request_bytes must not exceed the send limit {MAX_SEND_BYTES}"
            )
        ka_time = to_timeout(keepalive_time, "keepalive_time")
        ka_timeout = to_timeout(keepalive_timeout, "keepalive_timeout")
        if ka_time is None or ka_timeout is None or ka_time < 5.0:
            # etcd answers pings more often than every 5 s with GOAWAY too_many_pings.
            raise InvalidArgumentError("keepalive_time must be finite and >= 5 s")
        return cls(
            endpoints=eps,
            username=username,
            password=password,
            tls=tls,
            timeout=to_timeout(timeout),
            max_txn_ops=max_txn_ops,
            max_request_bytes=max_request_bytes,
            keepalive_time=ka_time,
            keepalive_timeout=ka_timeout,
            namespace=to_bytes(namespace, "namespace"),
        )

    def channel_options(self) -> list[tuple[str, int | str]]:
        """gRPC channel arguments (reliability notes §1.4)."""
        ms = int(self.keepalive_timeout * 1000)
        options: list[tuple[str, int | str]] = [
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.max_receive_message_length", -1),
            ("grpc.keepalive_time_ms", int(self.keepalive_time * 1000)),
            ("grpc.keepalive_timeout_ms", ms),
            ("grpc.http2.ping_timeout_ms", ms),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.enable_retries", 0),
            ("grpc.lb_policy_name", "round_robin"),
        ]
        if self.tls is not None and self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        return options
