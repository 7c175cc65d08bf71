"""STM: isolation levels under contention, own writes, limits, retries, interleavings."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

import aetcd
from aetcd.recipes.stm import STM, Isolation, STMConflictError, stm

CHECKED = [Isolation.SERIALIZABLE_SNAPSHOT, Isolation.SERIALIZABLE, Isolation.REPEATABLE_READS]

ACCOUNTS = 5
WORKERS = 8
TRANSFERS = 10
START = 100


async def _bank(
    client: aetcd.Client, prefix: str, isolation: Isolation
) -> tuple[int, int, list[int]]:
    """Random transfers from WORKERS tasks; returns (runs of fn, transfers, final balances)."""
    keys = [f"{prefix}acct/{i}" for i in range(ACCOUNTS)]
    for key in keys:
        await client.put(key, str(START))
    runs = 0
    rng = random.Random(1234)

    def transfer(src: str, dst: str, amount: int) -> Callable[[STM], Awaitable[None]]:
        async def fn(tx: STM) -> None:
            nonlocal runs
            runs += 1
            a = int(await tx.get(src))
            # Give the other workers a chance to commit in between.
            await asyncio.sleep(rng.random() * 0.003)
            b = int(await tx.get(dst))
            if a >= amount:
                tx.put(src, str(a - amount))
                tx.put(dst, str(b + amount))

        return fn

    async def worker() -> None:
        for _ in range(TRANSFERS):
            src, dst = rng.sample(keys, 2)
            await stm(client, transfer(src, dst, rng.randint(1, 30)), isolation=isolation)

    async with asyncio.TaskGroup() as tg:
        for _ in range(WORKERS):
            tg.create_task(worker())
    balances = [int((await client.get(k)).kvs[0].value) for k in keys]
    return runs, WORKERS * TRANSFERS, balances


async def test_docstring_example(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    a, b = etcd_prefix + "acct/a", etcd_prefix + "acct/b"
    await etcd_client.put(a, "100")
    await etcd_client.put(b, "0")

    # The example of aetcd.recipes.stm's docstring.
    async def transfer(tx: STM) -> None:
        a_ = int(await tx.get(a))
        b_ = int(await tx.get(b))
        tx.put(a, str(a_ - 10))
        tx.put(b, str(b_ + 10))

    await stm(etcd_client, transfer)
    assert [(await etcd_client.get(k)).kvs[0].value for k in (a, b)] == [b"90", b"10"]


@pytest.mark.parametrize("isolation", CHECKED, ids=lambda i: i.name)
async def test_bank_invariant_holds(
    etcd_client: aetcd.Client, etcd_prefix: str, isolation: Isolation
) -> None:
    runs, transfers, balances = await _bank(etcd_client, etcd_prefix, isolation)
    assert sum(balances) == ACCOUNTS * START
    assert min(balances) >= 0
    assert runs > transfers, "no conflict was detected: the test did not contend"


async def test_bank_read_committed_never_retries(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    # READ_COMMITTED has no commit checks: each function runs exactly once, and
    # lost updates may break the invariant (shown deterministically below).
    runs, transfers, _ = await _bank(etcd_client, etcd_prefix, Isolation.READ_COMMITTED)
    assert runs == transfers


@pytest.mark.parametrize("isolation", list(Isolation), ids=lambda i: i.name)
async def test_interleaved_transfer(
    etcd_client: aetcd.Client, etcd_prefix: str, isolation: Isolation
) -> None:
    """A transfer commits between another transfer's reads and its commit."""
    a, b, c = (etcd_prefix + x for x in "abc")
    for key in (a, b, c):
        await etcd_client.put(key, "100")
    read_a = asyncio.Event()
    go_on = asyncio.Event()
    runs = 0

    async def slow(tx: STM) -> None:  # a -> b, 10
        nonlocal runs
        runs += 1
        x = int(await tx.get(a))
        if runs == 1:
            read_a.set()
            await go_on.wait()
        y = int(await tx.get(b))
        tx.put(a, str(x - 10))
        tx.put(b, str(y + 10))

    async def fast(tx: STM) -> None:  # a -> c, 50
        x, z = int(await tx.get(a)), int(await tx.get(c))
        tx.put(a, str(x - 50))
        tx.put(c, str(z + 50))

    task = asyncio.create_task(stm(etcd_client, slow, isolation=isolation))
    await read_a.wait()
    await stm(etcd_client, fast)
    go_on.set()
    await task
    total = sum([int((await etcd_client.get(k)).kvs[0].value) for k in (a, b, c)])
    if isolation is Isolation.READ_COMMITTED:
        assert runs == 1
        assert total == 350, "the lost update should have created money"
    else:
        assert runs == 2
        assert total == 300
        assert (await etcd_client.get(a)).kvs[0].value == b"40"


