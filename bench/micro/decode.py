# ruff: noqa: B007, B018, B023, E402  (throwaway measurement code)
"""Micro-benchmark: ways to turn a 1,000-key RangeResponse into Python objects."""

import operator
import timeit

from aetcd._pb import rpc_pb2
from aetcd.types import GetResult, KeyValue

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


def parse():
    return rpc_pb2.RangeResponse.FromString(data)


class KVT(tuple):
    __slots__ = ()
    key = property(operator.itemgetter(0))
    value = property(operator.itemgetter(1))
    create_revision = property(operator.itemgetter(2))
    mod_revision = property(operator.itemgetter(3))
    version = property(operator.itemgetter(4))
    lease = property(operator.itemgetter(5))


tnew = tuple.__new__


def current(r):
    return GetResult.from_pb(r)


def tuplesub(r):
    return [
        tnew(KVT, (p.key, p.value, p.create_revision, p.mod_revision, p.version, p.lease))
        for p in r.kvs
    ]


def plain_tuples(r):
    return [(p.key, p.value, p.create_revision, p.mod_revision, p.version, p.lease) for p in r.kvs]


def key_value_only(r):
    for p in r.kvs:
        p.key
        p.value


def dataclass_init(r):
    return [
        KeyValue(p.key, p.value, p.create_revision, p.mod_revision, p.version, p.lease)
        for p in r.kvs
    ]


def listfields(r):
    # ListFields gives (descriptor, value) pairs of the set fields in one C call
    return [p.ListFields() for p in r.kvs]


def iterate_only(r):
    for p in r.kvs:
        pass


N = 200
for name, fn in [
    ("parse (grpc deserialize, same for all)", None),
    ("iterate only", iterate_only),
    ("touch key+value (floor)", key_value_only),
    ("plain 6-tuples", plain_tuples),
    ("tuple subclass KeyValue", tuplesub),
    ("current GetResult.from_pb", current),
    ("dataclass __init__", dataclass_init),
    ("ListFields", listfields),
]:
    if fn is None:
        t = min(timeit.repeat(parse, number=N, repeat=5)) / N
    else:
        r = parse()
        t = (
            min(timeit.repeat(lambda: fn(parse()), number=N, repeat=5)) / N
            - min(timeit.repeat(parse, number=N, repeat=5)) / N
        )
    print(f"{t * 1e6:8.1f} us per 1,000 keys  {name}")

import gc

print("--- with gc disabled")
gc.disable()
for name, fn in [
    ("touch key+value (floor)", key_value_only),
    ("plain 6-tuples", plain_tuples),
    ("tuple subclass KeyValue", tuplesub),
    ("current GetResult.from_pb", current),
]:
    t = (
        min(timeit.repeat(lambda: fn(parse()), number=N, repeat=5)) / N
        - min(timeit.repeat(parse, number=N, repeat=5)) / N
    )
    print(f"{t * 1e6:8.1f} us per 1,000 keys  {name}")
gc.enable()
print(
    "gc tracked? KeyValue:",
    gc.is_tracked(current(parse()).kvs[0]),
    " tuple-subclass:",
    gc.is_tracked(tuplesub(parse())[0]),
)
