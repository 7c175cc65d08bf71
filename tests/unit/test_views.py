"""Views of large responses: built with the collector paused, never left paused.

aetcd._wire.decode builds the KeyValue views of a large range with the cyclic garbage
collector paused (nothing built there can be garbage yet); the caller's GC
setting must come out as it went in, whatever happens.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aetcd import GetResult, KeyValue
from aetcd._pb import rpc_pb2
from aetcd._wire import decode
from aetcd._wire.decode import PAUSE_GC_FROM, delete_view, get_view, kv_views
from aetcd.types import ResponseHeader

SIZES = [0, 1, 2, PAUSE_GC_FROM - 1, PAUSE_GC_FROM, 1000]


def range_response(n: int) -> rpc_pb2.RangeResponse:
    resp = rpc_pb2.RangeResponse(count=n)
    resp.header.revision = 9
    for i in range(n):
        resp.kvs.add(key=b"k%04d" % i, value=b"v%d" % i, create_revision=i + 1, mod_revision=i + 2)
    return resp


@pytest.fixture
def gc_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("enabled", [True, False])
def test_gc_setting_is_kept(gc_restored: None, n: int, enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    result = get_view(range_response(n))
    assert gc.isenabled() is enabled
    assert len(result) == n and result.count == n
    assert [kv.key for kv in result] == [b"k%04d" % i for i in range(n)]
    expected = [KeyValue(b"k%04d" % i, b"v%d" % i, i + 1, i + 2, 0, 0) for i in range(n)]
    assert result.kvs == expected
    assert result == GetResult(ResponseHeader(0, 0, 9, 0), expected, n, False)


def test_gc_enabled_again_when_building_fails(
    gc_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.enable()

    class Boom(Exception):
        pass

    def fail(kv: object, pb: object) -> None:
        raise Boom

    monkeypatch.setattr(decode, "set_pb", fail)
    with pytest.raises(Boom):
        kv_views(range_response(PAUSE_GC_FROM).kvs)
    assert gc.isenabled()


def test_delete_prev_kvs_of_a_large_delete(gc_restored: None) -> None:
    gc.enable()
    n = PAUSE_GC_FROM * 2
    resp = rpc_pb2.DeleteRangeResponse(deleted=n, prev_kvs=range_response(n).kvs)
    result = delete_view(resp)
    assert gc.isenabled()
    assert result.deleted == n and [kv.key for kv in result.prev_kvs][-1] == b"k%04d" % (n - 1)

