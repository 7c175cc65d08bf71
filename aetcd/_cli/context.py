"""What every command handler gets: the resolved global options and a lazy client.

A leaf of the CLI: the entry point (:mod:`aetcd._cli.app`) builds a :class:`Context`
and the command modules take one, so neither imports the other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..client import Client
from ..config import TLS, Secret
from ..errors import EtcdError
from .common import UsageError
from .output import Output

DEFAULT_ENDPOINT = "127.0.0.1:2379"
DEFAULT_COMMAND_TIMEOUT = 5.0
DEFAULT_DIAL_TIMEOUT = 2.0


@dataclass(frozen=True)
class Settings:
    """The resolved global options."""

    endpoints: list[str]
    endpoints_given: bool = False
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    user: str | None = None
    password: Secret | None = field(default=None, repr=False)
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    dial_timeout: float = DEFAULT_DIAL_TIMEOUT
    write_out: str = "simple"
    hex: bool = False

    @property
    def tls(self) -> TLS | None:
        """TLS settings when any certificate file was given."""
        if self.cacert is None and self.cert is None and self.key is None:
            return None
        if (self.cert is None) != (self.key is None):
            raise UsageError("--cert and --key must be given together")
        return TLS(ca=self.cacert, cert=self.cert, key=self.key)


class Context:
    """What a command handler gets: the settings, the output and (lazily) clients."""

    def __init__(self, settings: Settings, out: Output) -> None:
        self.settings = settings
        self.out = out
        self.signal: int | None = None  #: the signal that is ending the command, if any
        self._client: Client | None = None
        self._others: list[Client] = []

    def _make(self, endpoints: Sequence[str]) -> Client:
        s = self.settings
        try:
            return Client(
                list(endpoints),
                username=s.user,
                password=s.password if s.user is not None else None,
                tls=s.tls,
                # As in etcdctl: the dial and each request have their own deadline.
                timeout=s.command_timeout,
                connect_timeout=s.dial_timeout,
            )
        except EtcdError as exc:  # bad endpoint syntax and the like
            raise UsageError(exc.message) from None

    @property
    def client(self) -> Client:
        """The client for ``--endpoints``, created on first use."""
        if self._client is None:
            self._client = self._make(self.settings.endpoints)
        return self._client

    def member_client(self, endpoint: str) -> Client:
        """A client for one endpoint only (closed with the context)."""
        client = self._make([endpoint])
        self._others.append(client)
        return client

    async def close(self) -> None:
        """Close every client."""
        clients = [c for c in (self._client, *self._others) if c is not None]
        self._client = None
        self._others = []
        for client in clients:
            with contextlib.suppress(EtcdError):
                await client.close()
