"""AsyncZerobusWrapper: many sends in flight from one event loop."""

from __future__ import annotations

import asyncio
import threading

import pyarrow as pa
import pytest

import pyzerobus
from conftest import LocalServer, arm_fault, read_delta, wrapper_config
from pyzerobus import AsyncZerobusWrapper, TransmissionError


def ids(first: int, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(first, first + n), pa.int64()), "v": [float(i) for i in range(n)]})


def test_many_sends_in_flight(local_server: LocalServer, table_name: str) -> None:
    sends, rows = 64, 500
    threads_before = threading.active_count()

    async def main() -> tuple[list[pyzerobus.TransmissionResult], int, int]:
        async with AsyncZerobusWrapper(wrapper_config(local_server, table_name, batch_rows=100)) as w:
            assert "AsyncZerobusWrapper(table_name=" in repr(w) and not w.closed
            results = await asyncio.gather(*(w.send_batch(ids(k * rows, rows)) for k in range(sends)))
            peak_threads = threading.active_count()
            stats = w.stats()
        assert w.closed
        return list(results), peak_threads, stats["rows_acked"]

    results, peak_threads, acked = asyncio.run(main())
    assert len(results) == sends and all(r.success and r.total_rows == rows for r in results)
    assert acked == sends * rows
    # One poller thread and a few start threads, not one thread per send.
    assert peak_threads - threads_before <= 12
    got = read_delta(local_server, table_name)
    assert sorted(got.column("id").to_pylist()) == list(range(sends * rows))


def test_async_offsets_flush_and_progress(
    local_server: LocalServer, table_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def main() -> None:
        w = AsyncZerobusWrapper(wrapper_config(local_server, table_name))
        with pytest.warns(DeprecationWarning):
            offsets = [await w.send_batch_async(ids(k * 100, 100)) for k in range(6)]
        with pytest.warns(DeprecationWarning):
            got = await w.wait_for_offset(offsets[2])
        assert [r.offset for r in got] == offsets[:3] and all(r.success for r in got)
        assert [r.offset for r in await w.flush()] == offsets[3:]
        with pytest.raises(ValueError), pytest.warns(DeprecationWarning):
            await w.wait_for_offset(99)
        res = await w.send_batch(ids(600, 5000), progress=True)
        assert res.success
        assert w.config.table_name == table_name
        w.send_batch_nowait(ids(5600, 10))
        await w.close()  # waits for the pending send
        await w.shutdown()  # idempotent
        assert w.closed

    asyncio.run(main())
    assert "5.00k/5.00k" in capsys.readouterr().err
    assert read_delta(local_server, table_name).num_rows == 5610


def test_cancelled_task_cancels_its_send(local_server: LocalServer, table_name: str) -> None:
    async def main() -> None:
        async with AsyncZerobusWrapper(wrapper_config(local_server, table_name)) as w:
            assert (await w.send_batch(ids(0, 10))).success
            arm_fault(local_server, kind="delay_acks", delay="5s")
            task = asyncio.create_task(w.send_batch(ids(10, 10)))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(TransmissionError, match="timed out") as info:
                await w.send_batch(ids(20, 10), timeout=0.2)
            assert info.value.result is not None and info.value.result.cancelled
            with pytest.warns(DeprecationWarning):
                off = await w.send_batch_async(ids(30, 10))
                with pytest.raises(TransmissionError, match="timed out"):
                    await w.wait_for_offset(off, timeout=0.1)

    asyncio.run(main())


def test_async_errors_propagate(local_server: LocalServer, table_name: str) -> None:
    async def main() -> None:
        cfg = wrapper_config(local_server, table_name, client_secret="wrong")
        async with AsyncZerobusWrapper(cfg) as w:
            with pytest.raises(pyzerobus.AuthenticationError):
                await w.send_batch(ids(0, 3))
            with pytest.raises(pyzerobus.AuthenticationError):
                await w.send_batch_nowait(ids(0, 3))
            with pytest.warns(DeprecationWarning):
                off = await w.send_batch_async(ids(0, 3))
                with pytest.raises(pyzerobus.AuthenticationError) as info:
                    await w.wait_for_offset(off)
            assert [r.offset for r in info.value.results] == [off]
        with pytest.raises(ZeroDivisionError):
            async with AsyncZerobusWrapper(cfg) as w2:
                w2.stats()
                raise ZeroDivisionError  # not hidden by the shutdown

    asyncio.run(main())


class _FailingCompletions:
    """The engine handle with a completion poll that fails."""

    def __init__(self, real: object) -> None:
        self.real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def Completions(self, after: int, timeout_ms: int) -> str:
        raise RuntimeError('zerobus-error:{"kind":"internal","message":"poll failed"}')


def test_a_failing_poll_fails_the_waiters(local_server: LocalServer, table_name: str) -> None:
    async def main() -> None:
        w = AsyncZerobusWrapper(wrapper_config(local_server, table_name))
        arm_fault(local_server, kind="delay_acks", delay="1s")
        real = w._core._native
        w._core._native = _FailingCompletions(real)  # type: ignore[assignment]
        with pytest.raises(pyzerobus.ZerobusError, match="poll failed"):
            await w.send_batch(ids(0, 10))
        w._core._native = real
        await w.shutdown()

    asyncio.run(main())
