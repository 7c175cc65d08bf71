"""One benchmark run of one client implementation, in a process of its own.

Run by the orchestrator (``python -m bench``) as a *script* with ``python -P``
so that the interpreter of each implementation's virtual environment decides
what ``import aetcd`` means (ours in ``.venv``, martyanov's aetcd in its peer
venv). Prints :data:`harness.RESULT` and a JSON object on its last line.

Implementations:

``floor``       bare ``grpc.aio`` stubs from ``aetcd._pb`` on a channel built
                with ``ClientConfig.channel_options()`` and the same call
                options aetcd uses (deadline, ``wait_for_ready=True``): the
                least a Python grpc.aio client can do.
``floor-typed`` the floor plus the least any typed client must add per call
                (argument checks, a deadline, typed errors, a typed result
                over the response): what a typed facade costs at a minimum.
``floor-t``     the floor with gRPC core's older client I/O path, the opt-in
                ``GRPC_EXPERIMENTS=-event_engine_client`` (docs/connecting.md).
``aetcd``       this repository's client, as a user gets it by default.
``aetcd-t``     aetcd with the same opt-in.
``etcd3``       python-etcd3 (synchronous; one thread per operation in flight).
``aetcd-peer``  martyanov's ``aetcd`` from PyPI.
``etcd3aio``    ``etcd3aio`` from PyPI.
``etcetra``     ``etcetra`` from PyPI (KV and watch only).

The ``writer`` role is the separate process that produces watch events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from operator import attrgetter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

VALUE = b"v" * 32
LOCK_TTL = 10


def prefix_end(prefix: bytes) -> bytes:
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


class Unsupported(Exception):
    """The implementation has no way to run this workload."""


# --------------------------------------------------------------------------- floor


class Floor:
    """Bare grpc.aio stubs: the floor every Python grpc.aio client sits on."""

    name = "floor"
    sync = False

    async def open(self, endpoint: str) -> None:
        import grpc.aio

        from aetcd._pb import rpc_pb2, rpc_pb2_grpc
        from aetcd.config import ClientConfig

        cfg = ClientConfig.build(endpoint)
        self.pb = rpc_pb2
        self.channel = grpc.aio.insecure_channel(endpoint, cfg.channel_options())
        self.kv = rpc_pb2_grpc.KVStub(self.channel)
        self.lease = rpc_pb2_grpc.LeaseStub(self.channel)
        self.watch_stub = rpc_pb2_grpc.WatchStub(self.channel)
        self.timeout = cfg.timeout
        await self.channel.channel_ready()

    async def close(self) -> None:
        await self.channel.close()

    async def put(self, key: bytes, value: bytes) -> int:
        r = await self.kv.Put(
            self.pb.PutRequest(key=key, value=value),
            timeout=self.timeout,
            metadata=None,
            wait_for_ready=True,
        )
        return r.header.revision

    async def get(self, key: bytes) -> bytes:
        r = await self.kv.Range(
            self.pb.RangeRequest(key=key), timeout=self.timeout, metadata=None, wait_for_ready=True
        )
        return r.kvs[0].value

    async def range(self, prefix: bytes) -> int:
        r = await self.kv.Range(
            self.pb.RangeRequest(key=prefix, range_end=prefix_end(prefix)),
            timeout=self.timeout,
            metadata=None,
            wait_for_ready=True,
        )
        n = 0
        for kv in r.kvs:
            kv.key  # noqa: B018 - touch what a caller reads
            kv.value  # noqa: B018
            n += 1
        return n

    def cas_request(self, key: bytes, old: bytes, new: bytes) -> Any:
        """``txn(value(key) == old, put(key, new))`` as a message, built in the call."""
        pb = self.pb
        return pb.TxnRequest(
            compare=[
                pb.Compare(
                    key=key,
                    target=pb.Compare.CompareTarget.VALUE,
                    result=pb.Compare.CompareResult.EQUAL,
                    value=old,
                )
            ],
            success=[pb.RequestOp(request_put=pb.PutRequest(key=key, value=new))],
        )

    async def cas(self, key: bytes, old: bytes, new: bytes) -> bool:
        req = self.cas_request(key, old, new)
        r = await self.kv.Txn(req, timeout=self.timeout, metadata=None, wait_for_ready=True)
        return r.succeeded

    async def watch(self, prefix: bytes, sink: harness.WatchSink) -> None:
        pb = self.pb
        call = self.watch_stub.Watch(metadata=(("hasleader", "true"),), wait_for_ready=True)
        await call.write(
            pb.WatchRequest(
                create_request=pb.WatchCreateRequest(key=prefix, range_end=prefix_end(prefix))
            )
        )
        created = await call.read()
        assert created.created
        sink.start()
        try:
            while True:
                r = await call.read()
                for ev in r.events:
                    if sink(ev.kv.value):
                        return
        finally:
            call.cancel()

    # -- leases ---------------------------------------------------------------------

    async def _grant(self, ttl: int) -> int:
        r = await self.lease.LeaseGrant(
            self.pb.LeaseGrantRequest(TTL=ttl), timeout=self.timeout, wait_for_ready=True
        )
        return r.ID

    async def keep_alive(self, count: int, ttl: int) -> Any:
        """Grant *count* leases and keep them alive on one stream (every TTL/3)."""
        ids: list[int] = []
        sem = asyncio.Semaphore(64)

        async def grant() -> None:
            async with sem:
                ids.append(await self._grant(ttl))

        await asyncio.gather(*(grant() for _ in range(count)))
        requests = [self.pb.LeaseKeepAliveRequest(ID=i) for i in ids]
        call = self.lease.LeaseKeepAlive(metadata=(("hasleader", "true"),), wait_for_ready=True)
        counter = {"received": 0}

        async def sender() -> None:
            # Each lease every TTL/3, spread evenly over the period (checked every
            # 50 ms, like aetcd's coalescing window), not in one burst: a burst
            # per period would make the count in a window depend on its phase.
            loop = asyncio.get_running_loop()
            period, n, sent = ttl / 3, len(requests), 0
            start = loop.time()
            while True:
                due = int((loop.time() - start) / period * n) + 1
                while sent < due:
                    await call.write(requests[sent % n])
                    sent += 1
                await asyncio.sleep(0.05)

        async def receiver() -> None:
            while True:
                r = await call.read()
                if r.TTL <= 0:
                    raise RuntimeError("a lease expired")
                counter["received"] += 1

        tasks = [asyncio.ensure_future(sender()), asyncio.ensure_future(receiver())]
        return lambda: counter["received"], tasks

    # -- lock (Go concurrency.Mutex's requests, without the recipe around them) --------

    def _lock_requests(self, name: bytes, lease: int) -> tuple[bytes, Any, Any]:
        pb = self.pb
        prefix = name + b"/"
        key = prefix + f"{lease:x}".encode()
        owner = pb.RangeRequest(
            key=prefix,
            range_end=prefix_end(prefix),
            sort_target=pb.RangeRequest.SortTarget.CREATE,
            sort_order=pb.RangeRequest.SortOrder.ASCEND,
            limit=1,
        )
        return key, owner, prefix

    async def _lock_cycle(self, name: bytes, lease: int) -> None:
        pb = self.pb
        key, owner, _ = self._lock_requests(name, lease)
        enqueue = pb.TxnRequest(
            compare=[
                pb.Compare(
                    key=key,
                    target=pb.Compare.CompareTarget.CREATE,
                    result=pb.Compare.CompareResult.EQUAL,
                    create_revision=0,
                )
            ],
            success=[
                pb.RequestOp(request_put=pb.PutRequest(key=key, value=b"", lease=lease)),
                pb.RequestOp(request_range=owner),
            ],
            failure=[
                pb.RequestOp(request_range=pb.RangeRequest(key=key)),
                pb.RequestOp(request_range=owner),
            ],
        )
        r = await self.kv.Txn(enqueue, timeout=self.timeout, metadata=None, wait_for_ready=True)
        if r.succeeded:
            revision = r.header.revision
        else:
            revision = r.responses[0].response_range.kvs[0].create_revision
        head = r.responses[1].response_range.kvs
        if head and head[0].create_revision != revision:
            raise RuntimeError("the benchmark lock is contended")
        release = pb.TxnRequest(
            compare=[
                pb.Compare(
                    key=key,
                    target=pb.Compare.CompareTarget.CREATE,
                    result=pb.Compare.CompareResult.EQUAL,
                    create_revision=revision,
                )
            ],
            success=[pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key))],
        )
        await self.kv.Txn(release, timeout=self.timeout, metadata=None, wait_for_ready=True)

    async def lock_reuse(self, name: bytes) -> Any:
        lease = await self._grant(60)

        async def cycle(w: int, i: int) -> None:
            await self._lock_cycle(name, lease)

        return cycle

    async def lock_new(self, name: bytes) -> Any:
        async def cycle(w: int, i: int) -> None:
            lease = await self._grant(LOCK_TTL)
            await self._lock_cycle(name, lease)
            await self.lease.LeaseRevoke(
                self.pb.LeaseRevokeRequest(ID=lease), timeout=self.timeout, wait_for_ready=True
            )

        return cycle


# --------------------------------------------------------------------------- aetcd


def _require_opt_in() -> None:
    if "-event_engine_client" not in os.environ.get("GRPC_EXPERIMENTS", ""):
        raise RuntimeError("GRPC_EXPERIMENTS=-event_engine_client is not set for this worker")


class FloorTyped(Floor):
    """The least any typed client must add to the floor (a lower bound for aetcd).

    Per call: the key and value checked and encoded, the deadline taken from the
    loop clock, the gRPC error mapped to a typed one, and a typed result (a
    slotted object over the response, its header read through it). No member
    choice, retry policy, token, namespace or coalescing.
    """

    name = "floor-typed"

    async def open(self, endpoint: str) -> None:
        await super().open(endpoint)
        import grpc

        self.rpc_error = grpc.aio.AioRpcError

    @staticmethod
    def _bytes(value: Any) -> bytes:
        if type(value) is bytes:
            return value
        if isinstance(value, str):
            return value.encode()
        raise TypeError("expected str or bytes")

    def _key(self, key: Any) -> bytes:
        k = self._bytes(key)
        if not k:
            raise ValueError("key is empty")
        return k

    async def _call(self, method: Any, req: Any) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            return await method(
                req, timeout=deadline - loop.time(), metadata=None, wait_for_ready=True
            )
        except self.rpc_error as exc:
            raise RuntimeError(exc.details()) from exc

    async def put(self, key: bytes, value: bytes) -> int:
        req = self.pb.PutRequest(key=self._key(key), value=self._bytes(value))
        r = _Res(await self._call(self.kv.Put, req))
        return r.header.revision

    async def get(self, key: bytes) -> bytes:
        r = _Res(await self._call(self.kv.Range, self.pb.RangeRequest(key=self._key(key))))
        return r.kvs[0].value

    async def range(self, prefix: bytes) -> int:
        p = self._key(prefix)
        r = await self._call(self.kv.Range, self.pb.RangeRequest(key=p, range_end=prefix_end(p)))
        kvs = [_kv(kv) for kv in r.kvs]
        n = 0
        for kv in kvs:
            kv.key  # noqa: B018
            kv.value  # noqa: B018
            n += 1
        return n

    async def cas(self, key: bytes, old: bytes, new: bytes) -> bool:
        req = self.cas_request(self._key(key), old, new)
        return _Res(await self._call(self.kv.Txn, req)).succeeded

    async def watch(self, prefix: bytes, sink: harness.WatchSink) -> None:
        raise Unsupported("a reference for unary calls only")

    async def keep_alive(self, count: int, ttl: int) -> Any:
        raise Unsupported("a reference for unary calls only")

    async def lock_reuse(self, name: bytes) -> Any:
        raise Unsupported("a reference for unary calls only")

    async def lock_new(self, name: bytes) -> Any:
        raise Unsupported("a reference for unary calls only")


class _KV:
    __slots__ = ("_pb",)
    key = property(attrgetter("_pb.key"))
    value = property(attrgetter("_pb.value"))


class _Header:
    __slots__ = ("_pb",)
    revision = property(attrgetter("_pb.revision"))


_set_kv = _KV.__dict__["_pb"].__set__
_set_header = _Header.__dict__["_pb"].__set__


def _kv(pb: Any) -> _KV:
    o = object.__new__(_KV)
    _set_kv(o, pb)
    return o


class _Res:
    __slots__ = ("_h", "_pb")
    succeeded = property(attrgetter("_pb.succeeded"))

    def __init__(self, pb: Any) -> None:
        self._pb = pb
        self._h = None

    @property
    def header(self) -> Any:
        h = self._h
        if h is None:
            h = self._h = object.__new__(_Header)
            _set_header(h, self._pb.header)
        return h

    @property
    def kvs(self) -> Any:
        return [_kv(kv) for kv in self._pb.kvs]


class FloorTuned(Floor):
    """The floor with gRPC core's older client I/O path (the documented opt-in)."""

    name = "floor-t"

    async def open(self, endpoint: str) -> None:
        _require_opt_in()
        await super().open(endpoint)


