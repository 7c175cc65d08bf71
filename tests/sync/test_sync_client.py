"""The blocking client's own guarantees: threads, close, interruption, fork, loops."""

from __future__ import annotations

import _thread
import asyncio
import gc
import os
import queue
import signal
import threading
import time

import pytest

import aetcd
from aetcd import sync


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aetcd.sync"]


def test_kv_roundtrip_and_errors(sync_client: sync.Client, etcd_prefix: str) -> None:
    put = sync_client.put(etcd_prefix + "a", "1", prev_kv=True)
    assert isinstance(put, aetcd.PutResult) and put.prev_kv is None
    assert sync_client.get(etcd_prefix + "a").first.value == b"1"  # type: ignore[union-attr]
    res = sync_client.txn(
        compare=[aetcd.Compare.value(etcd_prefix + "a") == "1"],
        success=[aetcd.Op.put(etcd_prefix + "b", "2"), aetcd.Op.get(etcd_prefix, prefix=True)],
    )
    assert res.succeeded and res.responses[1].count == 2  # type: ignore[union-attr]
    assert sync_client.delete(etcd_prefix, prefix=True).deleted == 2
    # Bad input: the async client's typed errors, raised before any I/O.
    with pytest.raises(TypeError):
        sync_client.put(etcd_prefix + "a", 1)  # type: ignore[arg-type]
    with pytest.raises(aetcd.EmptyKeyError):
        sync_client.get("")
    with pytest.raises(aetcd.FutureRevisionError):
        sync_client.get(etcd_prefix, revision=10**12)


def test_threads_share_one_client(sync_client: sync.Client, etcd_prefix: str) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                key = f"{etcd_prefix}{n}/{i}"
                sync_client.put(key, str(i))
                assert sync_client.get(key).first.value == str(i).encode()  # type: ignore[union-attr]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sync_client.get(etcd_prefix, prefix=True, count_only=True).count == 32 * 20
    assert len(_loop_threads()) >= 1


def test_close_leaves_no_thread(etcd_server: object) -> None:
    before = len(_loop_threads())
    client = sync.Client(etcd_server.endpoint)  # type: ignore[attr-defined]
    assert len(_loop_threads()) == before + 1
    client.get("x")
    with client.lease(ttl=5):
        pass
    client.close()
    assert len(_loop_threads()) == before
    assert client.closed
    with pytest.raises(aetcd.ClientClosedError):
        client.get("x")
    client.close()  # twice is fine
    with sync.Client(etcd_server.endpoint) as c2:  # type: ignore[attr-defined]
        c2.get("x")
    assert len(_loop_threads()) == before


def test_close_while_threads_call(etcd_server: object, etcd_prefix: str) -> None:
    """Calls racing close() from other threads end promptly: refused with
    ClientClosedError (queued, not yet started, or issued after close), or, in
    flight, ended by the async client's close."""
    client = sync.Client(etcd_server.endpoint)  # type: ignore[attr-defined]
    outcomes: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
    started = threading.Barrier(17)

    def work(n: int) -> None:
        started.wait()
        try:
            while True:
                client.put(f"{etcd_prefix}{n}", "v")
        except BaseException as exc:
            outcomes.put(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.2)
    client.close()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    errors = [outcomes.get_nowait() for _ in threads]
    # A put in flight when the client closes raises what the async client raises.
    expected = (aetcd.ClientClosedError, aetcd.OutcomeUnknownError)
    odd = [e for e in errors if not isinstance(e, expected)]
    assert odd == [], odd


def _gone(thread: threading.Thread) -> bool:
    for _ in range(200):
        gc.collect()
        thread.join(0.05)
        if not thread.is_alive():
            return True
    return False


