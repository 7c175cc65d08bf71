"""The seed use cases in blocking form, with ``aetcd.sync`` and plain threads.

A synchronous worker process (a Celery or cron worker, a Django management
command) usually needs four things from etcd, and this example shows each with
the blocking client, one client shared by every thread:

* a configuration mirror that is hot-reloaded (``client.config(prefix)``):
  reads are served from memory, changes arrive in revision order;
* a lock around a job, taken by several threads in turn, with the protected
  write fenced by ``lock.guard()`` (``client.lock(name)``);
* registration and discovery of a service instance while it is alive
  (``client.register`` / ``client.discover``);
* a leader election among threads (``client.election(name)``), where the
  leader resigns and the next candidate takes over.

Run it against an etcd you have (``--endpoint HOST:PORT``, default
127.0.0.1:2379) or let it start one (``--embedded``)::

    python examples/sync_worker.py --embedded

Every key it writes is under ``examples/sync_worker/``, removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Iterator

from aetcd import Op, sync

PREFIX = "examples/sync_worker/"


def config_reload(client: sync.Client) -> None:
    client.put(PREFIX + "config/db/pool", "10")
    with client.config(PREFIX + "config/") as cfg:
        print(f"config: db/pool = {cfg['db/pool'].decode()!r}")
        changes = cfg.changes()
        client.put(PREFIX + "config/db/pool", "20")
        change = next(changes)
        print(f"reload: {change.key} = {change.value.decode()!r}")
        changes.close()


def locked_jobs(client: sync.Client, workers: int) -> None:
    client.put(PREFIX + "counter", "0")

    def worker(n: int) -> None:
        with client.lock(PREFIX + "lock", ttl=10, timeout=30) as lock:
            value = int(client.get(PREFIX + "counter").first.value)  # type: ignore[union-attr]
            done = client.txn(
                compare=[lock.guard()], success=[Op.put(PREFIX + "counter", str(value + 1))]
            )
            print(f"worker-{n}: fenced write applied? {done.succeeded}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = client.get(PREFIX + "counter").first.value.decode()  # type: ignore[union-attr]
    print(f"counter = {total} after {workers} workers")


def registration(client: sync.Client) -> None:
    service = PREFIX + "svc"
    with client.discover(service) as view:
        updates = view.updates()  # each new set of instances, in order
        with client.register(service, "10.0.0.7:8080", ttl=5):
            while not view.instances:
                next(updates)
            print(f"discovered: {sorted(view.instances)}")
        while view.instances:
            next(updates)
        print(f"after leaving: {sorted(view.instances)}")
        updates.close()


def election(client: sync.Client) -> None:
    name = PREFIX + "election"
    order: list[str] = []
    first_in = threading.Event()

    def candidate(who: str) -> None:
        e = client.election(name, ttl=5)
        e.campaign(who)
        order.append(who)
        first_in.set()
        e.resign()

    a = threading.Thread(target=candidate, args=("a",))
    a.start()
    first_in.wait()
    b = threading.Thread(target=candidate, args=("b",))
    b.start()
    a.join()
    b.join()
    print(f"leaders in turn: {order}")


@contextlib.contextmanager
def etcd(args: argparse.Namespace) -> Iterator[str]:
    if not args.embedded:
        yield args.endpoint
        return
    from aetcd.testing import EtcdServer

    with EtcdServer() as server:
        yield server.endpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="127.0.0.1:2379")
    parser.add_argument("--embedded", action="store_true", help="start a private etcd")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    with etcd(args) as endpoint, sync.Client(endpoint) as client:
        try:
            config_reload(client)
            locked_jobs(client, args.workers)
            registration(client)
            election(client)
            print("done")
        finally:
            client.delete(PREFIX, prefix=True)


if __name__ == "__main__":
    main()
