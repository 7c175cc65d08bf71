"""Validated, frozen client configuration: endpoints, TLS, limits, timeouts.

Secrets (passwords, private keys) are kept out of every ``repr``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NoReturn, final

import grpc

from ._keys import to_bytes, to_timeout
from .errors import InvalidArgumentError

__all__ = ["TLS", "ClientConfig", "Endpoint", "Secret"]

#: Default per-call deadline in seconds.
DEFAULT_TIMEOUT: Final = 5.0
#: etcd's default ``--max-txn-ops``.
DEFAULT_MAX_TXN_OPS: Final = 128
#: etcd's default ``--max-request-bytes`` (1.5 MiB).
DEFAULT_MAX_REQUEST_BYTES: Final = 1536 * 1024
#: The gRPC send limit, as in Go's client (server limit + 512 KiB overhead).
MAX_SEND_BYTES: Final = 2 * 1024 * 1024


@final
class Secret:
    """A password that shows as ``'***'`` in every ``repr``, ``str`` and log.

    :class:`aetcd.Client` wraps its password in one the moment it receives it
    and keeps only the wrapper, so error trackers that record the local
    variables of stack frames (Sentry's default) capture ``Secret('***')``,
    never the text; it is unwrapped only while the Authenticate request is
    serialised. Pass a ``Secret`` yourself (``password=aetcd.Secret(text)``) to
    keep the plain text out of your own frames too. It cannot be pickled.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            self._value = value._value
        elif isinstance(value, str):
            self._value = value
        else:
            # Never echo the value: it is a secret, even when it has the wrong type.
            raise TypeError(f"a password must be str, not {type(value).__name__}")

    def reveal(self) -> str:
        """The plain text (keep the result out of variables that outlive its use)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("an aetcd.Secret cannot be pickled")


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


class _Names(Mapping[str, str]):
    """A read-only ``{"host:port": server name}``; unlike a mappingproxy it can be copied."""

    __slots__ = ("_names",)

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = dict(names)

    def __getitem__(self, key: str) -> str:
        return self._names[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return repr(self._names)


@dataclass(frozen=True, slots=True)
class TLS:
    """TLS settings: CA bundle, optional client certificate (mTLS), server names.

    ``ca``, ``cert`` and ``key`` are file paths or PEM ``bytes``. Without ``ca``
    the system roots are used. Each endpoint's certificate is checked against
    the endpoint's own host (name or IP address) unless overridden:
    ``server_name`` overrides it for every endpoint (endpoints given as IP
    addresses, certificates naming a host), ``server_names`` per endpoint,
    keyed by ``"host:port"`` as written in the endpoint list (it wins over
    ``server_name``). The client never falls back to plaintext: a failed
    handshake is an error.
    """

    ca: str | os.PathLike[str] | bytes | None = None
    cert: str | os.PathLike[str] | bytes | None = None
    key: str | os.PathLike[str] | bytes | None = field(default=None, repr=False)
    server_name: str | None = None
    server_names: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise InvalidArgumentError("TLS cert and key must be given together")
        if self.server_name is not None and (
            not isinstance(self.server_name, str) or not self.server_name
        ):
            raise TypeError("TLS server_name must be a non-empty str")
        if not isinstance(self.server_names, Mapping):
            raise TypeError("TLS server_names must be a mapping of 'host:port' to a name")
        names: dict[str, str] = {}
        for endpoint, name in self.server_names.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"TLS server_names[{endpoint!r}] must be a non-empty str")
            names[Endpoint.parse(endpoint).address] = name
        # A read-only copy: the settings stay frozen even if the caller's dict changes.
        object.__setattr__(self, "server_names", _Names(names))

    def name_for(self, endpoint: Endpoint) -> str | None:
        """The name to check *endpoint*'s certificate against, if overridden."""
        return self.server_names.get(endpoint.address, self.server_name)

    def _credentials(self) -> grpc.ChannelCredentials:
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
                f"endpoint {text!r} must look like host:port, http://host:port or https://host:port"
            )
        port = int(port_text)
        if not 0 < port < 65536:
            raise InvalidArgumentError(f"endpoint {text!r}: port out of range")
        return cls(host, port, secure)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a :class:`aetcd.Client` is configured with, validated however it is built."""

    endpoints: tuple[Endpoint, ...]
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    tls: TLS | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    connect_timeout: float | None = None
    max_txn_ops: int = DEFAULT_MAX_TXN_OPS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    keepalive_time: float = 10.0
    keepalive_timeout: float = 5.0
    namespace: bytes = b""
    auto_sync_interval: float | None = None
    require_leader: bool | None = None

    @classmethod
    def build(
        cls,
        endpoints: str | Sequence[str],
        *,
        username: str | None = None,
        password: str | Secret | None = None,
        tls: TLS | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        keepalive_time: float = 10.0,
        keepalive_timeout: float = 5.0,
        namespace: str | bytes = b"",
        auto_sync_interval: float | None = None,
        require_leader: bool | None = None,
    ) -> ClientConfig:
        """Normalise and validate user settings (raising before any I/O), and freeze them.

        ``connect_timeout`` (seconds, off by default) bounds, apart from the
        calls' own ``timeout``, how long opening the client (``async with``, or
        the first call) waits for a first connection, like Go's
        ``DialTimeout``: :class:`aetcd.ConnectionFailedError` when no endpoint
        is reachable by then. Off, a call made before any connection is up
        waits for one within its own timeout.

        ``auto_sync_interval`` (seconds, off by default) refreshes the endpoint
        list from the cluster's member list that often, like Go's
        ``AutoSyncInterval``; use it only when the members' advertised client
        URLs are reachable from this client.

        ``require_leader`` says when KV writes, linearizable reads and lease
        calls carry etcd's ``hasleader`` check (a member without a leader then
        refuses them at once, provably unapplied, instead of letting them hang
        until the deadline): ``True`` always, ``False`` never (Go's default),
        ``None`` (default) while the client has seen trouble in the last 30 s
        (a failed or timed-out call, a broken stream, a member without a
        leader). The check costs 5-10 us of client CPU per call, so a healthy
        cluster does not pay it. Watch and keep-alive streams always carry it.
        """
        # The plain text must not stay in this frame's locals (see Secret).
        password = None if password is None else Secret(password)
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        eps = tuple(Endpoint.parse(e) for e in endpoints)
        return cls(
            endpoints=eps,
            username=username,
            password=password,
            tls=tls,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_txn_ops=max_txn_ops,
            max_request_bytes=max_request_bytes,
            keepalive_time=keepalive_time,
            keepalive_timeout=keepalive_timeout,
            namespace=to_bytes(namespace, "namespace"),
            auto_sync_interval=auto_sync_interval,
            require_leader=require_leader,
        )

    def __post_init__(self) -> None:
        """Check every setting (before any I/O), also when built directly.

        :meth:`build` normalises what users type (endpoint strings, a plain
        password, a str namespace); the checks live here so that a
        ``ClientConfig(...)`` made by hand (or by ``dataclasses.replace``)
        cannot hold a setting ``build`` would refuse. Timeouts are stored as
        seconds, ``None`` for no deadline (``math.inf`` becomes ``None``).
        """
        eps = self.endpoints
        if not isinstance(eps, tuple) or not all(isinstance(e, Endpoint) for e in eps):
            raise TypeError(
                "endpoints must be a tuple of Endpoint (ClientConfig.build parses strings)"
            )
        if not eps:
            raise InvalidArgumentError("at least one endpoint is required")
        if len({e.secure for e in eps}) > 1:
            raise InvalidArgumentError("endpoints mix http:// and https://")
        tls = self.tls
        if tls is not None and not isinstance(tls, TLS):
            raise TypeError(f"tls must be an aetcd.TLS, not {type(tls).__name__}")
        if eps[0].secure and tls is None:
            object.__setattr__(self, "tls", TLS())
        username, password = self.username, self.password
        if (username is None) != (password is None):
            raise InvalidArgumentError("username and password must be given together")
        if username is not None and (not isinstance(username, str) or not username):
            raise InvalidArgumentError("username must be a non-empty str")
        if password is not None and not isinstance(password, Secret):
            raise TypeError("password must be an aetcd.Secret (ClientConfig.build wraps a str)")
        for name in ("max_txn_ops", "max_request_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidArgumentError(f"{name} must be a positive int")
        if self.max_request_bytes > MAX_SEND_BYTES:
            raise InvalidArgumentError(
                f"max_request_bytes must not exceed the send limit {MAX_SEND_BYTES}"
            )
        ka_time = to_timeout(self.keepalive_time, "keepalive_time")
        ka_timeout = to_timeout(self.keepalive_timeout, "keepalive_timeout")
        if ka_time is None or ka_timeout is None or ka_time < 5.0:
            # etcd answers pings more often than every 5 s with GOAWAY too_many_pings.
            raise InvalidArgumentError("keepalive_time must be finite and >= 5 s")
        sync = self.auto_sync_interval
        if sync is not None:
            sync = to_timeout(sync, "auto_sync_interval")
            if sync is None or sync < 0.1:
                raise InvalidArgumentError("auto_sync_interval must be finite and >= 0.1 s")
        dial = self.connect_timeout
        if dial is not None:
            dial = to_timeout(dial, "connect_timeout")
        if self.require_leader is not None and type(self.require_leader) is not bool:
            raise TypeError("require_leader must be True, False or None")
        if not isinstance(self.namespace, bytes):
            raise TypeError("namespace must be bytes (ClientConfig.build encodes a str)")
        timeout = None if self.timeout is None else to_timeout(self.timeout)
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", dial),
            ("keepalive_time", ka_time),
            ("keepalive_timeout", ka_timeout),
            ("auto_sync_interval", sync),
        ):
            object.__setattr__(self, name, value)

    def channel_options(self, endpoint: Endpoint | None = None) -> list[tuple[str, int | str]]:
        """gRPC channel arguments (reliability notes §1.4) for a channel to *endpoint*."""
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
            # A host name may resolve to several addresses: use every one that answers.
            ("grpc.lb_policy_name", "round_robin"),
            # A member that was down comes back within 2 s of listening again, not
            # after gRPC's default backoff of up to 120 s.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
            # A connection attempt that hangs (a blackholed peer) is abandoned after
            # 5 s and retried, instead of after gRPC's default 20 s.
            ("grpc.min_reconnect_backoff_ms", 5000),
        ]
        if self.tls is not None:
            name = self.tls.name_for(endpoint) if endpoint is not None else self.tls.server_name
            if name:
                options.append(("grpc.ssl_target_name_override", name))
        return options
