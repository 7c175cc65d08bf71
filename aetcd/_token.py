"""The auth token: the Authenticate request with its password kept wrapped, and
getting a fresh token (once per expiry, however many calls noticed it).

The token itself lives in the transport's metadata (``Transport.metadata``);
the transport refreshes it (:meth:`Token.refresh`) when a call is refused for
one of ``REFRESH_TOKEN``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from ._wire import messages as pb
from .config import ClientConfig, Secret
from .errors import DeadlineExceededError, EtcdError

# Server messages after which a fresh token and one more try can succeed.
REFRESH_TOKEN: Final = frozenset(
    {
        "etcdserver: invalid auth token",
        "etcdserver: revision of auth store is old",
        "etcdserver: user name is empty",
    }
)
AUTH_NOT_ENABLED: Final = "etcdserver: authentication is not enabled"


class Credentials:
    """The request of an Authenticate call, with the password kept wrapped.

    A protobuf ``AuthenticateRequest`` would hold the plain password in every
    frame it passes through (and show it in its ``repr``); this is serialised
    straight to bytes by the Authenticate method's serializer instead.
    """

    __slots__ = ("name", "password")

    def __init__(self, name: str, password: Secret) -> None:
        self.name = name
        self.password = password

    def __repr__(self) -> str:
        return f"Credentials(name={self.name!r}, password={self.password!r})"


def serialize_authenticate(request: Credentials | pb.AuthenticateRequest) -> bytes:
    if isinstance(request, Credentials):
        return pb.AuthenticateRequest(
            name=request.name, password=request.password.reveal()
        ).SerializeToString()
    return request.SerializeToString()


class Token:
    """The auth token's refresh: one Authenticate call per expiry, however many
    calls noticed it.

    Owned by the transport, which hands it what it needs and nothing more:
    *send* runs the Authenticate call (with the transport's deadline and retry
    policy, never itself refreshing) and *apply* puts a token (``None``: none)
    into the metadata of every later call.
    """

    __slots__ = ("_apply", "_config", "_lock", "_send", "generation")

    def __init__(
        self,
        config: ClientConfig,
        send: Callable[[Credentials, float | None], Awaitable[pb.AuthenticateResponse]],
        apply: Callable[[str | None], None],
    ) -> None:
        self._config = config
        self._send = send
        self._apply = apply
        self._lock: asyncio.Lock | None = None  # made on first use, in the running loop
        #: how many refreshes have completed (a waiter that sees it move skips its own)
        self.generation = 0

    async def refresh(self, timeout: float | None = None) -> None:
        """Get a fresh token with the configured user and password.

        *timeout*: the caller's remaining time, which bounds waiting for a
        refresh another task runs too (default: the client's timeout).
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        config = self._config
        if timeout is None:
            timeout = config.timeout
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        generation = self.generation
        try:
            async with asyncio.timeout_at(deadline):
                await self._lock.acquire()
        except TimeoutError:
            raise DeadlineExceededError(
                "the deadline passed while another task was refreshing the auth token"
            ) from None
        try:
            if generation != self.generation:
                return  # another task refreshed it while we waited
            request = Credentials(config.username or "", config.password or Secret(""))
            left = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                # Retried like a read (a spare token is harmless); never refreshed.
                response = await self._send(request, left)
            except EtcdError as exc:
                if exc.message == AUTH_NOT_ENABLED:
                    # Auth is off on the server (or was just disabled): no token
                    # is needed, as in Go's getToken.
                    self._apply(None)
                    self.generation += 1
                    return
                exc.__cause__ = None  # the gRPC error adds nothing, and stays out of logs
                raise
            self._apply(response.token)
            self.generation += 1
        finally:
            self._lock.release()
