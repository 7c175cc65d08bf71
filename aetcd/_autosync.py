"""Endpoint auto-sync: replace the client's endpoint list with the members'
advertised client URLs, now (``Client.sync_endpoints``) or every
``auto_sync_interval`` seconds (as Go's ``AutoSyncInterval``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ._members import Member
from ._state import State
from ._wire import messages as pb
from .config import Endpoint
from .errors import EtcdError

if TYPE_CHECKING:
    from ._channel import Transport

_log = logging.getLogger("aetcd")


async def sync_loop(t: Transport, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await sync_endpoints(t)
        except EtcdError as exc:
            _log.info("aetcd: endpoint auto-sync failed (%s); keeping the current list", exc)


async def sync_endpoints(t: Transport) -> list[Endpoint]:
    """Replace the endpoint list with the members' advertised client URLs.

    Learners and members not started yet are left out (as in Go's
    ``Sync``), and so are URLs whose scheme does not match this client's
    TLS setting. Members that left are closed (their streams move to
    others); the list is never emptied. Returns the new list.
    """
    response = await t.unary(t.cluster.MemberList, pb.MemberListRequest(), None, write=False)
    secure = t.config.tls is not None
    found: list[Endpoint] = []
    for m in response.members:
        if not m.name or m.isLearner:
            continue
        for url in m.clientURLs:
            try:
                ep = Endpoint.parse(url)
            except (EtcdError, TypeError):
                continue
            if ep.secure == secure and ep not in found:
                found.append(ep)
    if not found or t.state is not State.OPENED:
        return t.endpoints
    keep: dict[str, Member | None] = {m.endpoint.address: m for m in t.members}
    new = [keep.pop(ep.address, None) or t.new_member(ep) for ep in found]
    for member in new:
        member.state(connect=True)
    t.members = new
    for gone in filter(None, keep.values()):
        _log.info("aetcd: endpoint %s left the member list", gone.endpoint.address)
        await gone.channel.close(grace=None)
    return t.endpoints
