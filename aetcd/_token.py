"""The auth token: the Authenticate request with its password kept wrapped, and
getting a fresh token (once per expiry, however many calls noticed it).

The token itself lives in the transport's metadata (``Transport.metadata``);
the transport refreshes it when a call is refused for one of ``REFRESH_TOKEN``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from ._wire import messages as pb
from .config import Secret
from .errors import DeadlineExceededError, EtcdError

if TYPE_CHECKING:
    from ._channel import Transport

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


async def authenticate(t: Transport, timeout: float | None = None) -> None:
    """Get a fresh token with the configured user and password.

    *timeout*: the caller's remaining time, which bounds waiting for a
    refresh another task runs too (default: the client's timeout).
    """
    if t._token_lock is None:
        t._token_lock = asyncio.Lock()
    if timeout is None:
        timeout = t.config.timeout
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    generation = t._token_generation
    try:
        async with asyncio.timeout_at(deadline):
            await t._token_lock.acquire()
    except TimeoutError:
        raise DeadlineExceededError(
            "the deadline passed while another task was refreshing the auth token"
        ) from None
    try:
        if generation != t._token_generation:
            return  # another task refreshed it while we waited
        request = Credentials(t.config.username or "", t.config.password or Secret(""))
        left = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            # Retried like a read (a spare token is harmless); never refreshed.
            response = await t._call(t.auth.Authenticate, request, left, write=False, refresh=False)
        except EtcdError as exc:
            if exc.message == AUTH_NOT_ENABLED:
                # Auth is off on the server (or was just disabled): no token
                # is needed, as in Go's getToken.
                t._set_token(None)
                t._token_generation += 1
                return
            exc.__cause__ = None  # the gRPC error adds nothing, and stays out of logs
            raise
        t._set_token(response.token)
        t._token_generation += 1
    finally:
        t._token_lock.release()
