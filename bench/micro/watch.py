"""Python-side cost per watch event, with the Watch stream replaced by a fake.

The fake call completes each read from a loop callback, as grpc.aio's poller
does, so the loop iterations per response match the real thing; what is left
out is grpc and the kernel (the same for every variant). Prints µs of CPU per
event (best of 5 x N events, one event per response as in the live ``watch``
workload):

``floor``     ``while True: r = await call.read(); for ev in r.events: ...``
``handoff``   a reader task and a consumer task (a future per wait): the least
              a shared stream can cost on top of the floor
``inline``    no reader task: the read is driven from its completion callback,
              which resumes the waiting consumer's task at once through a
              future-like waiter (one loop iteration per response less than
              ``handoff``, as the floor). Measured slower than ``handoff`` (the
              Python-level waiter costs more than the loop iteration it saves),
              so aetcd does not do this
``aetcd``     ``async for event in client.watch(...)`` (pokes at
              ``Transport.watch``, ``stream_metadata`` and ``_watch_stream.WatchStream``:
              internals, adjust when they change)
``view``       building one event's view alone (hot in cache)

No etcd needed: ``.venv/bin/python -m bench.micro.watch [N]``.
"""

import asyncio
import collections
import contextlib
import sys
import time
import timeit
import types

import aetcd
from aetcd._pb import kv_pb2, rpc_pb2
from aetcd.types import Event

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000


def responses(wid, n):
    out = []
    for i in range(n):
        kv = kv_pb2.KeyValue(
            key=b"bench/watch/k%04d" % (i % 1000),
            value=b"%d" % time.monotonic_ns(),
            create_revision=5,
            mod_revision=101 + i,
            version=3,
        )
        header = rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=101 + i, raft_term=3)
        r = rpc_pb2.WatchResponse(header=header, watch_id=wid, events=[kv_pb2.Event(kv=kv)])
        out.append(r.SerializeToString())
    return out


class FakeCall:
    """A Watch call answering the first create request, then N event responses."""

    def __init__(self, n):
        self.loop = asyncio.get_running_loop()
        self.n = n
        self.pending = collections.deque()
        self.answered = False
        self.waiter = None

    async def write(self, request):
        if request.HasField("create_request") and not self.answered:
            self.answered = True
            wid = request.create_request.watch_id
            header = rpc_pb2.ResponseHeader(revision=100)
            created = rpc_pb2.WatchResponse(header=header, watch_id=wid, created=True)
            self.pending.append(created.SerializeToString())
            self.pending.extend(responses(wid, self.n))
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    async def _read(self):
        while not self.pending:
            self.waiter = self.loop.create_future()
            await self.waiter
        done = self.loop.create_future()
        self.loop.call_soon(done.set_result, None)  # completion comes from the loop
        await done
        return rpc_pb2.WatchResponse.FromString(self.pending.popleft())

    async def read(self):
        # As grpc.aio: read() checks the call's state around _read();
        # ``async for`` calls _read() directly.
        if self.done():
            return None
        return await self._read()

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        while True:
            yield await self._read()

    def cancel(self):
        pass

    def done(self):
        return False

    async def done_writing(self):
        pass


async def floor(n):
    call = FakeCall(n)
    await call.write(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"k")))
    await call.read()
    t0 = time.process_time()
    got = 0
    while got < n:
        r = await call.read()
        for ev in r.events:
            ev.kv.value  # noqa: B018
            got += 1
    return time.process_time() - t0


async def handoff(n):
    call = FakeCall(n)
    loop = asyncio.get_running_loop()
    await call.write(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"k")))
    await call.read()
    buffer = collections.deque()
    waiter = [None]

    async def reader():
        async for r in call:
            buffer.append(r)
            w, waiter[0] = waiter[0], None
            if w is not None:
                w.set_result(None)

    task = asyncio.create_task(reader())
    t0 = time.process_time()
    got = 0
    while got < n:
        while not buffer:
            waiter[0] = loop.create_future()
            await waiter[0]
        for ev in buffer.popleft().events:
            ev.kv.value  # noqa: B018
            got += 1
    dt = time.process_time() - t0
    task.cancel()
    return dt