class Aetcd:
    """This repository's client, used the way its README shows."""

    name = "aetcd"
    sync = False

    async def open(self, endpoint: str) -> None:
        import aetcd

        self.mod = aetcd
        self.client = aetcd.Client(endpoint)
        await self.client.connect()

    async def close(self) -> None:
        await self.client.close()

    async def put(self, key: bytes, value: bytes) -> int:
        return (await self.client.put(key, value)).header.revision

    async def get(self, key: bytes) -> bytes:
        return (await self.client.get(key)).kvs[0].value

    async def range(self, prefix: bytes) -> int:
        n = 0
        for kv in (await self.client.get(prefix, prefix=True)).kvs:
            kv.key  # noqa: B018
            kv.value  # noqa: B018
            n += 1
        return n

    async def cas(self, key: bytes, old: bytes, new: bytes) -> bool:
        Compare, Op = self.mod.Compare, self.mod.Op
        r = await self.client.txn([Compare.value(key) == old], [Op.put(key, new)])
        return r.succeeded

    async def watch(self, prefix: bytes, sink: harness.WatchSink) -> None:
        async with self.client.watch(prefix, prefix=True) as w:
            sink.start()
            async for ev in w:
                if sink(ev.kv.value):
                    return

    async def keep_alive(self, count: int, ttl: int) -> Any:
        sem = asyncio.Semaphore(64)
        self._lease_contexts = []

        async def grant() -> None:
            async with sem:
                ctx = self.client.lease(ttl)
                await ctx.__aenter__()  # never exited: close() drops the keep-alives
                self._lease_contexts.append(ctx)

        await asyncio.gather(*(grant() for _ in range(count)))
        keeper = self.client._leases._keepalive  # bench-only peek at the reply counter
        return lambda: keeper.received, []

    async def lock_reuse(self, name: bytes) -> Any:
        session = await self.client.session(ttl=60).open()
        self._session = session

        async def cycle(w: int, i: int) -> None:
            lock = self.client.lock(name, session=session)
            await lock.acquire()
            await lock.release()

        return cycle

    async def lock_new(self, name: bytes) -> Any:
        async def cycle(w: int, i: int) -> None:
            async with self.client.lock(name, ttl=LOCK_TTL):
                pass

        return cycle


