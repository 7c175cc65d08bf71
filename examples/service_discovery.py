"""Service registration and discovery feeding a client's endpoint list.

Three instances of a tiny TCP echo service start on loopback ports and each
registers itself with ``client.register(service, addr, ttl=...)``: a key
``<service>/<addr>`` attached to a lease kept alive while the instance runs
(the layout of etcd's Go ``naming/endpoints`` package, so Go gRPC clients can
resolve Python services and the other way round).

A toy client discovers them with ``client.discover(service)``: a live view
(``d.instances``) kept current by a watch, and ``d.updates()``, which yields
the instance set each time it changes. The client keeps its endpoint list in
step with those updates and sends requests round robin over it.

Then one instance goes away (it leaves its registration block: its key is
deleted at once; had it crashed, its lease would expire within the TTL) and a
new one joins; the endpoint list follows, and no request goes to the instance
that left.

Run it against an etcd you have (``--endpoint HOST:PORT``, default
127.0.0.1:2379) or let it start one (``--embedded``)::

    python examples/service_discovery.py --embedded --rounds 6

Every key it writes is under ``examples/service_discovery/``, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import aetcd
from aetcd.recipes import Instance

PREFIX = "examples/service_discovery/"
SERVICE = PREFIX + "echo"


@contextlib.asynccontextmanager
async def etcd_endpoint(args: argparse.Namespace) -> AsyncIterator[str]:
    """The etcd to use: the one named on the command line, or an embedded one."""
    if not args.embedded:
        yield args.endpoint
        return
    from aetcd.testing import EtcdServer

    async with EtcdServer() as server:
        print(f"started an embedded etcd at {server.endpoint}", flush=True)
        yield server.endpoint


@contextlib.asynccontextmanager
async def echo_instance(endpoint: str, name: str) -> AsyncIterator[str]:
    """Run one instance of the echo service, registered in etcd while it runs."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        writer.write(f"{name} echoes {line.decode().strip()}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    addr = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, aetcd.Client(endpoint) as client:
        async with client.register(SERVICE, addr, ttl=5, metadata={"name": name}):
            print(f"{name}: serving on {addr}, registered", flush=True)
            yield addr
        print(f"{name}: deregistered", flush=True)


class RoundRobin:
    """A client-side balancer over the endpoints discovery reports."""

    def __init__(self) -> None:
        self.endpoints: list[str] = []
        self._next = 0
        self.changed = asyncio.Condition()

    async def update(self, instances: dict[str, Instance]) -> None:
        async with self.changed:
            self.endpoints = sorted(instances)
            self.changed.notify_all()
        names = [instances[a].metadata["name"] for a in self.endpoints]
        print(f"client: endpoint list now {names}", flush=True)

    async def wait_for(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.endpoints) == count)

    def pick(self) -> str:
        addr = self.endpoints[self._next % len(self.endpoints)]
        self._next += 1
        return addr


async def request(addr: str, text: str) -> str:
    host, port = addr.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"{text}\n".encode())
    reply = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return reply.decode().strip()


async def send_round(balancer: RoundRobin, rounds: int, tag: str) -> list[str]:
    replies = []
    for i in range(rounds):
        reply = await request(balancer.pick(), f"{tag}-{i}")
        print(f"client: {reply}", flush=True)
        replies.append(reply)
    return replies


async def run(endpoint: str, rounds: int) -> None:
    balancer = RoundRobin()
    async with contextlib.AsyncExitStack() as instances, aetcd.Client(endpoint) as client:
        await client.delete(PREFIX, prefix=True)
        await instances.enter_async_context(echo_instance(endpoint, "instance-1"))
        leaving = contextlib.AsyncExitStack()  # instance-2 is stopped on its own
        instances.push_async_callback(leaving.aclose)  # (a no-op once it was)
        await leaving.enter_async_context(echo_instance(endpoint, "instance-2"))
        await instances.enter_async_context(echo_instance(endpoint, "instance-3"))

        async with client.discover(SERVICE) as discovery:
            print(f"client: discovered {len(discovery.instances)} instances", flush=True)

            async def follow() -> None:
                async with discovery.updates() as updates:
                    async for current in updates:  # the current set first, then each change
                        await balancer.update(current)

            follower = asyncio.create_task(follow())
            try:
                await balancer.wait_for(3)
                first = await send_round(balancer, rounds, "hello")
                assert {r.split()[0] for r in first} == {"instance-1", "instance-2", "instance-3"}

                await leaving.aclose()  # instance-2 shuts down cleanly
                await balancer.wait_for(2)
                second = await send_round(balancer, rounds, "again")
                assert all(not r.startswith("instance-2") for r in second)

                await instances.enter_async_context(echo_instance(endpoint, "instance-4"))
                await balancer.wait_for(3)
                third = await send_round(balancer, rounds, "more")
                assert any(r.startswith("instance-4") for r in third)
            finally:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1:2379", help="etcd to use (host:port)")
    parser.add_argument("--embedded", action="store_true", help="start a private etcd instead")
    parser.add_argument("--rounds", type=int, default=6, help="requests per phase (>= 3)")
    args = parser.parse_args(argv)
    async with etcd_endpoint(args) as endpoint:
        try:
            await run(endpoint, max(args.rounds, 3))
        finally:
            async with aetcd.Client(endpoint) as client:
                await client.delete(PREFIX, prefix=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
