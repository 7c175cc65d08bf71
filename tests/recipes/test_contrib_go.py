"""aetcd's contrib recipes and Go's (``go.etcd.io/etcd/contrib/recipes``) on the same keys.

Each test runs Go's recipe in a child process (``go/main.go``, built here in
GOPATH mode against Debian's ``golang-etcd-server-dev``) beside aetcd's, on one
etcd, in both directions: what one side enqueues, holds or locks, the other
dequeues, waits on or is excluded by.

The tier needs Go and the Go client sources (Debian: ``golang-go``,
``golang-etcd-server-dev``); ``scripts/test`` installs them when it runs as
root with apt-get, and then sets ``AETCD_GO_INTEROP=1``, which turns a failed
build into a test failure instead of a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest
from recipe_helpers import BLOCKED, blocked

import aetcd
from aetcd.recipes.contrib import Barrier, DoubleBarrier, PriorityQueue, Queue, RWMutex

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).resolve().parent / "go"
GOPATH = Path("/usr/share/gocode")
RECIPES = GOPATH / "src" / "go.etcd.io" / "etcd" / "contrib" / "recipes"
BINARY = ROOT / ".go-interop" / "recipes"
STEP = 20.0  # bound on any one step that must complete


@pytest.fixture(scope="session")
def go_recipes_binary() -> Path:
    """The driver, built once per run (and again when its source changed)."""
    found = {"go": shutil.which("go") is not None, str(RECIPES): RECIPES.is_dir()}
    missing = [what for what, ok in found.items() if not ok]
    if missing:
        why = (
            f"Go interop tier: {', '.join(missing)} not found "
            "(Debian: apt-get install golang-go golang-etcd-server-dev)"
        )
        if os.environ.get("AETCD_GO_INTEROP") == "1":
            pytest.fail(why)
        pytest.skip(why)
    source = SOURCE / "main.go"
    if not BINARY.exists() or BINARY.stat().st_mtime < source.stat().st_mtime:
        BINARY.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": str(GOPATH),
            "GOCACHE": str(BINARY.parent / "cache"),
            "GOFLAGS": "",
        }
        build = subprocess.run(
            ["go", "build", "-o", str(BINARY), "."],
            cwd=SOURCE,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if build.returncode != 0:
            pytest.fail(f"the Go recipes driver did not build:\n{build.stderr[-3000:]}")
    return BINARY


class GoRecipes:
    """One Go process with a client and a session; commands run concurrently in it."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._ids = itertools.count()
        self._pending: dict[str, asyncio.Future[str]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(STEP):
            first = await self.proc.stdout.readline()
        if first.strip() != b"ready":
            raise RuntimeError(f"the Go driver did not start: {first!r} {await self._stderr()}")
        self._reader = asyncio.create_task(self._read())

    async def _stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                return (await self.proc.stderr.read()).decode(errors="replace")[-2000:]
        return ""

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            ident, status, *rest = line.decode().rstrip("\n").split(" ", 2)
            future = self._pending.pop(ident, None)
            if future is None or status not in ("ok", "err"):
                # Every command still waiting fails now, not at its timeout.
                self._fail_all(RuntimeError(f"unexpected line from the Go driver: {line!r}"))
                return
            value = rest[0] if rest else ""
            if status == "ok":
                future.set_result(value)
            else:
                future.set_exception(RuntimeError(f"Go: {value}"))
        self._fail_all(EOFError(f"the Go driver ended: {await self._stderr()}"))

    def _fail_all(self, error: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    def send(self, *command: str) -> asyncio.Future[str]:
        """Start *command* in the Go process; the future ends with its reply."""
        assert self.proc.stdin is not None
        ident = str(next(self._ids))
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        self.proc.stdin.write(" ".join((ident, *command)).encode() + b"\n")
        return future

    async def call(self, *command: str) -> str:
        async with asyncio.timeout(STEP):
            return await self.send(*command)

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(STEP):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for future in self._pending.values():
            future.cancel()


@pytest.fixture
async def go(
    go_recipes_binary: Path, etcd_client: aetcd.Client
) -> AsyncIterator[GoRecipes]:
    endpoint = etcd_client.settings.endpoints[0].address
    proc = await asyncio.create_subprocess_exec(
        str(go_recipes_binary),
        endpoint,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    driver = GoRecipes(proc)
    try:
        await driver.start()
        yield driver
    finally:
        await driver.close()


async def done(aw: Awaitable[object]) -> object:
    async with asyncio.timeout(STEP):
        return await aw


async def key_under(client: aetcd.Client, prefix: str, revision: int) -> bytes:
    """The first key created under *prefix* after *revision* (waits for it on a watch)."""
    async with asyncio.timeout(STEP), client.watch(
        prefix, prefix=True, start_revision=revision + 1
    ) as events:
        async for event in events:
            if event.type is aetcd.EventType.PUT and event.kv.version == 1:
                return event.kv.key
    raise AssertionError("the watch ended")


# -- queues ----------------------------------------------------------------------------------


async def test_queue_is_one_fifo_for_both(
    go: GoRecipes, etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "q"
    queue = Queue(etcd_client, name)
    await queue.enqueue(b"a1")
    await go.call("queue-enqueue", name, "g1")
    await queue.enqueue(b"a2")
    await go.call("queue-enqueue", name, "g2")
    assert await go.call("queue-dequeue", name) == "a1"
    assert await done(queue.dequeue()) == b"g1"
    assert await go.call("queue-dequeue", name) == "a2"
    assert await done(queue.dequeue()) == b"g2"

    # Each side, waiting on an empty queue, gets what the other enqueues.
    go_waiting = await blocked(go.send("queue-dequeue", name))
    await queue.enqueue(b"a3")
    assert await done(go_waiting) == "a3"
    aetcd_waiting = await blocked(queue.dequeue())
    await go.call("queue-enqueue", name, "g3")
    assert await done(aetcd_waiting) == b"g3"
    assert (await etcd_client.get(name + "/", prefix=True)).kvs == []


async def test_priority_queue_orders_both_sides_items(
    go: GoRecipes, etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "pq"
    queue = PriorityQueue(etcd_client, name)
    await go.call("pqueue-enqueue", name, "g-5", "5")
    await queue.enqueue(b"a-1-first", 1)
    await go.call("pqueue-enqueue", name, "g-1-second", "1")  # same band: after aetcd's
    await queue.enqueue(b"a-1-third", 1)
    await go.call("pqueue-enqueue", name, "g-0", "0")
    assert await done(queue.dequeue()) == b"g-0"
    assert await go.call("pqueue-dequeue", name) == "a-1-first"
    assert await done(queue.dequeue()) == b"g-1-second"
    assert await go.call("pqueue-dequeue", name) == "a-1-third"
    assert await done(queue.dequeue()) == b"g-5"
    # One key layout: <name>/<priority %05d>/<sequence %016d> for both sides.
    await queue.enqueue(b"x", 7)
    await go.call("pqueue-enqueue", name, "y", "7")
    keys = [kv.key for kv in (await etcd_client.get(name + "/", prefix=True)).kvs]
    prefix = (name + "/00007/").encode()
    assert len(keys) == 2 and all(k.startswith(prefix) for k in keys), keys
    sequences = sorted(int(k[len(prefix) :]) for k in keys)
    assert sequences[1] == sequences[0] + 1, keys


# -- barriers --------------------------------------------------------------------------------


async def test_barrier_held_by_one_side_blocks_the_other(
    go: GoRecipes, etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "barrier"
    barrier = Barrier(etcd_client, name)

    await go.call("barrier-hold", name)
    waiting = await blocked(barrier.wait())
    await go.call("barrier-release", name)
    await done(waiting)

    assert await barrier.hold()
    go_waiting = await blocked(go.send("barrier-wait", name))
    assert await barrier.release()
    await done(go_waiting)
    await go.call("barrier-wait", name)  # released: returns at once


async def test_double_barrier_with_participants_of_both(
    go: GoRecipes, etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "db"
    first = DoubleBarrier(etcd_client, name, 4)
    last = DoubleBarrier(etcd_client, name, 4)

    entering = [await blocked(first.enter())]
    entering.append(await blocked(go.send("dbarrier-enter", "g1", name, "4")))
    entering.append(await blocked(go.send("dbarrier-enter", "g2", name, "4")))
    await done(last.enter())  # the fourth lets everyone in
    await done(asyncio.gather(*entering))

    leaving = [await blocked(go.send("dbarrier-leave", "g1"))]
    leaving.append(await blocked(first.leave()))
    leaving.append(await blocked(go.send("dbarrier-leave", "g2")))
    await done(last.leave())  # the last to leave lets everyone out
    await done(asyncio.gather(*leaving))
    assert (await etcd_client.get(name + "/", prefix=True)).kvs == []


# -- RWMutex ---------------------------------------------------------------------------------


async def test_rwmutex_readers_share_and_writers_exclude_across_sides(
    go: GoRecipes, etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    name = etcd_prefix + "rw"
    rw = RWMutex(etcd_client, name)

    # Readers of both sides hold together.
    await go.call("rlock", "r1", name)
    reader = rw.read_lock()
    await done(reader.acquire())

    # A Go writer queues behind both readers, then an aetcd writer behind it.
    start = (await etcd_client.get("x")).header.revision
    go_writer = await blocked(go.send("lock", "w1", name))
    assert (await key_under(etcd_client, name + "/write/", start)).startswith(
        rw.prefix + b"write/"
    )
    writer = rw.write_lock()
    aetcd_writer = await blocked(writer.acquire())

    # A late Go reader waits for the older writers too (writers do not starve).
    late_reader = await blocked(go.send("rlock", "r2", name))

    await reader.release()
    await asyncio.sleep(BLOCKED)
    assert not go_writer.done(), "the Go writer got in while the Go reader held"
    await go.call("unlock", "r1")
    await done(go_writer)
    assert not aetcd_writer.done() and not late_reader.done()
    # An aetcd reader arriving while the Go writer holds waits for it.
    late = rw.read_lock()
    late_aetcd_reader = await blocked(late.acquire())

    await go.call("unlock", "w1")
    await done(aetcd_writer)
    assert writer.held
    await asyncio.sleep(BLOCKED)
    assert not late_reader.done(), "a Go reader got in while the aetcd writer held"
    assert not late_aetcd_reader.done(), "an aetcd reader got in while the aetcd writer held"
    await writer.release()
    await done(asyncio.gather(late_reader, late_aetcd_reader))  # readers share again
    await go.call("unlock", "r2")
    await late.release()
    assert (await etcd_client.get(name + "/", prefix=True)).kvs == []