def test_dropped_client_stops_its_thread(etcd_server: object, etcd_prefix: str) -> None:
    """A client dropped without close() does not leak its loop thread: once it
    and every handle of it are collected, the async client is closed on the loop
    and the thread ends."""
    client = sync.Client(etcd_server.endpoint)  # type: ignore[attr-defined]
    thread = client._runner._thread
    assert thread in _loop_threads()
    client.put(etcd_prefix + "k", "v")
    lease = client.grant(30)
    del client
    gc.collect()
    assert thread.is_alive()  # the lease handle still uses the loop
    assert lease.refresh() > 0
    del lease
    assert _gone(thread), "the loop thread of a dropped client is still running"
    assert thread not in threading.enumerate()


def test_bad_constructor_arguments_leave_no_thread() -> None:
    before = len(_loop_threads())
    with pytest.raises(TypeError):
        sync.Client(coalesce_reads="yes")  # type: ignore[arg-type]
    assert len(_loop_threads()) == before


def test_inside_running_loop_raises(sync_client: sync.Client) -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"async aetcd\.Client"):
            sync_client.get("x")

    asyncio.run(main())
    sync_client.get("x")  # still usable outside the loop


def test_keyboard_interrupt_cancels_lock_wait(
    sync_client: sync.Client, etcd_server: object, etcd_prefix: str
) -> None:
    """Ctrl-C while blocked on a lock: the waiter's key is removed on the server."""
    name = etcd_prefix + "lock"
    with sync.Client(etcd_server.endpoint) as other:  # type: ignore[attr-defined]
        with other.lock(name, ttl=30):
            # A real SIGINT to the main thread, as Ctrl-C sends.
            main = threading.main_thread().ident
            assert main is not None
            timer = threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT))
            timer.start()
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                sync_client.lock(name, ttl=30).acquire()
            assert time.monotonic() - started < 5
            # The holder's key is the only one left: the waiter's key is gone.
            assert sync_client.get(name + "/", prefix=True).count == 1
    assert sync_client.get(name + "/", prefix=True).count == 0


def test_keyboard_interrupt_ends_a_watch_wait(sync_client: sync.Client, etcd_prefix: str) -> None:
    with sync_client.watch(etcd_prefix, prefix=True) as watch:
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            next(watch)
        # The watch is still usable: nothing was lost by the interruption.
        sync_client.put(etcd_prefix + "k", "v")
        assert next(watch).kv.value == b"v"


def test_forked_child_gets_a_clear_error(sync_client: sync.Client) -> None:
    sync_client.get("x")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what a call does, then leave at once
        try:
            try:
                sync_client.get("x")
                message = b"no error"
            except aetcd.ClientClosedError as exc:
                message = b"ClientClosedError: " + str(exc).encode()
            except BaseException as exc:
                message = type(exc).__name__.encode()
            sync_client.close()  # must not hang either
            os.write(write, message)
        finally:
            os._exit(0)
    os.close(write)
    started = time.monotonic()
    data = b""
    while chunk := os.read(read, 1024):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    assert time.monotonic() - started < 10
    assert data.startswith(b"ClientClosedError:") and b"fork" in data, data
    sync_client.get("x")  # the parent's client is unaffected


def test_lease_on_renewed_and_release(sync_client: sync.Client, etcd_prefix: str) -> None:
    """The async Lease's on_renewed and release, from threads: the callback runs on the
    client's loop thread, so it gets a thread-safe queue."""
    renewals: queue.SimpleQueue[int] = queue.SimpleQueue()
    with sync_client.lease(ttl=2) as lease:
        lease.on_renewed(renewals.put)
        assert renewals.get(timeout=3) == 2  # from the background keep-alive
        assert lease.refresh() == 2
        assert renewals.get(timeout=1) == 2  # a refresh counts too
        lease.on_renewed(None)
        lease.refresh()
        assert renewals.empty()
        sync_client.put(etcd_prefix + "k", "v", lease=lease)
        lease.release()
        assert not lease.alive and "released" in str(lease.lost_reason)
        assert sync_client.time_to_live(lease, keys=True).keys == [(etcd_prefix + "k").encode()]
