"""The asyncio wrapper: :class:`AsyncZerobusWrapper`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import time
from types import TracebackType
from typing import Any, Optional

from ._core import (
    INTERRUPTED_CLOSE_S,
    Core,
    Descriptor,
    HeadersProvider,
    deprecated,
    log_cancelled,
    logger,
    raise_for,
    resolve_config,
)
from ._input import SendInput
from ._progress import make_progress
from .config import WrapperConfiguration
from .errors import TransmissionError, ZerobusError
from .result import TransmissionResult

__all__ = ["AsyncZerobusWrapper"]

# How often a waiting send updates its progress bar.
_PROGRESS_S = 0.2


class AsyncZerobusWrapper:
    """The asyncio face of :class:`~pyzerobus.ZerobusWrapper`: same methods, awaitable.

    Many sends may be in flight from one event loop: each is handed to the
    engine from a worker thread (the event loop never blocks on the engine)
    and awaited on a future; one background thread of the wrapper, whatever
    the number of sends, resolves the futures as the engine finishes them.
    Cancelling a task cancels its send; the wrapper stays usable.
    :meth:`send_batch_nowait` starts a send as an :class:`asyncio.Task`.

    A wrapper belongs to the event loop that first awaits it: using it from
    another loop while that one runs raises :class:`ZerobusError` (create
    one wrapper per loop). Once its loop has stopped, another loop may take
    it over (successive ``asyncio.run`` calls).

    Example::

        async with AsyncZerobusWrapper(cfg) as w:
            results = await asyncio.gather(*(w.send_batch(t) for t in tables))
    """

    def __init__(
        self,
        config: Optional[WrapperConfiguration] = None,
        *,
        headers_provider: Optional[HeadersProvider] = None,
        **settings: Any,
    ) -> None:
        """Validate the configuration and create the wrapper (see :class:`ZerobusWrapper`).

        ``headers_provider`` is a plain (not async) callable, called from a
        thread of the wrapper.
        """
        self.config = resolve_config(config, settings, custom_headers=headers_provider is not None)
        self._core = Core(self.config, headers_provider)
        self._futures: dict[int, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[TransmissionResult]] = set()  # of send_batch_nowait
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        logger.debug("async wrapper created for table %s", self.config.table_name)

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._core.closed

    # ------------------------------------------------------------ completions

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, which this wrapper belongs to from its first use.

        Its futures are resolved on that loop (the wrapper's completion
        thread hands each resolution to it); another loop is refused while
        the first one runs.
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
            self._tasks.clear()
        return loop

    def _watch(self, op: int) -> asyncio.Future[None]:
        """A future of this loop resolved when the engine finishes operation ``op``."""
        loop = self._bind_loop()
        fut = self._futures.get(op)
        if fut is None:
            fut = loop.create_future()
            self._futures[op] = fut
            self._core.watch(op).add_done_callback(functools.partial(self._hand_over, loop, op))
        return fut

    def _hand_over(
        self, loop: asyncio.AbstractEventLoop, op: int, done: concurrent.futures.Future[None]
    ) -> None:
        """In the completion thread: resolve the loop's future of ``op`` on the loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: its futures died with it
            loop.call_soon_threadsafe(self._settle, loop, op, done)

    def _settle(
        self, loop: asyncio.AbstractEventLoop, op: int, done: concurrent.futures.Future[None]
    ) -> None:
        if loop is not self._loop:
            return
        fut = self._futures.pop(op, None)
        if fut is None or fut.done():
            return
        error = done.exception()
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)

    async def _until_done(
        self, op: int, total: Optional[int], progress: bool, timeout: Optional[float]
    ) -> bool:
        fut = self._watch(op)
        bar = make_progress(progress, total)
        deadline = self._core.deadline(timeout)
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
                    bar.update_to(self._core.progress(op))
        finally:
            if progress and fut.done():
                bar.update_to(self._core.progress(op))
            bar.close()

    async def _abandon(self, op: int) -> TransmissionResult:
        """Cancel an operation, wait until it stops, return its result."""
        self._core.cancel(op)
        await asyncio.shield(self._watch(op))
        res = self._core.take_result(op)
        log_cancelled(res)
        return res

    async def _start(
        self, data: SendInput, descriptor: Optional[Descriptor] = None
    ) -> tuple[int, Optional[int]]:
        """Hand data to the engine from a worker thread (reading the input may block).

        If the awaiting task is cancelled meanwhile, the send, once started,
        is cancelled too.
        """
        self._bind_loop()
        started = asyncio.ensure_future(asyncio.to_thread(self._core.start, data, descriptor))
        try:
            return await asyncio.shield(started)
        except asyncio.CancelledError:
            started.add_done_callback(self._cancel_started)
            raise

    def _cancel_started(self, started: asyncio.Future[tuple[int, Optional[int]]]) -> None:
        if started.cancelled() or started.exception() is not None:
            return
        op = started.result()[0]
        self._core.result_future(op, strict=False).cancel()

    # ------------------------------------------------------------ sending

    async def send_batch(
        self,
        data: SendInput,
        *,
        progress: bool = False,
        strict: bool = False,
        timeout: Optional[float] = None,
        descriptor: Optional[Descriptor] = None,
    ) -> TransmissionResult:
        """Send data and wait until every row is resolved (see :meth:`ZerobusWrapper.send_batch`)."""
        op, total = await self._start(data, descriptor)
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
        res = self._core.take_result(op)
        logger.debug("sent %r", res)
        raise_for(res, strict)
        return res

    def send_batch_nowait(
        self, data: SendInput, *, strict: bool = False, descriptor: Optional[Descriptor] = None
    ) -> asyncio.Task[TransmissionResult]:
        """Start sending data as a task of the running loop and return the task at once.

        The task is :meth:`send_batch` (``await`` it for the result or the
        exception); cancelling it cancels the send. The data is handed to the
        engine when the task first runs, and must not be modified until the
        task is done. :meth:`flush` and :meth:`shutdown` wait for these
        tasks. Call it from a coroutine (it needs a running loop).

        Example::

            tasks = [w.send_batch_nowait(t) for t in tables]
            results = await asyncio.gather(*tasks)
        """
        loop = self._bind_loop()
        task = loop.create_task(self.send_batch(data, strict=strict, descriptor=descriptor))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def send_batch_async(self, data: SendInput) -> int:
        """Deprecated: use :meth:`send_batch_nowait`, which returns a task of the result.

        Hands data to the engine and returns its offset (see
        :meth:`ZerobusWrapper.send_batch_async`).
        """
        deprecated("AsyncZerobusWrapper.send_batch_async", "send_batch_nowait (an asyncio.Task)")
        op, _ = await self._start(data)
        self._core.register_pending(op)
        return op

    async def wait_for_offset(
        self, offset: int, *, timeout: Optional[float] = None, strict: bool = False
    ) -> list[TransmissionResult]:
        """Deprecated: await the tasks of :meth:`send_batch_nowait` instead.

        Waits for the async send at ``offset`` and every one before it (see
        :meth:`ZerobusWrapper.wait_for_offset`).
        """
        deprecated("AsyncZerobusWrapper.wait_for_offset", "the tasks of send_batch_nowait")
        deadline = self._core.deadline(timeout)
        return await self._wait_until(offset, deadline, strict, f"after {timeout} s")

    async def _wait_until(
        self, offset: int, deadline: Optional[float], strict: bool, bound: str
    ) -> list[TransmissionResult]:
        self._bind_loop()
        covered = self._core.covered(offset)
        if covered:
            waits = asyncio.gather(*(asyncio.shield(self._watch(o)) for o in covered))
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(waits, left)
            except asyncio.TimeoutError:
                raise TransmissionError(f"wait for offset {offset} timed out {bound}", op="wait") from None
        # Everything covered is finished: the core's wait returns at once.
        return self._core.wait_until(offset, None, strict, bound)

    async def _wait_tasks(self, deadline: float) -> bool:
        """Wait for the tasks of :meth:`send_batch_nowait` so far; False at the deadline."""
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        return not pending

    async def flush(
        self, *, timeout: Optional[float] = None, strict: bool = False
    ) -> list[TransmissionResult]:
        """Wait until every send handed over without waiting is resolved (see :meth:`ZerobusWrapper.flush`).

        The tasks of :meth:`send_batch_nowait` so far are done when it returns.
        """
        deadline = self._core.flush_deadline(timeout)
        bound = f"after {max(0.0, deadline - time.monotonic()):.3g} s"
        self._bind_loop()
        pending = self._core.pending()
        results = await self._wait_until(pending[-1], deadline, strict, bound) if pending else []
        if not await self._wait_tasks(deadline):
            raise TransmissionError(f"flush timed out {bound}", op="flush")
        if not await asyncio.to_thread(self._core.flush_engine, deadline):
            raise TransmissionError(f"flush timed out {bound}", op="flush")
        return results

    async def shutdown(self, *, timeout: Optional[float] = None) -> None:
        """Flush, then close, under one deadline (see :meth:`ZerobusWrapper.shutdown`).

        Tasks of :meth:`send_batch_nowait` still running at the deadline end
        with their sends cancelled. Cancelling the shutdown closes the wrapper
        within ``INTERRUPTED_CLOSE_S`` seconds. ``close`` is the same method.
        """
        if self._core.closed:
            return
        deadline = self._core.flush_deadline(timeout)
        try:
            self._bind_loop()
            pending = self._core.pending()
            if pending:
                waits = asyncio.gather(*(asyncio.shield(self._watch(o)) for o in pending))
                # Past the deadline, the close below cancels what is left
                # and the results say so.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(waits, max(0.0, deadline - time.monotonic()))
            await self._wait_tasks(deadline)
            await asyncio.to_thread(self._core.shutdown, deadline)
        except BaseException:
            if not self._core.closed:  # cancelled before the close began: a short, blocking one
                self._core.close_interrupted()
            raise

    close = shutdown

    def stats(self) -> dict[str, int]:
        """The engine's counters (see :meth:`ZerobusWrapper.stats`)."""
        return self._core.stats()

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
        """Return e.g. ``AsyncZerobusWrapper(table_name='main.app.events', endpoint='...', closed=False)``."""
        return (
            f"AsyncZerobusWrapper(table_name={self.config.table_name!r}, "
            f"endpoint={self.config.endpoint!r}, closed={self.closed})"
        )
