"""ByteBudget: limits, FIFO fairness, cancellation safety."""

from __future__ import annotations

import asyncio
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqueuepipe import ByteBudget

from ._helpers import cancel_and_check
from ._sync import run_ready


@pytest.mark.parametrize("limit", [0, -1, -(2**40)])
def test_create_with_nonpositive_limit_says_it_must_be_positive(limit: int) -> None:
    with pytest.raises(
        ValueError, match=r"limit must be > 0 \(a positive number of bytes\)"
    ) as info:
        ByteBudget(limit)
    assert ">=" not in str(info.value)
    assert f"got {limit}" in str(info.value)


def test_create_with_non_int_limit_raises() -> None:
    with pytest.raises(TypeError, match="limit must be an int"):
        ByteBudget(1.5)  # type: ignore[arg-type]


def test_initial_state() -> None:
    budget = ByteBudget(100)
    assert (budget.limit, budget.used, budget.available, budget.peak) == (100, 0, 100, 0)


async def test_acquire_and_release_track_used_available_peak() -> None:
    budget = ByteBudget(100)
    await budget.acquire(30)
    await budget.acquire(50)
    assert (budget.used, budget.available, budget.peak) == (80, 20, 80)
    budget.release(60)
    assert (budget.used, budget.available, budget.peak) == (20, 80, 80)


async def test_acquire_more_than_limit_raises_at_once() -> None:
    budget = ByteBudget(100)
    with pytest.raises(ValueError, match=r"cannot acquire 101 bytes .* limit is 100"):
        await budget.acquire(101)
    assert budget.used == 0


async def test_acquire_negative_raises() -> None:
    budget = ByteBudget(100)
    with pytest.raises(ValueError, match=">= 0"):
        await budget.acquire(-1)


async def test_acquire_zero_never_blocks() -> None:
    budget = ByteBudget(10)
    await budget.acquire(10)
    await budget.acquire(0)
    assert budget.used == 10


def test_release_more_than_held_raises() -> None:
    budget = ByteBudget(100)
    with pytest.raises(ValueError, match="cannot release 1 bytes: only 0 are held"):
        budget.release(1)


async def test_release_negative_raises() -> None:
    budget = ByteBudget(100)
    await budget.acquire(10)
    with pytest.raises(ValueError, match=">= 0"):
        budget.release(-5)
    assert budget.used == 10


async def test_acquire_blocks_until_release() -> None:
    budget = ByteBudget(100)
    await budget.acquire(80)
    waiter = asyncio.create_task(budget.acquire(30))
    await run_ready()
    assert not waiter.done()
    assert budget.statistics().waiters == 1
    budget.release(10)  # 70 + 30 = 100 fits exactly
    await waiter
    assert budget.used == 100


async def test_try_acquire_does_not_jump_the_queue() -> None:
    budget = ByteBudget(100)
    await budget.acquire(90)
    big = asyncio.create_task(budget.acquire(50))
    await run_ready()
    assert budget.try_acquire(7) is False  # fits, but someone is waiting (and 7 > 100 // 16)
    assert budget.used == 90
    budget.release(90)
    await big
    assert budget.try_acquire(5) is True


async def test_try_acquire_is_false_while_a_cancelled_waiter_is_still_queued_ahead() -> None:
    budget = ByteBudget(100)
    await budget.acquire(90)
    first = asyncio.create_task(budget.acquire(50))
    second = asyncio.create_task(budget.acquire(20))
    await run_ready()
    await cancel_and_check(first)
    # The cancelled request is gone, but the second still waits (90 + 20 > 100).
    assert budget.try_acquire(10) is False
    budget.release(90)
    await second
    assert budget.try_acquire(10) is True
    assert budget.used == 30


def test_try_acquire_takes_what_fits_and_updates_peak() -> None:
    budget = ByteBudget(100)
    assert budget.try_acquire(60) is True
    assert budget.try_acquire(40) is True  # exactly the limit
    assert (budget.used, budget.available, budget.peak) == (100, 0, 100)
    budget.release(70)
    assert budget.try_acquire(10) is True
    assert (budget.used, budget.peak) == (40, 100)