@pytest.mark.parametrize(
    ("isolation", "conflicts"),
    [
        (Isolation.SERIALIZABLE_SNAPSHOT, True),
        (Isolation.SERIALIZABLE, False),
        (Isolation.REPEATABLE_READS, False),
    ],
    ids=lambda x: x.name if isinstance(x, Isolation) else str(x),
)
async def test_blind_write_conflicts_only_under_snapshot(
    etcd_client: aetcd.Client, etcd_prefix: str, isolation: Isolation, conflicts: bool
) -> None:
    x, y = etcd_prefix + "x", etcd_prefix + "y"
    await etcd_client.put(x, "1")
    runs = 0

    async def fn(tx: STM) -> None:
        nonlocal runs
        runs += 1
        await tx.get(x)
        if runs == 1:
            await etcd_client.put(y, "other")  # y changes after our snapshot
        tx.put(y, "mine")  # written without being read

    await stm(etcd_client, fn, isolation=isolation)
    assert runs == (2 if conflicts else 1)
    assert (await etcd_client.get(y)).kvs[0].value == b"mine"


@pytest.mark.parametrize("isolation", list(Isolation), ids=lambda i: i.name)
async def test_reads_see_own_writes(
    etcd_client: aetcd.Client, etcd_prefix: str, isolation: Isolation
) -> None:
    k, gone, missing = etcd_prefix + "k", etcd_prefix + "gone", etcd_prefix + "missing"
    await etcd_client.put(k, "old")
    await etcd_client.put(gone, "here")

    async def fn(tx: STM) -> tuple[bytes, ...]:
        before = await tx.get(k)
        tx.put(k, "new")
        tx.delete(gone)
        return before, await tx.get(k), await tx.get(gone), await tx.get(missing)

    assert await stm(etcd_client, fn, isolation=isolation) == (b"old", b"new", b"", b"")
    assert (await etcd_client.get(k)).kvs[0].value == b"new"
    assert not (await etcd_client.get(gone)).kvs


async def test_rev_and_prefetch(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    a, b, missing = etcd_prefix + "a", etcd_prefix + "b", etcd_prefix + "missing"
    put = await etcd_client.put(a, "1")
    await etcd_client.put(b, "2")

    async def fn(tx: STM) -> tuple[int, int, bytes, bytes]:
        tx.put(a, "changed")  # buffered writes do not change rev()
        return await tx.rev(a), await tx.rev(missing), await tx.get(b), await tx.get(a)

    got = await stm(etcd_client, fn, prefetch=[a, b, missing])
    assert got == (put.header.revision, 0, b"2", b"changed")


async def test_exception_aborts_without_writing(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    k = etcd_prefix + "k"

    async def fn(tx: STM) -> None:
        tx.put(k, "x")
        raise KeyError("nope")

    with pytest.raises(KeyError):
        await stm(etcd_client, fn)
    assert not (await etcd_client.get(k)).kvs


async def test_too_many_writes_fail_typed(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    limit = etcd_client.settings.max_txn_ops
    runs = 0

    async def fn(tx: STM) -> None:
        nonlocal runs
        runs += 1
        for i in range(limit + 1):
            tx.put(f"{etcd_prefix}{i}", "v")

    with pytest.raises(aetcd.TooManyOpsError):
        await stm(etcd_client, fn)
    assert runs == 1
    assert (await etcd_client.get(etcd_prefix, prefix=True, count_only=True)).count == 0


async def test_gives_up_after_max_retries(etcd_client: aetcd.Client, etcd_prefix: str) -> None:
    k = etcd_prefix + "k"
    runs = 0

    async def always_conflicts(tx: STM) -> None:
        nonlocal runs
        runs += 1
        value = await tx.get(k)
        await etcd_client.put(k, f"interfering {runs}")
        tx.put(k, value + b"!")

    with pytest.raises(STMConflictError) as info:
        await stm(etcd_client, always_conflicts, max_retries=2)
    assert runs == 3 and info.value.attempts == 3
    assert isinstance(info.value, aetcd.EtcdError) and info.value.retryable
    assert (await etcd_client.get(k)).kvs[0].value == b"interfering 3"


async def test_stm_object_is_only_valid_during_its_run(
    etcd_client: aetcd.Client, etcd_prefix: str
) -> None:
    kept: list[STM] = []

    async def fn(tx: STM) -> int:
        kept.append(tx)
        return tx.attempt

    assert await stm(etcd_client, fn) == 1
    with pytest.raises(RuntimeError):
        await kept[0].get(etcd_prefix + "k")
    with pytest.raises(TypeError):
        await stm(etcd_client, fn, isolation="serializable")  # type: ignore[arg-type]
