"""python-etcd3 main's several-endpoints client: :class:`Endpoint` and
:class:`MultiEndpointEtcd3Client`, on top of :class:`~aetcd.compat.etcd3.client.Etcd3Client`."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import aetcd

from .client import Etcd3Client

__all__ = ["Endpoint", "MultiEndpointEtcd3Client"]


class Endpoint:
    """One etcd endpoint of a :class:`MultiEndpointEtcd3Client` (python-etcd3 main's).

    ``secure`` endpoints need ``creds``: an :class:`aetcd.TLS`, as returned by
    :meth:`MultiEndpointEtcd3Client.get_secure_creds` (a ``grpc.ChannelCredentials``
    is opaque, so it cannot be turned into aetcd's settings). ``time_retry`` and
    ``opts`` are accepted and ignored: aetcd backs off and tunes channels itself.
    """

    def __init__(
        self,
        host: str,
        port: int,
        secure: bool = True,
        creds: aetcd.TLS | None = None,
        time_retry: float = 300.0,
        opts: Iterable[tuple[str, Any]] | None = None,
    ) -> None:
        if secure and creds is None:
            raise ValueError("Please set TLS credentials for secure connections")
        if creds is not None and not isinstance(creds, aetcd.TLS):
            raise TypeError(
                "creds must be an aetcd.TLS (from MultiEndpointEtcd3Client.get_secure_creds), "
                f"not {type(creds).__name__}"
            )
        self.host = host
        self.port = port
        self.netloc = f"{host}:{port}"
        self.secure = secure
        self.protocol = "https" if secure else "http"
        self.credentials = creds
        self.time_retry = time_retry
        self.in_use = False
        self.last_failed = 0.0

    def __str__(self) -> str:
        return f"Endpoint({self.protocol}://{self.netloc})"

    @property
    def url(self) -> str:
        """The endpoint as aetcd takes it (``https://`` when secure)."""
        return f"https://{self.netloc}" if self.secure else self.netloc

    def close(self) -> None:
        """Nothing to close: the client owns the connections."""


class MultiEndpointEtcd3Client(Etcd3Client):
    """python-etcd3 main's client for several endpoints, with :class:`Etcd3Client`'s methods.

    With ``failover=True`` aetcd spreads calls over every endpoint and moves a
    call that cannot reach its member to another within the call's deadline
    (python-etcd3 failed the call and switched for the next one); with
    ``failover=False`` it uses one endpoint, chosen at random as python-etcd3 did.
    """

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        timeout: float | None = None,
        user: str | None = None,
        password: str | None = None,
        failover: bool = False,
    ) -> None:
        eps = list(endpoints)
        if not eps or not all(isinstance(e, Endpoint) for e in eps):
            raise ValueError("endpoints must be a non-empty list of Endpoint")
        secure = [e for e in eps if e.secure]
        tls = secure[0].credentials if secure else None
        if secure and (len(secure) != len(eps) or any(e.credentials != tls for e in secure)):
            # aetcd has one TLS setting per client.
            raise ValueError("every endpoint must be secure with the same creds, or none")
        self.failover = failover
        self.endpoints = {e.netloc: e for e in eps}
        self._current_endpoint_label = random.choice(list(self.endpoints))
        use = eps if failover else [self.endpoints[self._current_endpoint_label]]
        for e in use:
            e.in_use = True
        self._setup([e.url for e in use], tls, timeout, user, password)

    @property
    def endpoint_in_use(self) -> Endpoint:
        """The endpoint chosen first (with failover aetcd uses them all)."""
        chosen: Endpoint = self.endpoints[self._current_endpoint_label]
        return chosen

    @staticmethod
    def get_secure_creds(
        ca_cert: str, cert_key: str | None = None, cert_cert: str | None = None
    ) -> aetcd.TLS:
        """The ``creds`` of a secure :class:`Endpoint`: CA and optional client certificate paths."""
        return aetcd.TLS(ca=ca_cert, cert=cert_cert, key=cert_key)