def test_try_acquire_refuses_what_does_not_fit_and_changes_nothing() -> None:
    budget = ByteBudget(100)
    assert budget.try_acquire(70) is True
    assert budget.try_acquire(31) is False
    assert (budget.used, budget.peak) == (70, 70)
    assert budget.statistics().waiters == 0  # a refusal queues nothing


def test_try_acquire_zero_succeeds_even_when_full() -> None:
    budget = ByteBudget(10)
    assert budget.try_acquire(10) is True
    assert budget.try_acquire(0) is True
    assert budget.used == 10


def test_try_acquire_invalid_sizes_raise() -> None:
    budget = ByteBudget(100)
    with pytest.raises(ValueError, match=r"cannot acquire 101 bytes .* limit is 100"):
        budget.try_acquire(101)
    with pytest.raises(ValueError, match=">= 0"):
        budget.try_acquire(-1)
    with pytest.raises(TypeError, match="must be an int"):
        budget.try_acquire(True)
    with pytest.raises(TypeError, match="must be an int"):
        budget.try_acquire(1.0)  # type: ignore[arg-type]
    assert budget.used == 0


@settings(max_examples=100, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=1000),
    steps=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=1000)), max_size=60),
)
def test_try_acquire_never_exceeds_the_limit(limit: int, steps: list[tuple[bool, int]]) -> None:
    budget = ByteBudget(limit)
    held: list[int] = []
    for take, size in steps:
        if take:
            n = size % (limit + 1)
            fits = budget.used + n <= limit
            assert budget.try_acquire(n) is fits
            if fits:
                held.append(n)
        elif held:
            budget.release(held.pop(size % len(held)))
        assert 0 <= budget.used <= budget.limit
        assert budget.used == sum(held)
        assert budget.peak <= budget.limit


