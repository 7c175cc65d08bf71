"""The wire layer: the only code that knows etcd's protobuf messages.

Nothing outside this package (and the generated ``aetcd._pb``) imports
``aetcd._pb``; ``tests/unit/test_structure.py`` scans for it.

- :mod:`.messages`: the request classes and service stubs the services send with;
- :mod:`.view`: the engine that makes a frozen dataclass a view of a message
  (a leaf: :mod:`aetcd.types` builds the public results with it);
- :mod:`.decode`: response messages to results (views and small decoders);
- :mod:`.requests`: :class:`aetcd.Op` and :class:`aetcd.Compare` to messages,
  and the txn checks that need the built message;
- :mod:`.namespace`: a client namespace, added to requests and removed from results.
"""
