"""The synchronous wrapper: :class:`ZerobusWrapper`."""

from __future__ import annotations

import concurrent.futures
from types import TracebackType
from typing import Any, Optional

from ._core import (
    INTERRUPTED_CLOSE_S,
    Core,
    Descriptor,
    HeadersProvider,
    deprecated,
    logger,
    raise_for,
    resolve_config,
)
from ._input import SendInput
from ._progress import make_progress
from .config import WrapperConfiguration
from .errors import TransmissionError, ZerobusError
from .result import TransmissionResult

__all__ = ["INTERRUPTED_CLOSE_S", "ZerobusWrapper"]


class ZerobusWrapper:
    """Send Arrow data to one Zerobus table (a Delta table).

    Create it from a :class:`WrapperConfiguration` (or its keyword
    arguments), use it as a context manager, and send pyarrow Tables,
    RecordBatches and RecordBatchReaders, pandas and polars DataFrames, any
    object with ``__arrow_c_stream__``, or Arrow IPC bytes. Data crosses into
    the engine without a copy (Arrow C stream) and is read batch by batch.

    A wrapper is safe to use from several threads at once; their sends share
    one stream per schema and pipeline on it. Ctrl-C during a send cancels it
    (rows not yet written are certainly not stored) and leaves the wrapper
    usable.

    :meth:`send_batch` waits for the result; :meth:`send_batch_nowait`
    returns a :class:`concurrent.futures.Future` of it at once, so that many
    sends are in flight from one thread.

    Example::

        cfg = WrapperConfiguration(endpoint=..., table_name="main.app.events",
                                   client_id=..., client_secret=..., unity_catalog_url=...)
        with ZerobusWrapper(cfg) as w:
            result = w.send_batch(table)
            print(result.successful_count, result.failed_count)
            futures = [w.send_batch_nowait(t) for t in more_tables]
            results = [f.result() for f in futures]
    """

    def __init__(
        self,
        config: Optional[WrapperConfiguration] = None,
        *,
        headers_provider: Optional[HeadersProvider] = None,
        **settings: Any,
    ) -> None:
        """Validate the configuration and create the wrapper (no connection is opened yet).

        Keyword arguments are settings of :class:`WrapperConfiguration`; with
        a ``config`` they override it. Raises :class:`ConfigurationError`
        listing every invalid setting.

        ``headers_provider`` replaces OAuth (for an enterprise gateway or
        tokens of your own): a callable returning the headers of a stream
        call, ``authorization`` among them, called from a thread of the
        wrapper each time the engine opens a call; client_id, client_secret
        and unity_catalog_url are then not needed. If it raises, the sends
        that needed the call fail with the exception's name and message.
        """
        self.config = resolve_config(config, settings, custom_headers=headers_provider is not None)
        self._core = Core(self.config, headers_provider)
        logger.debug("wrapper created for table %s", self.config.table_name)

    # ------------------------------------------------------------ sending

    def send_batch(
        self,
        data: SendInput,
        *,
        progress: bool = False,
        strict: bool = False,
        timeout: Optional[float] = None,
        descriptor: Optional[Descriptor] = None,
    ) -> TransmissionResult:
        """Send data and wait until every row is durably acknowledged or has failed.

        Args:
            data: a pyarrow Table, RecordBatch or RecordBatchReader, a pandas
                or polars DataFrame, a polars LazyFrame, a pyarrow Dataset or
                Scanner, an object with ``__arrow_c_stream__``, an
                ``arrow_array_stream`` PyCapsule, Arrow IPC bytes, a path or
                list of paths of Parquet or Arrow IPC files, or an iterable of
                RecordBatches. Streams are consumed batch by batch.
            progress: show a progress bar (tqdm if installed).
            strict: raise when any row fails, not only when all do.
            timeout: seconds to wait at most; then the send is cancelled and
                :class:`TransmissionError` is raised (its ``result`` says
                which rows landed).
            descriptor: send the rows as records of this protobuf message
                (a ``google.protobuf.descriptor_pb2.DescriptorProto``, or its
                serialized bytes) instead of the one derived from the Arrow
                schema; it must match the schema and the table.

        Returns:
            The :class:`TransmissionResult`: rows acknowledged and rows
            failed (partial success is normal: see ``failed_rows`` and
            :meth:`TransmissionResult.extract_failed_batch`).

        Raises:
            ConversionError: the data cannot be read (unsupported object,
                released stream, corrupted IPC, unsupported Arrow type).
            ZerobusError: a subclass for the failure when no row was
                acknowledged (or any row failed, with ``strict``); its
                ``result`` is the full result.

        """
        core = self._core
        op, total = core.start(data, descriptor)
        bar = make_progress(progress, total)
        try:
            finished = core.wait_op(op, core.deadline(timeout), bar)
        except BaseException:
            core.abandon(op)
            raise
        finally:
            bar.close()
        if not finished:
            res = core.abandon(op)
            raise TransmissionError(
                f"send timed out after {timeout} s and was cancelled", op="send", result=res
            )
        res = core.take_result(op)
        core.drain_logs()
        logger.debug("sent %r", res)
        raise_for(res, strict)
        return res

    def send_batch_nowait(
        self, data: SendInput, *, strict: bool = False, descriptor: Optional[Descriptor] = None
    ) -> concurrent.futures.Future[TransmissionResult]:
        """Hand data to the engine and return at once a future of the send's result.

        The future resolves when every row is acknowledged or has failed, to
        the :class:`TransmissionResult`, or to the exception
        :meth:`send_batch` would raise (see ``strict`` there). It is resolved
        by one background thread of the wrapper, whatever the number of
        sends in flight; ``future.result(timeout)`` waits for it (the send
        goes on after that timeout). ``future.cancel()`` cancels the send
        while it runs: rows not yet written fail, certainly not stored.

        The data is read in the background and must not be modified
        meanwhile (the engine reads it in place). :meth:`flush` and
        :meth:`shutdown` wait for these sends too.

        Example::

            futures = [w.send_batch_nowait(t) for t in tables]
            for done in concurrent.futures.as_completed(futures):
                print(done.result().successful_count)
        """
        op, _ = self._core.start(data, descriptor)
        return self._core.result_future(op, strict)

    def send_batch_async(self, data: SendInput) -> int:
        """Deprecated: use :meth:`send_batch_nowait`, which returns a future of the result.

        Hands data to the engine and returns at once with the send's offset;
        offsets grow with every send of this wrapper. :meth:`wait_for_offset`
        and :meth:`flush` report the results.
        """
        deprecated("ZerobusWrapper.send_batch_async", "send_batch_nowait (a concurrent.futures.Future)")
        op, _ = self._core.start(data)
        self._core.register_pending(op)
        return op

    def wait_for_offset(
        self, offset: int, *, timeout: Optional[float] = None, strict: bool = False
    ) -> list[TransmissionResult]:
        """Deprecated: wait on the futures of :meth:`send_batch_nowait` instead.

        Waits for the send of :meth:`send_batch_async` at ``offset`` and every
        one before it, and returns the results of those not returned by an
        earlier wait, by ascending offset (each result carries its
        ``offset``). Raises the error of the first of them that failed (see
        :meth:`send_batch`), with ``results`` holding all of them. With a
        ``timeout`` (seconds) that passes first, :class:`TransmissionError` is
        raised and the sends go on.
        """
        deprecated("ZerobusWrapper.wait_for_offset", "the futures of send_batch_nowait")
        core = self._core
        return core.wait_until(offset, core.deadline(timeout), strict, f"after {timeout} s")

    def flush(self, *, timeout: Optional[float] = None, strict: bool = False) -> list[TransmissionResult]:
        """Wait until every send handed over so far without waiting is resolved.

        The futures of :meth:`send_batch_nowait` are resolved when it
        returns. It returns the results of :meth:`send_batch_async` sends not
        reported yet, as :meth:`wait_for_offset` does (``strict`` applies to
        them). ``timeout`` (seconds, default ``flush_timeout_ms``) bounds the
        whole flush; when it passes first, :class:`TransmissionError` is
        raised and the sends go on. Concurrent :meth:`send_batch` calls
        report their own results.
        """
        return self._core.flush(self._core.flush_deadline(timeout), strict)

    def shutdown(self, *, timeout: Optional[float] = None) -> None:
        """Flush, then close the streams and the connection. Calling it again does nothing.

        ``timeout`` (seconds, default ``flush_timeout_ms``) is one deadline
        for the whole shutdown; rows not acknowledged by then fail (as
        possibly stored if they were sent), and the futures of their sends
        resolve. Async sends not yet reported are waited for; the first that
        failed is raised after the wrapper is closed. Ctrl-C (or any
        exception) while it waits closes the wrapper within
        :data:`INTERRUPTED_CLOSE_S` seconds and is raised. ``close`` is the
        same method.
        """
        self._core.shutdown(self._core.flush_deadline(timeout))

    close = shutdown

    def stats(self) -> dict[str, int]:
        """The engine's counters: batches, rows acknowledged and failed, stream calls, replays..."""
        return self._core.stats()

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._core.closed

    def __enter__(self) -> ZerobusWrapper:
        """Return the wrapper."""
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Shut down; an error of the shutdown does not hide an exception already raised.

        After Ctrl-C (any exception that is not an :class:`Exception`), the
        shutdown is bounded by :data:`INTERRUPTED_CLOSE_S` seconds.
        """
        if exc is None:
            self.shutdown()
            return
        interrupted = not isinstance(exc, Exception)
        try:
            self.shutdown(timeout=INTERRUPTED_CLOSE_S if interrupted else None)
        except ZerobusError as close_exc:
            logger.warning("shutdown after an error failed too: %s", close_exc)

    def __repr__(self) -> str:
        """Return e.g. ``ZerobusWrapper(table_name='main.app.events', endpoint='...', closed=False)``."""
        return (
            f"ZerobusWrapper(table_name={self.config.table_name!r}, "
            f"endpoint={self.config.endpoint!r}, closed={self.closed})"
        )
