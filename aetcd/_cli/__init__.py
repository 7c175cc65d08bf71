"""The ``aetcd`` command line (``python -m aetcd``), built on the public API only.

:mod:`aetcd.cli` is its front door; the commands live in one module per etcd
service: ``kv`` (get, put, del, txn, compaction), ``watch``, ``lease``,
``concurrency`` (lock, elect), ``cluster`` (member, endpoint, move-leader),
``maintenance`` (snapshot, defrag, alarm), ``auth`` (auth, user, role).
"""
