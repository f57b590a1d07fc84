"""send_batch_nowait (futures and tasks), the deprecated offset API, the completion thread.

These tests use pyzerobus.testing's zerobus_local fixture (conftest.py imports it), as a user's would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow as pa
import pytest

import pyzerobus
from pyzerobus import AsyncZerobusWrapper, TransmissionError, ZerobusWrapper
from pyzerobus.testing import LocalZerobus


def ids(first: int, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(first, first + n), pa.int64())})


# ---------------------------------------------------------------- sync futures


def test_many_futures_in_flight_from_one_thread(zerobus_local: LocalZerobus) -> None:
    threads_before = threading.active_count()
    with ZerobusWrapper(zerobus_local.config, batch_rows=100) as w:
        futures = [w.send_batch_nowait(ids(k * 300, 300)) for k in range(40)]
        assert all(isinstance(f, concurrent.futures.Future) for f in futures)
        assert threading.active_count() - threads_before <= 1  # one completion thread
        done = [f.result(timeout=60) for f in concurrent.futures.as_completed(futures)]
        assert len(done) == 40 and all(r.success and r.total_rows == 300 for r in done)
        assert all(r.offset is None for r in done)
    assert zerobus_local.read_table().num_rows == 12_000


def test_a_future_carries_the_exception_send_batch_would_raise(zerobus_local: LocalZerobus) -> None:
    table = pa.table({"u": pa.array([1, 2**63], pa.uint64())})
    with ZerobusWrapper(zerobus_local.config) as w:
        assert w.send_batch_nowait(table).result(30).is_partial_success()
        with pytest.raises(pyzerobus.ConversionError) as info:
            w.send_batch_nowait(table, strict=True).result(30)
        assert info.value.result is not None and info.value.result.failed_indices() == [1]
        with pytest.raises(pyzerobus.ConversionError):
            w.send_batch_nowait(object())  # type: ignore[arg-type] - refused at once, not in the future
    with ZerobusWrapper(zerobus_local.config, client_secret="wrong") as w:
        fut = w.send_batch_nowait(ids(0, 3))
        assert isinstance(fut.exception(30), pyzerobus.AuthenticationError)


def test_cancelling_a_future_cancels_its_send(
    zerobus_local: LocalZerobus, caplog: pytest.LogCaptureFixture
) -> None:
    with ZerobusWrapper(zerobus_local.config) as w:
        assert w.send_batch(ids(0, 10)).success
        zerobus_local.arm_fault("delay_acks", delay="3s")
        slow = w.send_batch_nowait(ids(10, 10))
        time.sleep(0.3)
        assert slow.cancel() and slow.cancelled()
        with pytest.raises(concurrent.futures.TimeoutError):
            w.send_batch_nowait(ids(20, 10)).result(timeout=0.1)  # the wait ends, the send goes on
        start = time.monotonic()
        assert w.flush(timeout=30) == []  # waits for the futures of the sends so far
        assert time.monotonic() - start < 10
    assert any("send cancelled" in r.getMessage() for r in caplog.records)


def test_shutdown_resolves_every_future(zerobus_local: LocalZerobus) -> None:
    cfg = zerobus_local.config.replace(ack_timeout_ms=300_000, flush_timeout_ms=300_000)
    w = ZerobusWrapper(cfg)
    w.send_batch(ids(0, 1))
    zerobus_local.arm_fault("stop_acks", times=-1)
    futures = [w.send_batch_nowait(ids(k + 1, 1)) for k in range(3)]
    start = time.monotonic()
    with pytest.raises(TransmissionError, match="flush timed out"):  # as without futures
        w.close(timeout=1)
    assert time.monotonic() - start < 5 and w.closed
    for f in futures:
        exc = f.exception(timeout=10)
        assert isinstance(exc, pyzerobus.ZerobusError)
        assert exc.result is not None and all(r.may_have_landed for r in exc.result.failed_rows)
    with pytest.raises(TransmissionError, match="closed"):
        w.send_batch_nowait(ids(0, 1))


EXIT_CHILD = textwrap.dedent(
    """
    import sys
    import pyarrow as pa, pyzerobus
    endpoint, workspace, cid, secret, table = sys.argv[1:6]
    w = pyzerobus.ZerobusWrapper(endpoint=endpoint, unity_catalog_url=workspace, client_id=cid,
                                 client_secret=secret, table_name=table)
    fut = w.send_batch_nowait(pa.table({"id": list(range(1000))}))
    print("leaving", flush=True)  # no close, no wait: the exit handler closes and resolves
    """
)


def test_a_pending_future_does_not_block_the_exit_handler(zerobus_local: LocalZerobus) -> None:
    s = zerobus_local
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            EXIT_CHILD,
            s.endpoint,
            s.workspace_url,
            s.client_id,
            s.client_secret,
            s.table_name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0 and out.stdout == "leaving\n", out.stderr
    assert s.read_table().num_rows == 1000


# ---------------------------------------------------------------- asyncio tasks


def test_async_nowait_returns_a_task(zerobus_local: LocalZerobus, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with AsyncZerobusWrapper(zerobus_local.config) as w:
            tasks = [w.send_batch_nowait(ids(k * 100, 100)) for k in range(10)]
            assert all(isinstance(t, asyncio.Task) for t in tasks)
            results = await asyncio.gather(*tasks)
            assert sum(r.successful_count for r in results) == 1000
            zerobus_local.arm_fault("delay_acks", delay="2s", times=1)
            slow = w.send_batch_nowait(ids(1000, 10))
            await asyncio.sleep(0.3)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            late = [w.send_batch_nowait(ids(2000 + k * 10, 10)) for k in range(3)]
            assert await w.flush(timeout=30) == []
            assert all(t.done() and t.result().success for t in late)
            last = w.send_batch_nowait(ids(3000, 10))
        assert last.done() and last.result().success  # the shutdown waited for it

    asyncio.run(main())
    assert any("send cancelled" in r.getMessage() for r in caplog.records)
    # At least once: a cancelled write may land, a replay may repeat rows.
    got = set(zerobus_local.read_table().column("id").to_pylist())
    assert got >= {*range(1000), *range(2000, 2030), *range(3000, 3010)}


def test_cancelled_while_handing_over_cancels_the_send(zerobus_local: LocalZerobus) -> None:
    started = threading.Event()
    schema = pa.schema([("id", pa.int64())])

    def slow_batches():  # the hand-over waits for the first batch: the task is cancelled meanwhile
        started.set()
        time.sleep(0.5)
        for i in range(1000):
            yield pa.record_batch([pa.array([i], pa.int64())], schema=schema)
            time.sleep(0.01)

    async def main() -> None:
        async with AsyncZerobusWrapper(zerobus_local.config) as w:
            task = w.send_batch_nowait(slow_batches())
            while not started.is_set():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            start = time.monotonic()
            assert (await w.send_batch(ids(0, 5))).success
            await w.flush(timeout=30)
            assert time.monotonic() - start < 8  # the endless send was cancelled, not waited for

    asyncio.run(main())


# ---------------------------------------------------------------- deprecated names


def test_the_offset_api_is_deprecated(zerobus_local: LocalZerobus) -> None:
    with ZerobusWrapper(zerobus_local.config) as w:
        with pytest.warns(DeprecationWarning, match="send_batch_nowait") as rec:
            off = w.send_batch_async(ids(0, 5))
        assert rec[0].filename == __file__  # points at the caller
        with pytest.warns(DeprecationWarning, match="futures of send_batch_nowait"):
            assert [r.offset for r in w.wait_for_offset(off)] == [off]

    async def main() -> None:
        async with AsyncZerobusWrapper(zerobus_local.config) as w:
            with pytest.warns(DeprecationWarning, match="asyncio.Task"):
                off = await w.send_batch_async(ids(5, 5))
            with pytest.warns(DeprecationWarning, match="tasks of send_batch_nowait"):
                assert [r.offset for r in await w.wait_for_offset(off)] == [off]

    asyncio.run(main())


# ---------------------------------------------------------------- the completion thread


class _FailingCompletions:
    def __init__(self, real: object) -> None:
        self.real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def Completions(self, after: int, timeout_ms: int) -> str:
        raise RuntimeError('zerobus-error:{"kind":"internal","message":"poll failed"}')


def test_a_failing_completion_log_fails_the_futures(zerobus_local: LocalZerobus) -> None:
    w = ZerobusWrapper(zerobus_local.config)
    zerobus_local.arm_fault("delay_acks", delay="1s", times=1)
    real = w._core._native
    w._core._native = _FailingCompletions(real)  # type: ignore[assignment]
    fut = w.send_batch_nowait(ids(0, 3))
    with pytest.raises(pyzerobus.ZerobusError, match="poll failed"):
        fut.result(30)
    w._core._native = real
    w.close()


def test_engine_records_reach_logging_from_the_completion_thread(
    zerobus_local: LocalZerobus, caplog: pytest.LogCaptureFixture
) -> None:
    zerobus_local.arm_fault("end_call", after_records=1, times=1)
    with caplog.at_level(logging.DEBUG, logger="pyzerobus.engine"):
        with ZerobusWrapper(zerobus_local.config) as w:
            assert w.send_batch_nowait(ids(0, 50)).result(30).success
        engine = [r for r in caplog.records if r.name == "pyzerobus.engine"]
    assert engine
