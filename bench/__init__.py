"""aetcd's benchmark suite (``scripts/bench``); not part of the installed library.

The orchestrator (``python -m bench``) starts etcd, runs every (workload,
implementation) pair in a worker process of its own (``bench/worker.py``),
interleaved and repeated so that drift on a shared machine cancels out, and
reports ops/s, latency percentiles, client CPU per operation and the ratio to
the bare ``grpc.aio`` floor measured in the same run.

Modules: ``harness`` (closed loops and statistics, standard library only),
``worker`` (the implementations), ``peers`` (``--setup-peers``), ``report``
(table, JSON, PNG, BENCHMARKS.md), ``spy`` (py-spy profiles), ``golang``
(the optional Go clientv3 figure).
"""