class AetcdTuned(Aetcd):
    """aetcd with gRPC core's older client I/O path (the documented opt-in)."""

    name = "aetcd-t"

    async def open(self, endpoint: str) -> None:
        _require_opt_in()
        await super().open(endpoint)


class AetcdSingle(Aetcd):
    """This client with read coalescing off: one RPC per call, like the floor."""

    name = "aetcd-nc"

    async def open(self, endpoint: str) -> None:
        import aetcd

        self.mod = aetcd
        try:
            self.client = aetcd.Client(endpoint, coalesce_reads=False)
        except TypeError:
            raise Unsupported("this aetcd has no coalesce_reads option") from None
        await self.client.connect()


class AetcdBatchedWrites(Aetcd):
    """This client with write coalescing on (opt-in): puts of a loop turn share one txn."""

    name = "aetcd-cw"

    async def open(self, endpoint: str) -> None:
        import aetcd

        self.mod = aetcd
        try:
            self.client = aetcd.Client(endpoint, coalesce_writes=True)
        except TypeError:
            raise Unsupported("this aetcd has no coalesce_writes option") from None
        await self.client.connect()


# --------------------------------------------------------------------------- peers


class AetcdPeer:
    """martyanov's aetcd (PyPI ``aetcd``), run from its own virtual environment."""

    name = "aetcd-peer"
    sync = False

    async def open(self, endpoint: str) -> None:
        import aetcd

        host, port = endpoint.rsplit(":", 1)
        self.client = aetcd.Client(host, int(port), timeout=5)
        await self.client.connect()

    async def close(self) -> None:
        await self.client.close()

    async def put(self, key: bytes, value: bytes) -> int:
        return (await self.client.put(key, value)).header.revision

    async def get(self, key: bytes) -> bytes:
        return (await self.client.get(key)).value

    async def range(self, prefix: bytes) -> int:
        n = 0
        for kv in await self.client.get_prefix(prefix):
            kv.key  # noqa: B018
            kv.value  # noqa: B018
            n += 1
        return n

    async def cas(self, key: bytes, old: bytes, new: bytes) -> bool:
        t = self.client.transactions
        ok, _ = await self.client.transaction(
            compare=[t.value(key) == old], success=[t.put(key, new)], failure=[]
        )
        return ok

    async def watch(self, prefix: bytes, sink: harness.WatchSink) -> None:
        w = await self.client.watch_prefix(prefix)
        await asyncio.sleep(0.5)  # no creation confirmation in its API
        sink.start()
        try:
            async for ev in w:
                if sink(ev.kv.value):
                    return
        finally:
            await w.cancel()

    async def lock_new(self, name: bytes) -> Any:
        async def cycle(w: int, i: int) -> None:
            async with self.client.lock(name, ttl=LOCK_TTL):
                pass

        return cycle


