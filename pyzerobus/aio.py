"""The asyncio wrapper: :class:`AsyncZerobusWrapper`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from types import TracebackType
from typing import Any, Optional

from . import _engine
from ._input import SendInput
from ._progress import make_progress
from .config import WrapperConfiguration
from .errors import TransmissionError, ZerobusError
from .result import TransmissionResult
from .wrapper import INTERRUPTED_CLOSE_S, ZerobusWrapper, _raise_for, logger

__all__ = ["AsyncZerobusWrapper"]

# How long one completion poll may block in the engine.
_POLL_MS = 250
# How often a waiting send updates its progress bar.
_PROGRESS_S = 0.2


class _NotifyingWrapper(ZerobusWrapper):
    """A ZerobusWrapper whose engine keeps the completion log the event loop polls."""

    _notify = True


class AsyncZerobusWrapper:
    """The asyncio face of :class:`~pyzerobus.ZerobusWrapper`: same methods, awaitable.

    Many sends may be in flight from one event loop: each is handed to the
    engine at once and awaited on a future; one background poller (a single
    thread, whatever the number of sends) resolves the futures as the engine
    finishes them. Cancelling a task cancels its send; the wrapper stays
    usable.

    A wrapper belongs to the event loop that first awaits it: using it from
    another loop while that one runs raises :class:`ZerobusError` (create
    one wrapper per loop). Once its loop has stopped, another loop may take
    it over (successive ``asyncio.run`` calls).

    Example::

        async with AsyncZerobusWrapper(cfg) as w:
            results = await asyncio.gather(*(w.send_batch(t) for t in tables))
    """

    def __init__(self, config: Optional[WrapperConfiguration] = None, **settings: Any) -> None:
        """Validate the configuration and create the wrapper (see :class:`ZerobusWrapper`)."""
        self._sync = _NotifyingWrapper(config, **settings)
        self._native = self._sync._native
        self._futures: dict[int, asyncio.Future[None]] = {}
        self._seq = 0
        self._poller: Optional[asyncio.Task[None]] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pyzerobus-poll")

    @property
    def config(self) -> WrapperConfiguration:
        """The configuration."""
        return self._sync.config

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._sync.closed

    # ------------------------------------------------------------ completions

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, which this wrapper belongs to from its first use.

        Futures are resolved by a poller task on that loop: resolving them
        from another loop's thread is not safe (its awaiters would never
        wake), so another loop is refused while the first one runs.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and self._loop.is_running() and not self._loop.is_closed():
                raise ZerobusError(
                    "this AsyncZerobusWrapper belongs to another event loop, which is still running: "
                    "create one wrapper per event loop (or use ZerobusWrapper from threads)",
                    op="event loop",
                )
            # The first loop, or one that has stopped: its futures died with it.
            self._loop = loop
            self._futures.clear()
            self._poller = None
        return loop

    def _watch(self, op: int) -> asyncio.Future[None]:
        """A future resolved when the engine finishes operation ``op``."""
        loop = self._bind_loop()
        fut = self._futures.get(op)
        if fut is None:
            fut = loop.create_future()
            self._futures[op] = fut
        if _engine.call(self._native.Wait, op, 0):  # finished before it was watched
            self._resolve(op)
        elif self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll())
        return fut

    def _resolve(self, op: int) -> None:
        fut = self._futures.pop(op, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def _poll(self) -> None:
        """Resolve futures from the engine's completion log while any is pending."""
        loop = asyncio.get_running_loop()
        while self._futures:
            try:
                out = await loop.run_in_executor(
                    self._executor, _engine.call_json, self._native.Completions, self._seq, _POLL_MS
                )
            except Exception as exc:  # the engine failed: fail the waiters rather than hang them
                for fut in self._futures.values():
                    if not fut.done():
                        fut.set_exception(exc)
                self._futures.clear()
                return
            self._seq = int(out["seq"])
            for op in out["ops"]:
                self._resolve(int(op))
            if out["ops"] or time.monotonic() - self._sync._last_drain > 1.0:
                self._sync._drain_logs()
            for op in [o for o, f in self._futures.items() if f.done()]:  # cancelled awaiters
                del self._futures[op]

    async def _until_done(
        self, op: int, total: Optional[int], progress: bool, timeout: Optional[float]
    ) -> bool:
        fut = self._watch(op)
        bar = make_progress(progress, total)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                step = _PROGRESS_S if progress else None
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    step = left if step is None else min(step, left)
                try:
                    await asyncio.wait_for(asyncio.shield(fut), step)
                    return True
                except asyncio.TimeoutError:
                    bar.update_to(_engine.call(self._native.Progress, op))
        finally:
            if progress and fut.done():
                bar.update_to(_engine.call(self._native.Progress, op))
            bar.close()

    async def _abandon(self, op: int) -> TransmissionResult:
        """Cancel an operation, wait until it stops, return its result."""
        _engine.call(self._native.Cancel, op)
        await asyncio.shield(self._watch(op))
        res = self._sync._take_result(op)
        logger.warning(
            "send cancelled: %d of %d rows read were acknowledged, %d failed",
            res.successful_count,
            res.total_rows,
            res.failed_count,
        )
        return res

    # ------------------------------------------------------------ sending

    async def send_batch(
        self,
        data: SendInput,
        *,
        progress: bool = False,
        strict: bool = False,
        timeout: Optional[float] = None,
    ) -> TransmissionResult:
        """Send data and wait until every row is resolved (see :meth:`ZerobusWrapper.send_batch`)."""
        self._bind_loop()
        op, total = await asyncio.to_thread(self._sync._start, data)
        try:
            finished = await self._until_done(op, total, progress, timeout)
        except BaseException:
            await self._abandon(op)
            raise
        if not finished:
            res = await self._abandon(op)
            raise TransmissionError(
                f"send timed out after {timeout} s and was cancelled", op="send", result=res
            )
        res = self._sync._take_result(op)
        _raise_for(res, strict)
        return res

    async def send_batch_async(self, data: SendInput) -> int:
        """Hand data to the engine and return its offset (see :meth:`ZerobusWrapper.send_batch_async`)."""
        self._bind_loop()
        op, _ = await asyncio.to_thread(self._sync._start, data)
        self._sync._register_async(op)
        return op

    async def wait_for_offset(
        self, offset: int, *, timeout: Optional[float] = None, strict: bool = False
    ) -> list[TransmissionResult]:
        """Wait for the async send at ``offset`` and every one before it.

        See :meth:`ZerobusWrapper.wait_for_offset`.
        """
        return await self._wait_until(offset, self._sync._deadline(timeout), strict, f"after {timeout} s")

    async def _wait_until(
        self, offset: int, deadline: Optional[float], strict: bool, bound: str
    ) -> list[TransmissionResult]:
        self._bind_loop()
        if offset < 0 or offset > self._sync._issued:
            raise ValueError(f"offset {offset} was not returned by send_batch_async")
        with self._sync._lock:
            covered = [o for o in self._sync._pending if o <= offset]
        if covered:
            waits = asyncio.gather(*(asyncio.shield(self._watch(o)) for o in covered))
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(waits, left)
            except asyncio.TimeoutError:
                raise TransmissionError(f"wait for offset {offset} timed out {bound}", op="wait") from None
        # Everything covered is finished: the synchronous wait returns at once.
        return self._sync.wait_for_offset(offset, strict=strict)

    async def flush(
        self, *, timeout: Optional[float] = None, strict: bool = False
    ) -> list[TransmissionResult]:
        """Wait until every async send so far is resolved (see :meth:`ZerobusWrapper.flush`)."""
        return await self._flush(self._sync._flush_deadline(timeout), strict)

    async def _flush(self, deadline: float, strict: bool) -> list[TransmissionResult]:
        bound = f"after {max(0.0, deadline - time.monotonic()):.3g} s"
        with self._sync._lock:
            last = max(self._sync._pending, default=-1)
        results = await self._wait_until(last, deadline, strict, bound) if last >= 0 else []
        if not await asyncio.to_thread(self._sync._flush_engine, deadline):
            raise TransmissionError(f"flush timed out {bound}", op="flush")
        return results

    async def shutdown(self, *, timeout: Optional[float] = None) -> None:
        """Flush, then close, under one deadline (see :meth:`ZerobusWrapper.shutdown`).

        Cancelling it closes the wrapper within ``INTERRUPTED_CLOSE_S``
        seconds. ``close`` is the same method.
        """
        if self._sync.closed:
            return
        deadline = self._sync._flush_deadline(timeout)
        try:
            with self._sync._lock:
                pending = list(self._sync._pending)
            if pending:
                self._bind_loop()
                waits = asyncio.gather(*(asyncio.shield(self._watch(o)) for o in pending))
                # Past the deadline, the close below cancels what is left
                # and the results say so.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(waits, max(0.0, deadline - time.monotonic()))
            await asyncio.to_thread(self._sync.shutdown, timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            if not self._sync.closed:  # cancelled before the close began: a short, blocking one
                self._sync._close_interrupted()
            raise
        finally:
            if self._poller is not None:
                await asyncio.gather(self._poller, return_exceptions=True)
            self._executor.shutdown(wait=False)

    close = shutdown

    def stats(self) -> dict[str, int]:
        """The engine's counters (see :meth:`ZerobusWrapper.stats`)."""
        return self._sync.stats()

    async def __aenter__(self) -> AsyncZerobusWrapper:
        """Return the wrapper."""
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Shut down; an error of the shutdown does not hide an exception already raised.

        After a cancellation or Ctrl-C, the shutdown is bounded by
        ``INTERRUPTED_CLOSE_S`` seconds.
        """
        if exc is None:
            await self.shutdown()
            return
        interrupted = not isinstance(exc, Exception)
        try:
            await self.shutdown(timeout=INTERRUPTED_CLOSE_S if interrupted else None)
        except Exception as close_exc:
            logger.warning("shutdown after an error failed too: %s", close_exc)

    def __repr__(self) -> str:
        """Return e.g. ``AsyncZerobusWrapper(table_name='main.app.events', ...)``."""
        return "Async" + repr(self._sync)