def test_release_rejects_what_is_not_an_int() -> None:
    budget = ByteBudget(100)
    assert budget.try_acquire(10)
    with pytest.raises(TypeError, match="must be an int"):
        budget.release(True)
    with pytest.raises(TypeError, match="must be an int"):
        budget.release(2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be an int"):
        budget.release("2")  # type: ignore[arg-type]
    assert budget.used == 10


def test_int_subclass_sizes_are_accepted() -> None:
    class Size(int):
        pass

    budget = ByteBudget(100)
    assert budget.try_acquire(Size(30)) is True
    budget.release(Size(30))
    assert budget.used == 0


async def test_fifo_large_request_not_starved_by_small_ones() -> None:
    limit = 20_000_000
    budget = ByteBudget(limit)
    await budget.acquire(1024)  # something is held, so the big one must wait
    order: list[str] = []

    async def take(name: str, n: int) -> None:
        await budget.acquire(n)
        order.append(name)

    big = asyncio.create_task(take("big", limit))
    await run_ready()
    # Above limit // 16: not small enough to pass a waiter, so they queue.
    smalls = [asyncio.create_task(take(f"small{i}", 1_300_000)) for i in range(5)]
    await run_ready()
    # The requests would fit, but they queued behind the big one.
    assert order == []
    assert budget.statistics().waiters == 6
    budget.release(1024)
    await big
    assert order == ["big"]
    budget.release(limit)
    await asyncio.gather(*smalls)
    assert budget.used == 5 * 1_300_000
    assert order == ["big", *(f"small{i}" for i in range(5))]


async def test_cancelled_acquire_holds_nothing_and_unblocks_later_waiters() -> None:
    budget = ByteBudget(100)
    await budget.acquire(60)
    blocker = asyncio.create_task(budget.acquire(50))  # head of queue, cannot fit
    await run_ready()
    small = asyncio.create_task(budget.acquire(30))  # fits, but FIFO behind blocker
    await run_ready()
    assert not small.done()
    await cancel_and_check(blocker)
    await small
    assert budget.used == 90
    assert budget.statistics().waiters == 0


async def test_acquire_cancelled_after_grant_gives_bytes_back() -> None:
    budget = ByteBudget(100)
    await budget.acquire(100)
    waiter = asyncio.create_task(budget.acquire(40))
    await run_ready()
    budget.release(100)  # grants the waiter's 40 bytes ...
    waiter.cancel()  # ... but it is cancelled before it could resume
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.used == 0


async def test_reserve_releases_on_normal_exit() -> None:
    budget = ByteBudget(100)
    async with budget.reserve(70):
        assert budget.used == 70
    assert budget.used == 0
    assert budget.peak == 70


async def test_reserve_releases_on_exception() -> None:
    budget = ByteBudget(100)
    with pytest.raises(RuntimeError):
        async with budget.reserve(70):
            raise RuntimeError("boom")
    assert budget.used == 0


async def test_reserve_releases_on_cancellation() -> None:
    budget = ByteBudget(100)
    entered = asyncio.Event()

    async def hold() -> None:
        async with budget.reserve(70):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    await entered.wait()
    assert budget.used == 70
    await cancel_and_check(task)
    assert budget.used == 0


async def test_reserve_more_than_limit_raises() -> None:
    budget = ByteBudget(10)
    with pytest.raises(ValueError, match="limit is 10"):
        async with budget.reserve(11):
            pass  # pragma: no cover


async def test_many_waiters_served_in_arrival_order() -> None:
    budget = ByteBudget(10)
    await budget.acquire(10)
    order: list[int] = []

    async def take(i: int) -> None:
        await budget.acquire(10)
        order.append(i)
        budget.release(10)

    tasks = [asyncio.create_task(take(i)) for i in range(20)]
    await run_ready()
    budget.release(10)
    await asyncio.gather(*tasks)
    assert order == list(range(20))
    assert budget.used == 0
    assert budget.peak == 10


async def test_small_requests_pass_a_large_waiter_that_cannot_fit() -> None:
    """A stalled holder keeps the bytes a large request needs: small requests that
    fit still go through, within the first waiter's allowance (limit // 8)."""
    budget = ByteBudget(1600)
    await budget.acquire(1000)  # a stalled reader's pipe, say
    large = asyncio.create_task(budget.acquire(800))  # cannot fit while it stalls
    await run_ready()
    await asyncio.wait_for(budget.acquire(100), 1)  # small (<= 1600 // 16): passes
    assert budget.try_acquire(100) is True  # so does a polled one
    assert not large.done() and budget.used == 1200
    budget.release(200)
    assert not large.done()
    budget.release(1000)  # the stall ends: the large request is served first
    await large
    assert budget.used == 800


async def test_large_waiter_is_delayed_by_at_most_its_allowance_of_small_ones() -> None:
    budget = ByteBudget(1600)
    await budget.acquire(1000)
    large = asyncio.create_task(budget.acquire(800))
    await run_ready()
    for _ in range(2):  # 2 x 100 = 200 = 1600 // 8: the allowance
        await budget.acquire(100)
    third = asyncio.create_task(budget.acquire(100))  # would fit, but the allowance is spent
    await run_ready()
    assert not third.done()
    assert budget.try_acquire(1) is False
    budget.release(1000 + 200)  # the large one is served before the queued small one
    await large
    await third
    assert budget.used == 900


async def test_requests_above_the_small_size_never_pass() -> None:
    budget = ByteBudget(1600)
    await budget.acquire(1000)
    large = asyncio.create_task(budget.acquire(800))
    await run_ready()
    medium = asyncio.create_task(budget.acquire(101))  # > 1600 // 16
    await run_ready()
    assert not medium.done()
    budget.release(1000)
    await large
    await medium
    assert budget.used == 901


async def test_queued_small_request_passes_a_new_first_waiter_that_cannot_fit() -> None:
    budget = ByteBudget(1600)
    await budget.acquire(1550)
    first = asyncio.create_task(budget.acquire(200))
    second = asyncio.create_task(budget.acquire(1500))
    small = asyncio.create_task(budget.acquire(100))  # does not fit yet: queued
    await run_ready()
    assert not small.done()
    budget.release(250)  # first fits and is served; second cannot fit ...
    await first
    await small  # ... and the queued small request passes it
    assert not second.done()
    assert budget.used == 1600
    budget.release(1600)
    await second
    assert budget.used == 1500


async def test_lease_holds_its_bytes_until_closed_and_close_is_idempotent() -> None:
    budget = ByteBudget(100)
    lease = await budget.lease(40)
    assert (lease.held, budget.used) == (40, 40)
    lease.shrink(10)
    assert (lease.held, budget.used) == (10, 10)
    lease.close()
    lease.close()
    assert (lease.held, budget.used) == (0, 0)


async def test_growable_lease_grows_to_up_to() -> None:
    budget = ByteBudget(100)
    lease = await budget.lease(5, up_to=60)
    assert budget.used == 5
    await lease.grow()
    assert (lease.held, budget.used) == (60, 60)
    with pytest.raises(RuntimeError, match="cannot grow"):
        await lease.grow()
    lease.close()
    assert budget.used == 0


async def test_lease_that_cannot_grow_to_more_than_the_limit_is_refused() -> None:
    budget = ByteBudget(100)
    with pytest.raises(ValueError, match="limit is 100"):
        await budget.lease(5, up_to=101)
    with pytest.raises(ValueError, match="cannot grow to 4"):
        await budget.lease(5, up_to=4)
    assert budget.used == 0


async def test_growth_is_served_before_earlier_waiters() -> None:
    budget = ByteBudget(100)
    head = await budget.lease(10, up_to=50)
    other = await budget.lease(10, up_to=50)  # 20 held, 40 kept for a growth
    await budget.acquire(40)
    plain = asyncio.create_task(budget.acquire(30))
    await run_ready()
    grow = asyncio.create_task(other.grow())
    await run_ready()
    assert not plain.done() and not grow.done()
    budget.release(40)  # 20 held: the growth goes first, then 30 cannot fit beside 40 kept
    await grow
    assert not plain.done() and budget.used == 60
    head.close()  # nothing kept any more
    await plain
    assert budget.used == 80
    other.close()
    budget.release(30)


async def test_plain_requests_and_new_leases_leave_the_largest_growth_free() -> None:
    budget = ByteBudget(100)
    lease = await budget.lease(10, up_to=50)
    assert budget.kept == 40
    assert budget.try_acquire(51) is False  # 10 + 51 would leave less than 40
    assert budget.try_acquire(50) is True
    late = asyncio.create_task(budget.lease(1, up_to=2))  # 61 + 1 + 40 > 100
    await run_ready()
    assert not late.done()
    await lease.grow(30)  # the head's steps always fit: 20 of its growth still kept
    assert (lease.held, budget.kept, budget.used) == (30, 20, 80)
    await lease.grow()
    assert budget.kept == 0 and budget.used == 100
    budget.release(50)
    second = await late
    assert budget.kept == 1
    lease.close()
    second.close()
    assert budget.used == 0


async def test_a_lease_grows_in_steps_and_checks_them() -> None:
    budget = ByteBudget(100)
    lease = await budget.lease(4, up_to=64)
    for size in (8, 16, 32, 64):
        await lease.grow(size)
        assert (lease.held, budget.used, budget.kept) == (size, size, 64 - size)
    with pytest.raises(RuntimeError, match="cannot grow"):
        await lease.grow()
    other = await budget.lease(4, up_to=8)
    with pytest.raises(ValueError, match="cannot grow to 9"):
        await other.grow(9)
    with pytest.raises(ValueError, match="cannot grow to 4"):
        await other.grow(4)
    lease.close()
    other.close()
    assert (budget.used, budget.kept) == (0, 0)


@pytest.mark.parametrize("in_steps", [True, False], ids=["doubling", "at-once"])
async def test_growable_leases_beside_holders_that_never_let_go_all_complete(
    in_steps: bool,
) -> None:
    """The soak's freeze in small: 5 stalled readers hold 1 MiB each of 16 MiB, and
    20 streams each read 256 KiB before they know they need a part of 8 MiB.  Each
    stream grows by doubling as its bytes arrive, and closes its part once sent.
    The budget keeps the largest growth free, so all 20 complete, one head at a
    time, while the readers never give anything back; a 5-byte request gets through
    meanwhile.  (Admitting the streams against the limit alone, as before, let
    them take the bytes the growths needed and froze them all.)"""
    mib = 1 << 20
    budget = ByteBudget(16 * mib)
    for _ in range(5):
        await budget.acquire(mib)  # stalled readers' shares: never released
    done: list[int] = []

    async def stream(i: int) -> None:
        lease = await budget.lease(mib // 4, up_to=8 * mib)
        try:
            while lease.held < 8 * mib:
                await run_ready()  # the rest of the part arrives meanwhile
                if in_steps:
                    await lease.grow(min(8 * mib, 2 * lease.held))
                else:
                    await lease.grow()
                assert budget.used <= budget.limit
            await run_ready()  # the part is sent
        finally:
            lease.close()
        done.append(i)

    async with asyncio.timeout(5):
        tasks = [asyncio.create_task(stream(i)) for i in range(20)]
        await run_ready()
        await budget.acquire(5)  # a small request is not frozen out
        budget.release(5)
        await asyncio.gather(*tasks)
    assert sorted(done) == list(range(20))
    assert budget.used == 5 * mib and budget.kept == 0


async def test_many_growable_leases_never_deadlock_a_budget() -> None:
    """16 streams under 16 units, each reading a little before it knows it needs a
    part of 8: if all took their first bytes and then waited to grow, none could.
    The leases that would make that possible wait to start instead."""
    budget = ByteBudget(16 * 1024)
    finished: list[int] = []

    async def stream(i: int) -> None:
        lease = await budget.lease(1024, up_to=8 * 1024)
        try:
            await run_ready()  # everybody else starts meanwhile
            await lease.grow()
            assert budget.used <= budget.limit
        finally:
            lease.close()
        finished.append(i)

    async with asyncio.timeout(5):
        await asyncio.gather(*(stream(i) for i in range(16)))
    assert sorted(finished) == list(range(16))
    assert budget.used == 0


async def test_cancelled_growth_keeps_what_the_lease_held() -> None:
    budget = ByteBudget(100)
    head = await budget.lease(10, up_to=50)
    lease = await budget.lease(10, up_to=50)
    await budget.acquire(40)  # the growth of the other would take what is kept for the head
    grow = asyncio.create_task(lease.grow())
    await run_ready()
    await cancel_and_check(grow)
    assert (lease.held, budget.used, budget.kept) == (10, 60, 40)
    budget.release(40)
    head.close()
    await lease.grow()  # still growable, and now the head
    lease.close()
    assert budget.used == 0


# -- spare buffers ---------------------------------------------------------------------


async def test_lease_with_spare_gets_the_buffer_given_back_with_its_size() -> None:
    budget = ByteBudget(100)
    buffer = io.BytesIO(b"x" * 40)
    (await budget.lease(40)).close(keep=buffer)
    assert budget.spare == 40 and budget.used == 0
    other = await budget.lease(30, spare=True)
    assert other.buffer is None  # another size: a fresh buffer
    lease = await budget.lease(40, spare=True)
    assert lease.buffer is buffer
    assert budget.spare == 0 and budget.used == 70


async def test_spare_buffers_are_closed_when_what_is_held_needs_their_room() -> None:
    budget = ByteBudget(100)
    kept = [io.BytesIO(), io.BytesIO()]
    for buffer in kept:
        (await budget.lease(30)).close(keep=buffer)
    assert budget.spare == 60
    await budget.acquire(55)  # a plain request: it leaves room for one of them
    assert budget.used + budget.spare <= budget.limit
    assert budget.spare == 30 and sum(b.closed for b in kept) == 1


async def test_spare_buffers_delay_no_request() -> None:
    budget = ByteBudget(100)
    (await budget.lease(60)).close(keep=io.BytesIO())
    assert budget.try_acquire(100)  # spare bytes are free bytes
    assert budget.spare == 0


@given(
    steps=st.lists(
        st.tuples(st.integers(1, 100), st.booleans(), st.booleans()), min_size=1, max_size=30
    )
)
@settings(max_examples=50, deadline=None)
def test_held_and_spare_bytes_never_exceed_the_limit(steps: list[tuple[int, bool, bool]]) -> None:
    async def run() -> None:
        budget = ByteBudget(100)
        leases = []
        for size, spare, keep in steps:
            while budget.used + size > budget.limit:
                old = leases.pop(0)
                old.close(keep=io.BytesIO() if keep else None)
                assert budget.used + budget.spare <= budget.limit
            leases.append(await budget.lease(size, spare=spare))
            assert budget.used + budget.spare <= budget.limit

    asyncio.run(run())
