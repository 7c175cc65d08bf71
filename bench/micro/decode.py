# ruff: noqa: B007, B018  (throwaway measurement code)
"""Micro-benchmark: ways to turn a 1,000-key RangeResponse into Python objects.

Each candidate parses the response, builds its objects and reads every key and
value (what the range1000 workload does), minus the parse alone. Candidates
run interleaved, best of ``ROUNDS``: on a shared box only the minimum is
stable. ``python -m bench.micro.decode [ROUNDS]``.
"""

import dataclasses
import gc
import operator
import sys
import time
from collections import deque
from itertools import repeat
from operator import attrgetter

from aetcd._pb import rpc_pb2
from aetcd.types import KeyValue

try:  # the wire layer (aetcd._wire) builds the views
    from aetcd._wire.decode import get_view
except ImportError:  # older tree: the builders were in aetcd.types
    from aetcd.types import _get_view as get_view

resp = rpc_pb2.RangeResponse(count=1000)
resp.header.revision = 12345
for i in range(1000):
    resp.kvs.add(
        key=b"bench/range/k%04d" % i,
        value=b"v" * 32,
        create_revision=1000 + i,
        mod_revision=2000 + i,
        version=1,
        lease=0,
    )
data = resp.SerializeToString()
parse = rpc_pb2.RangeResponse.FromString
new = object.__new__


# -- the floor: read the message ---------------------------------------------------------


def floor(r):
    for p in r.kvs:
        p.key
        p.value


def iterate_only(r):
    for p in r.kvs:
        pass


# -- aetcd now: views (aetcd.types) ------------------------------------------------------


def views(r):
    for kv in get_view(r).kvs:
        kv.key
        kv.value


def views_build_only(r):
    get_view(r)


def views_all_fields(r):
    for kv in get_view(r).kvs:
        kv.key
        kv.value
        kv.create_revision
        kv.mod_revision
        kv.version
        kv.lease


# -- aetcd before: eager frozen slotted dataclass, built by a slot-setting constructor ----


@dataclasses.dataclass(frozen=True, slots=True)
class OldKV:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


_old_sets = [OldKV.__dict__[f.name].__set__ for f in dataclasses.fields(OldKV)]


def _old_make(key, value, cr, mr, v, lease, _s=_old_sets):
    o = new(OldKV)
    _s[0](o, key)
    _s[1](o, value)
    _s[2](o, cr)
    _s[3](o, mr)
    _s[4](o, v)
    _s[5](o, lease)
    return o


def eager_dataclass(r):
    kvs = [
        _old_make(p.key, p.value, p.create_revision, p.mod_revision, p.version, p.lease)
        for p in r.kvs
    ]
    for kv in kvs:
        kv.key
        kv.value


# -- alternatives -------------------------------------------------------------------------


class KVT(tuple):
    __slots__ = ()
    key = property(operator.itemgetter(0))
    value = property(operator.itemgetter(1))


tnew = tuple.__new__


def eager_tuple_subclass(r):
    kvs = [
        tnew(KVT, (p.key, p.value, p.create_revision, p.mod_revision, p.version, p.lease))
        for p in r.kvs
    ]
    for kv in kvs:
        kv.key
        kv.value


class KVE:
    """Key and value read eagerly into slots (C loops), the rest left in the message."""

    __slots__ = ("_pb", "key", "value")


_ke_pb, _ke_key, _ke_value = (KVE.__dict__[n].__set__ for n in ("_pb", "key", "value"))
_get_key, _get_value = attrgetter("key"), attrgetter("value")


def eager_key_value_slots(r):
    pbs = list(r.kvs)
    kvs = list(map(new, repeat(KVE, len(pbs))))
    deque(map(_ke_pb, kvs, pbs), maxlen=0)
    deque(map(_ke_key, kvs, map(_get_key, pbs)), maxlen=0)
    deque(map(_ke_value, kvs, map(_get_value, pbs)), maxlen=0)
    for kv in kvs:
        kv.key
        kv.value


class KVL:
    __slots__ = ("_pb",)
    key = property(attrgetter("_pb.key"))
    value = property(attrgetter("_pb.value"))


_kvl_pb = KVL.__dict__["_pb"].__set__


def views_python_loop(r):
    kvs = []
    for p in r.kvs:
        o = new(KVL)
        _kvl_pb(o, p)
        kvs.append(o)
    for kv in kvs:
        kv.key
        kv.value


CANDIDATES = [
    ("iterate the repeated field only", iterate_only),
    ("floor: read key+value of each message", floor),
    ("views: get_view, build only", views_build_only),
    ("views: get_view + key+value (aetcd now)", views),
    ("views: + all six fields", views_all_fields),
    ("views built in a Python loop + key+value", views_python_loop),
    ("eager key/value slots (C loops) + key+value", eager_key_value_slots),
    ("eager tuple subclass + key+value", eager_tuple_subclass),
    ("eager frozen dataclass + key+value (aetcd before)", eager_dataclass),
]


def bench(rounds: int) -> dict[str, float]:
    best = {name: float("inf") for name, _ in CANDIDATES}
    best["parse"] = float("inf")
    n = 50
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            parse(data)
        best["parse"] = min(best["parse"], (time.perf_counter() - t0) / n)
        for name, fn in CANDIDATES:
            t0 = time.perf_counter()
            for _ in range(n):
                fn(parse(data))
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    return best


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    assert KeyValue  # the views under test
    best = bench(rounds)
    parse_t = best.pop("parse")
    floor_t = best["floor: read key+value of each message"] - parse_t
    print(f"{parse_t * 1e6:8.1f} us  parse (same for all; subtracted below)")
    for name, t in best.items():
        t -= parse_t
        print(f"{t * 1e6:8.1f} us per 1,000 keys  {t / floor_t:5.2f} x floor  {name}")
    print("gc tracked? view:", gc.is_tracked(get_view(parse(data)).kvs[0]))


if __name__ == "__main__":
    main()
