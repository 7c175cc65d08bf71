"""The Cluster facade: list, add, remove, update and promote members.

Membership changes are writes: one that fails in transit raises
:class:`aetcd.OutcomeUnknownError` and is never retried (re-read
:meth:`ClusterAPI.members` to see what happened). Refusals by etcd (unknown
member, duplicate peer URL, promoting a learner that is not in sync...) raise
:class:`aetcd.ClusterError` with etcd's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from ._channel import Transport
from ._keys import to_int
from ._wire import messages as pb
from ._wire.decode import member
from .errors import InvalidArgumentError
from .types import Member

__all__ = ["ClusterAPI"]

#: Member ids are raft ids: unsigned 64-bit integers.
UINT64_MAX: Final = 2**64 - 1

_URL_SCHEMES: Final = frozenset({"http", "https", "unix", "unixs"})


def _to_member_id(value: object, name: str = "id") -> int:
    """Check a member id: an ``int`` (not ``bool``) in 1..2**64-1."""
    return to_int(value, name, minimum=1, maximum=UINT64_MAX)


def _to_peer_urls(value: object) -> list[str]:
    """Check peer URLs: one URL or a non-empty sequence of them, like
    ``http://10.0.0.1:2380``."""
    urls: Sequence[object]
    if isinstance(value, str):
        urls = [value]
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        urls = value
    else:
        raise TypeError(f"peer_urls must be a list of str, not {type(value).__name__}")
    if not urls:
        raise InvalidArgumentError("peer_urls must not be empty")
    out: list[str] = []
    for url in urls:
        if not isinstance(url, str):
            raise TypeError(f"peer_urls must hold str, not {type(url).__name__}")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidArgumentError(f"peer URL {url!r} is malformed: {exc}") from None
        if parts.scheme not in _URL_SCHEMES or not parts.hostname:
            raise InvalidArgumentError(
                f"peer URL {url!r} must look like http://host:port or https://host:port"
            )
        if parts.scheme in ("http", "https") and port is None:
            raise InvalidArgumentError(f"peer URL {url!r} has no port")
        out.append(url)
    return out


class ClusterAPI:
    """Cluster operations of :class:`aetcd.Client` (etcd's Cluster service)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    async def members(
        self, *, linearizable: bool = False, timeout: float | None = None
    ) -> list[Member]:
        """List the cluster's members.

        By default the answering member replies from its own view, which can
        lag a very recent change; ``linearizable=True`` goes through consensus
        so the list includes every committed change (it needs a leader).
        """
        if type(linearizable) is not bool:
            raise TypeError(f"linearizable must be bool, not {type(linearizable).__name__}")
        t = self._t
        req = pb.MemberListRequest(linearizable=linearizable)
        resp = await t.unary(t.cluster.MemberList, req, timeout, write=False)
        return [member(m) for m in resp.members]

    async def member_add(
        self,
        peer_urls: str | Sequence[str],
        *,
        learner: bool = False,
        timeout: float | None = None,
    ) -> Member:
        """Add a member that will listen on *peer_urls*; return it (with its new id).

        Start the new etcd process afterwards with ``--initial-cluster-state
        existing``. Prefer ``learner=True``: a learner does not vote, so adding
        it cannot cost quorum while it catches up; :meth:`member_promote` it
        once in sync. Raises :class:`aetcd.ClusterError` if a member already
        uses one of the URLs, :class:`aetcd.InvalidArgumentError` for bad URLs.
        """
        urls = _to_peer_urls(peer_urls)
        if type(learner) is not bool:
            raise TypeError(f"learner must be bool, not {type(learner).__name__}")
        t = self._t
        req = pb.MemberAddRequest(peerURLs=urls, isLearner=learner)
        resp = await t.unary(t.cluster.MemberAdd, req, timeout, write=True)
        return member(resp.member)

    async def member_remove(self, id: int, *, timeout: float | None = None) -> list[Member]:
        """Remove member *id* from the cluster; return the members left.

        Raises :class:`aetcd.ClusterError` (``etcdserver: member not found``)
        for an unknown id, and refuses removals that would lose quorum of the
        started members.
        """
        member_id = _to_member_id(id)
        t = self._t
        req = pb.MemberRemoveRequest(ID=member_id)
        resp = await t.unary(t.cluster.MemberRemove, req, timeout, write=True)
        return [member(m) for m in resp.members]

    async def member_update(
        self, id: int, peer_urls: str | Sequence[str], *, timeout: float | None = None
    ) -> list[Member]:
        """Replace the peer URLs of member *id*; return the members afterwards.

        Raises :class:`aetcd.ClusterError` for an unknown id or a URL already
        used by another member.
        """
        member_id = _to_member_id(id)
        urls = _to_peer_urls(peer_urls)
        t = self._t
        req = pb.MemberUpdateRequest(ID=member_id, peerURLs=urls)
        resp = await t.unary(t.cluster.MemberUpdate, req, timeout, write=True)
        return [member(m) for m in resp.members]

    async def member_promote(self, id: int, *, timeout: float | None = None) -> list[Member]:
        """Make learner *id* a voting member; return the members afterwards.

        etcd only promotes a started learner whose log has caught up with the
        leader's; otherwise (or for a voting member or an unknown id) it raises
        :class:`aetcd.ClusterError`. Retry later if it is still catching up.
        """
        member_id = _to_member_id(id)
        t = self._t
        req = pb.MemberPromoteRequest(ID=member_id)
        resp = await t.unary(t.cluster.MemberPromote, req, timeout, write=True)
        return [member(m) for m in resp.members]