class _InlineWaiter:
    """Future-like: completing it runs the awaiting task's step at once (outside any task)."""

    __slots__ = ("_asyncio_future_blocking", "_callback", "_loop", "_state")

    def __init__(self, loop):
        self._loop = loop
        self._callback = None
        self._state = 0  # 1 done, 2 cancelled
        self._asyncio_future_blocking = False

    def get_loop(self):
        return self._loop

    def add_done_callback(self, fn, *, context=None):
        self._callback = (fn, context)

    def remove_done_callback(self, fn):
        self._callback = None
        return 1

    def done(self):
        return self._state != 0

    def cancelled(self):
        return self._state == 2

    def cancel(self, msg=None):
        if self._state:
            return False
        self._state = 2
        callback, self._callback = self._callback, None
        if callback is not None:
            self._loop.call_soon(callback[0], self, context=callback[1])
        return True

    def result(self):
        if self._state == 2:
            raise asyncio.CancelledError
        return None

    def deliver(self):
        self._state = 1
        callback, self._callback = self._callback, None
        if callback is not None:
            fn, context = callback
            context.run(fn, self) if context is not None else fn(self)

    def __await__(self):
        if not self._state:
            self._asyncio_future_blocking = True
            yield self
        return self.result()


async def inline(n):
    call = FakeCall(n)
    loop = asyncio.get_running_loop()
    await call.write(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"k")))
    await call.read()
    buffer = collections.deque()
    waiter = [None]
    messages = call.__aiter__()
    pending = [None]

    def start():
        pending[0] = messages.__anext__()
        step(None)

    def step(_):
        try:
            future = pending[0].send(None)
        except StopIteration as done:
            start()  # the next read first, then the consumer
            buffer.append(done.value)
            w, waiter[0] = waiter[0], None
            if w is not None:
                w.deliver()
            return
        future._asyncio_future_blocking = False
        future.add_done_callback(step)

    start()
    t0 = time.process_time()
    got = 0
    while got < n:
        while not buffer:
            waiter[0] = w = _InlineWaiter(loop)
            await w
        for ev in buffer.popleft().events:
            ev.kv.value  # noqa: B018
            got += 1
    dt = time.process_time() - t0
    with contextlib.suppress(GeneratorExit, StopAsyncIteration):
        pending[0].throw(GeneratorExit)  # end the read left pending, and its generator
    return dt


async def aetcd_watch(n):
    client = aetcd.Client("127.0.0.1:1")  # never contacted
    t = client._t
    await t.open()

    async def metadata(timeout=None):
        return (("hasleader", "true"),)

    t.stream_metadata = metadata
    t.watch = types.SimpleNamespace(Watch=lambda **kw: FakeCall(n))
    client._watches._watch_stream_for()._trust_requested_progress = True  # skip the Status call
    got = 0
    async with client.watch(b"bench/watch/", prefix=True) as w:
        t0 = time.process_time()
        async for ev in w:
            ev.kv.value  # noqa: B018
            got += 1
            if got == n:
                break
        dt = time.process_time() - t0
    await client.close()
    return dt


async def main():
    variants = (("floor", floor), ("handoff", handoff), ("inline", inline), ("aetcd", aetcd_watch))
    for name, fn in variants:
        best = min([await fn(N) for _ in range(5)])
        print(f"{name:8s} {best / N * 1e6:6.2f} us/event")
    pb = rpc_pb2.WatchResponse.FromString(responses(1, 1)[0]).events[0]
    try:  # the wire layer (aetcd._wire) builds the views
        from aetcd._wire.decode import event_view
    except ImportError:  # older tree
        event_view = Event._from_pb
    t = min(timeit.repeat(lambda: event_view(pb), number=N, repeat=7))
    print(f"{'view':8s} {t / N * 1e6:6.2f} us/event")


asyncio.run(main())