class Etcd3aio:
    """``etcd3aio`` from PyPI."""

    name = "etcd3aio"
    sync = False

    async def open(self, endpoint: str) -> None:
        import etcd3aio

        self.mod = etcd3aio
        self.client = etcd3aio.Etcd3Client([endpoint])
        await self.client.connect()

    async def close(self) -> None:
        await self.client.close()

    async def put(self, key: bytes, value: bytes) -> int:
        return (await self.client.kv.put(key, value, timeout=5)).header.revision

    async def get(self, key: bytes) -> bytes:
        return (await self.client.kv.get(key, timeout=5)).kvs[0].value

    async def range(self, prefix: bytes) -> int:
        r = await self.client.kv.get(prefix, range_end=prefix_end(prefix), timeout=5)
        n = 0
        for kv in r.kvs:
            kv.key  # noqa: B018
            kv.value  # noqa: B018
            n += 1
        return n

    async def cas(self, key: bytes, old: bytes, new: bytes) -> bool:
        kv = self.client.kv
        r = await kv.txn([kv.txn_compare_value(key, old)], [kv.txn_op_put(key, new)], timeout=5)
        return r.succeeded

    async def watch(self, prefix: bytes, sink: harness.WatchSink) -> None:
        started = False
        async for r in self.client.watch.watch(prefix, range_end=prefix_end(prefix)):
            if not started:
                started = True  # the first response is the creation confirmation
                sink.start()
            for ev in r.events:
                if sink(ev.kv.value):
                    return

    async def lock_new(self, name: bytes) -> Any:
        async def cycle(w: int, i: int) -> None:
            async with self.client.lock(name.decode(), ttl=LOCK_TTL):
                pass

        return cycle

    async def keep_alive(self, count: int, ttl: int) -> Any:
        """Its LeaseKeepalive: a task and a short stream per lease and renewal."""
        sem = asyncio.Semaphore(64)
        self._keepers = []

        async def grant() -> None:
            async with sem:
                lease = await self.client.lease.grant(ttl=ttl, timeout=5)
                ka = self.client.lease.keep_alive_context(lease.ID, ttl)
                await ka.__aenter__()
                self._keepers.append(ka)

        await asyncio.gather(*(grant() for _ in range(count)))
        start = time.perf_counter()
        interval = max(1, ttl // 3)
        # No reply counter: estimate renewals from its fixed interval.
        return lambda: int(count * (time.perf_counter() - start) / interval), []


class Etcetra:
    """``etcetra`` from PyPI (str keys and values; KV and watch)."""

    name = "etcetra"
    sync = False

    async def open(self, endpoint: str) -> None:
        from etcetra import EtcdClient, HostPortPair

        host, port = endpoint.rsplit(":", 1)
        self.client = EtcdClient(HostPortPair(host, int(port)))
        self._cm = self.client.connect()
        self.comm = await self._cm.__aenter__()

    async def close(self) -> None:
        await self._cm.__aexit__(None, None, None)

    async def put(self, key: bytes, value: bytes) -> int:
        await self.comm.put(key.decode(), value.decode())
        return 0

    async def get(self, key: bytes) -> bytes:
        return (await self.comm.get(key.decode())).encode()

    async def range(self, prefix: bytes) -> int:
        n = 0
        for _ in (await self.comm.get_prefix(prefix.decode())).items():
            n += 1
        return n

    async def cas(self, key: bytes, old: bytes, new: bytes) -> bool:
        raise Unsupported("etcetra's txn API is not covered")

    async def watch(self, prefix: bytes, sink: harness.WatchSink) -> None:
        ready = asyncio.Event()
        it = self.comm.watch_prefix(prefix.decode(), ready_event=ready)
        task = asyncio.ensure_future(it.__anext__())
        await ready.wait()
        sink.start()
        ev = await task
        if sink(ev.value.encode()):
            return
        async for ev in it:
            if sink(ev.value.encode()):
                return


class Etcd3:
    """python-etcd3 (synchronous grpc): operations in flight are threads."""

    name = "etcd3"
    sync = True

    def open(self, endpoint: str) -> None:
        import etcd3

        host, port = endpoint.rsplit(":", 1)
        self.client = etcd3.client(host, int(port), timeout=5)

    def close(self) -> None:
        self.client.close()

    def put(self, key: bytes, value: bytes) -> int:
        return self.client.put(key, value).header.revision

    def get(self, key: bytes) -> bytes:
        value, _meta = self.client.get(key)
        return value

    def range(self, prefix: bytes) -> int:
        n = 0
        for _value, meta in self.client.get_prefix(prefix):
            meta.key  # noqa: B018
            n += 1
        return n

    def cas(self, key: bytes, old: bytes, new: bytes) -> bool:
        t = self.client.transactions
        ok, _ = self.client.transaction(
            compare=[t.value(key) == old], success=[t.put(key, new)], failure=[]
        )
        return ok

    def watch(self, prefix: bytes, sink: harness.WatchSink) -> None:
        events, cancel = self.client.watch_prefix(prefix)
        time.sleep(0.5)  # the watch is created by a background thread
        sink.start()
        try:
            for ev in events:
                if sink(ev.value):
                    return
        finally:
            cancel()

    def lock_new(self, name: bytes) -> Any:
        def cycle(w: int, i: int) -> None:
            with self.client.lock(name.decode(), ttl=LOCK_TTL):
                pass

        return cycle


class AetcdSync:
    """``aetcd.sync.Client``: the blocking client (operations in flight are threads)."""

    name = "aetcd-sync"
    sync = True

    def open(self, endpoint: str) -> None:
        import aetcd.sync

        self.client = aetcd.sync.Client(endpoint)
        self.client.get(b"bench/warm-up")

    def close(self) -> None:
        self.client.close()

    def put(self, key: bytes, value: bytes) -> int:
        return self.client.put(key, value).header.revision

    def get(self, key: bytes) -> bytes:
        return self.client.get(key).kvs[0].value


class FloorSync:
    """Bare synchronous grpc stubs (``grpc.insecure_channel``): the blocking floor."""

    name = "floor-sync"
    sync = True

    def open(self, endpoint: str) -> None:
        import grpc

        from aetcd._pb import rpc_pb2, rpc_pb2_grpc
        from aetcd.config import ClientConfig

        cfg = ClientConfig.build(endpoint)
        self.pb = rpc_pb2
        self.channel = grpc.insecure_channel(endpoint, cfg.channel_options())
        self.kv = rpc_pb2_grpc.KVStub(self.channel)
        self.timeout = cfg.timeout
        grpc.channel_ready_future(self.channel).result(timeout=10)

    def close(self) -> None:
        self.channel.close()

    def put(self, key: bytes, value: bytes) -> int:
        r = self.kv.Put(
            self.pb.PutRequest(key=key, value=value), timeout=self.timeout, wait_for_ready=True
        )
        return int(r.header.revision)

    def get(self, key: bytes) -> bytes:
        r = self.kv.Range(self.pb.RangeRequest(key=key), timeout=self.timeout, wait_for_ready=True)
        return bytes(r.kvs[0].value)


class Etcd3PurePython(Etcd3):
    """python-etcd3 as its users must run it today: the pure-Python protobuf
    (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``, set by the orchestrator)."""

    name = "etcd3-pp"


IMPLS: dict[str, type] = {
    c.name: c
    for c in (  # type: ignore[attr-defined]
        Floor,
        FloorTyped,
        FloorTuned,
        Aetcd,
        AetcdTuned,
        AetcdSingle,
        AetcdBatchedWrites,
        AetcdPeer,
        Etcd3aio,
        Etcetra,
        Etcd3,
        Etcd3PurePython,
        AetcdSync,
        FloorSync,
    )
}


# --------------------------------------------------------------------------- workloads


async def run_async(impl: Any, a: argparse.Namespace) -> dict[str, Any]:
    prefix = a.prefix.encode()
    await impl.open(a.endpoint)
    try:
        w = a.workload
        if w == "put":

            async def op(w: int, i: int) -> None:
                await impl.put(b"%sk%03d" % (prefix, w), VALUE)

        elif w == "get":
            nkeys = a.keys

            async def op(w: int, i: int) -> None:
                await impl.get(b"%sk%04d" % (prefix, (w + i) % nkeys))

        elif w == "range":

            async def op(w: int, i: int) -> None:
                n = await impl.range(prefix)
                if n != a.keys:
                    raise RuntimeError(f"range returned {n} keys, not {a.keys}")

        elif w == "txn":
            for t in range(a.concurrency):
                await impl.put(b"%sk%03d" % (prefix, t), b"0")

            async def op(w: int, i: int) -> None:
                if not await impl.cas(b"%sk%03d" % (prefix, w), b"%d" % i, b"%d" % (i + 1)):
                    raise RuntimeError("compare-and-swap failed")

        elif w == "watch":
            sink = harness.WatchSink(a.events)
            try:
                async with asyncio.timeout(a.timeout):
                    await impl.watch(prefix, sink)
            except TimeoutError:
                pass
            return sink.result()
        elif w == "leases":
            return await run_leases(impl, a)
        elif w in ("lock_reuse", "lock_new"):
            if not hasattr(impl, w):
                raise Unsupported(f"{impl.name} has no {w} flavour")
            op = await getattr(impl, w)(prefix.rstrip(b"/"))
        else:
            raise SystemExit(f"unknown workload {w}")
        return await harness.closed_loop(op, a.concurrency, a.duration, a.warmup)
    finally:
        await impl.close()


async def run_leases(impl: Any, a: argparse.Namespace) -> dict[str, Any]:
    if not hasattr(impl, "keep_alive"):
        raise Unsupported(f"{impl.name}: no shared keep-alive")
    t0 = time.perf_counter()
    received, tasks = await impl.keep_alive(a.leases, a.ttl)
    granted_s = time.perf_counter() - t0
    await asyncio.sleep(a.ttl / 3 + 0.5)  # every lease has had a keep-alive round
    harness.say(harness.MEASURING)
    window = max(a.duration, float(a.ttl))
    r0, c0, w0 = received(), time.process_time(), time.perf_counter()
    await asyncio.sleep(window)
    r1, c1, w1 = received(), time.process_time(), time.perf_counter()
    for t in tasks:
        t.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.gather(*tasks, return_exceptions=True)
    res = harness.summary(r1 - r0, w1 - w0, c1 - c0, [], leases=a.leases, ttl=a.ttl)
    res["grant_s"] = granted_s
    return res


def run_sync(impl: Any, a: argparse.Namespace) -> dict[str, Any]:
    prefix = a.prefix.encode()
    impl.open(a.endpoint)
    try:
        w = a.workload
        if w == "put":

            def op(w: int, i: int) -> None:
                impl.put(b"%sk%03d" % (prefix, w), VALUE)

        elif w == "get":
            nkeys = a.keys

            def op(w: int, i: int) -> None:
                impl.get(b"%sk%04d" % (prefix, (w + i) % nkeys))

        elif w == "range":

            def op(w: int, i: int) -> None:
                n = impl.range(prefix)
                if n != a.keys:
                    raise RuntimeError(f"range returned {n} keys, not {a.keys}")

        elif w == "txn":
            for t in range(a.concurrency):
                impl.put(b"%sk%03d" % (prefix, t), b"0")

            def op(w: int, i: int) -> None:
                if not impl.cas(b"%sk%03d" % (prefix, w), b"%d" % i, b"%d" % (i + 1)):
                    raise RuntimeError("compare-and-swap failed")

        elif w == "watch":
            sink = harness.WatchSink(a.events)
            impl.watch(prefix, sink)  # the orchestrator enforces the timeout
            return sink.result()
        elif w in ("lock_reuse", "lock_new"):
            if not hasattr(impl, w):
                raise Unsupported(f"{impl.name} has no {w} flavour")
            op = getattr(impl, w)(prefix.rstrip(b"/"))
        else:
            raise Unsupported(f"{impl.name}: {w} is not covered")
        return harness.threaded_loop(op, a.concurrency, a.duration, a.warmup)
    finally:
        impl.close()


# --------------------------------------------------------------------------- writer


async def run_writer(a: argparse.Namespace) -> dict[str, Any]:
    """Put *events* values (each its send time) under the prefix, 64 in flight."""
    floor = Floor()
    await floor.open(a.endpoint)
    prefix = a.prefix.encode()
    n = a.events
    counter = iter(range(n))
    t0 = time.perf_counter()

    async def task() -> None:
        for i in counter:
            await floor.put(b"%sk%04d" % (prefix, i % 1000), b"%d" % time.monotonic_ns())

    await asyncio.gather(*(task() for _ in range(a.concurrency)))
    elapsed = time.perf_counter() - t0
    await floor.close()
    return {"events": n, "elapsed_s": elapsed, "ops_per_s": n / elapsed}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--impl", default="floor")
    p.add_argument("--workload", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--keys", type=int, default=64)
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--leases", type=int, default=1000)
    p.add_argument("--ttl", type=int, default=10)
    a = p.parse_args()
    if a.workload == "writer":
        harness.emit(asyncio.run(run_writer(a)))
        return
    try:
        impl = IMPLS[a.impl]()
        if impl.sync:
            if a.workload == "leases":
                raise Unsupported(f"{impl.name}: no shared keep-alive")
            result = run_sync(impl, a)
        else:
            result = asyncio.run(run_async(impl, a))
    except Unsupported as exc:
        result = {"unsupported": str(exc)}
    result["impl"] = a.impl
    result["workload"] = a.workload
    harness.emit(result)


if __name__ == "__main__":
    main()
