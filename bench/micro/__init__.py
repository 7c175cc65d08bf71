"""Micro-benchmarks behind the findings of BENCHMARKS.md ("Where aetcd's time goes").

Run from the repository root with ``.venv/bin/python -m bench.micro.NAME [ENDPOINT]``:

``overhead``   aetcd's Python cost per put/get/txn call with the RPC replaced by
               an instant fake (pokes at ``Transport.members`` / ``Member._callables``:
               internals, adjust when they change). Needs an etcd endpoint.
``txn_parts``  the pieces of building and decoding a compare-and-swap txn.
``decode``     ways to turn a 1,000-key RangeResponse into Python objects.
``hasleader``  in-process A/B of bare grpc.aio Put/Range with and without the
               ``hasleader`` metadata (``ENDPOINT put|get``; get reads bench/get/).
``coalesce``   Python cost per coalesced ``get`` (get64: 64 tasks) with the
               Range and Txn RPCs faked out (no endpoint; ``[TASKS] [DELAY]``),
               and how many reads went alone (each a whole RPC under real load).
``watch``      Python cost per watch event with the stream faked: the floor's
               read loop, a reader-task-to-consumer hand-off alone, aetcd's
               watch, and an event's view alone (no endpoint; ``[N]`` events).

Prototype a library change by copying ``aetcd/`` elsewhere, editing it and
running with ``PYTHONPATH=/that/copy``.
"""
