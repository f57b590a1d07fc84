"""The synchronous wrapper: :class:`ZerobusWrapper`."""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from types import TracebackType
from typing import Any, ClassVar, Optional

from . import _engine
from ._input import SendInput, to_source
from ._progress import Progress, make_progress
from .config import WrapperConfiguration
from .errors import TransmissionError, ZerobusError
from .result import TransmissionResult

__all__ = ["ZerobusWrapper"]

logger = logging.getLogger("pyzerobus")
_engine_logger = logging.getLogger("pyzerobus.engine")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
# Attributes of every LogRecord: an engine attribute of the same name is
# passed as engine_<name>.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

# How long one native wait may block: the bound on how late Ctrl-C is seen.
_WAIT_SLICE_MS = 200
_LOG_DRAIN_S = 1.0
# After an interrupt, the close that follows is bounded by this (seconds):
# rows not acknowledged by then fail (as possibly stored if they were sent).
INTERRUPTED_CLOSE_S = 2.0

_open: weakref.WeakSet[ZerobusWrapper] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close wrappers left open at exit, before the interpreter can no longer serve the engine."""
    if _engine.forked():  # the parent's wrappers: this process has no engine to close them
        return
    for w in list(_open):
        try:
            w.shutdown()
        except Exception as exc:  # pragma: no cover - best effort at exit
            logger.warning("closing %r at exit: %s", w, exc)


def _raise_for(result: TransmissionResult, strict: bool) -> None:
    """Raise the result's error when the send failed.

    A send fails when reading its input failed, when no row at all was
    acknowledged, or (``strict``) when any row failed.
    """
    if result.input_error is not None:
        raise result.input_error
    if result.failed_count and (strict or result.successful_count == 0) and result.error is not None:
        raise result.error


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

    Example::

        cfg = WrapperConfiguration(endpoint=..., table_name="main.app.events",
                                   client_id=..., client_secret=..., unity_catalog_url=...)
        with ZerobusWrapper(cfg) as w:
            result = w.send_batch(table)
            print(result.successful_count, result.failed_count)
    """

    _notify: ClassVar[bool] = False

    def __init__(self, config: Optional[WrapperConfiguration] = None, **settings: Any) -> None:
        """Validate the configuration and create the wrapper (no connection is opened yet).

        Keyword arguments are settings of :class:`WrapperConfiguration`; with
        a ``config`` they override it. Raises :class:`ConfigurationError`
        listing every invalid setting.
        """
        if config is None:
            config = WrapperConfiguration(**settings)
        elif settings:
            config = config.replace(**settings)
        config.validate()
        self.config = config
        mod = _engine.native()
        # The engine's OpenTelemetry exporters read OTEL_* variables from the
        # Go runtime's copy of the environment, taken when the module loaded.
        otel = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
        _engine.call(mod.SetOTelEnvironment, json.dumps(otel))
        self._native = _engine.call(
            mod.NewWrapper, config.to_json(), _engine_logger.getEffectiveLevel(), self._notify
        )
        self._lock = threading.Lock()
        self._pending: dict[int, None] = {}  # async offsets not yet reported, ascending
        self._issued = -1  # the highest operation id handed out
        self._closed = False
        self._last_drain = time.monotonic()
        _open.add(self)
        logger.debug("wrapper created for table %s", config.table_name)

    # ------------------------------------------------------------ plumbing

    def _start(self, data: SendInput) -> tuple[int, Optional[int]]:
        """Hand data to the engine; return the operation id and the row count if known."""
        if self._closed:
            raise TransmissionError("the wrapper is closed", op="send")
        src = to_source(data)
        if src.ipc is not None:
            op = _engine.call(self._native.SendIPC, _engine.go_bytes(src.ipc))
        else:
            # The engine moves the stream out of the capsule's struct before
            # returning; the capsule (kept alive until then) is left released.
            op = _engine.call(self._native.SendStream, src.stream_address())
        with self._lock:
            self._issued = max(self._issued, op)
        return op, src.total_rows

    def _wait_op(self, op: int, deadline: Optional[float], bar: Optional[Progress] = None) -> bool:
        """Wait for an operation in short slices (Ctrl-C is seen between them).

        Returns False if the deadline passed first.
        """
        while True:
            slice_ms = _WAIT_SLICE_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                slice_ms = max(1, min(slice_ms, int(left * 1000)))
            done = _engine.call(self._native.Wait, op, slice_ms)
            if bar is not None:
                bar.update_to(_engine.call(self._native.Progress, op))
            if time.monotonic() - self._last_drain > _LOG_DRAIN_S:
                self._drain_logs()
            if done:
                return True

    def _take_result(self, op: int, offset: Optional[int] = None) -> TransmissionResult:
        return _engine.take_result(self._native, op, offset)

    def _abandon(self, op: int) -> TransmissionResult:
        """Cancel an operation and wait for it to stop; return its result."""
        _engine.call(self._native.Cancel, op)
        self._wait_op(op, None)
        res = self._take_result(op)
        logger.warning(
            "send cancelled: %d of %d rows read were acknowledged, %d failed",
            res.successful_count,
            res.total_rows,
            res.failed_count,
        )
        return res

    def _drain_logs(self) -> None:
        self._last_drain = time.monotonic()
        text = _engine.call(self._native.Logs)
        for line in text.splitlines():
            rec = json.loads(line)
            attrs = rec.get("attrs") or {}
            level = _LEVELS.get(rec["level"], logging.INFO)
            if not _engine_logger.isEnabledFor(level):
                continue
            # The attributes are in the text for plain handlers, and each one
            # an attribute of the record (``extra``) for structured ones.
            text_attrs = " ".join(f"{k}={v}" for k, v in attrs.items())
            extra = {(k if k not in _RESERVED else f"engine_{k}"): v for k, v in attrs.items()}
            _engine_logger.log(level, "%s %s", rec["message"], text_attrs, extra=extra)

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return None if timeout is None else time.monotonic() + timeout

    def _flush_deadline(self, timeout: Optional[float]) -> float:
        """One deadline for a flush or shutdown: ``timeout`` seconds, by default flush_timeout_ms."""
        if timeout is None:
            timeout = self.config.flush_timeout_ms / 1000
        return time.monotonic() + max(0.0, timeout)

    def _flush_engine(self, deadline: float) -> bool:
        """Flush the engine's streams in slices until ``deadline``; False if it passed first."""
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                return False
            if _engine.call(self._native.Flush, min(_WAIT_SLICE_MS, left_ms)):
                return True

    def _close_engine(self, deadline: float) -> None:
        """Close the engine under one deadline, waiting in slices (Ctrl-C is seen between them).

        The first call starts the close; later ones (after an interrupt, with
        a nearer deadline) bring its deadline closer.
        """
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if _engine.call(self._native.Close, left_ms, _WAIT_SLICE_MS):
                return

    def _register_async(self, op: int) -> None:
        with self._lock:
            self._pending[op] = None

    # ------------------------------------------------------------ sending

    def send_batch(
        self,
        data: SendInput,
        *,
        progress: bool = False,
        strict: bool = False,
        timeout: Optional[float] = None,
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
        op, total = self._start(data)
        bar = make_progress(progress, total)
        try:
            finished = self._wait_op(op, self._deadline(timeout), bar)
        except BaseException:
            self._abandon(op)
            raise
        finally:
            bar.close()
        if not finished:
            res = self._abandon(op)
            raise TransmissionError(
                f"send timed out after {timeout} s and was cancelled", op="send", result=res
            )
        res = self._take_result(op)
        self._drain_logs()
        logger.debug("sent %r", res)
        _raise_for(res, strict)
        return res

    def send_batch_async(self, data: SendInput) -> int:
        """Hand data to the engine and return at once with the send's offset.

        Offsets grow with every send of this wrapper. The data is read and
        sent in the background; it must not be modified meanwhile (the
        engine reads it in place). Wait with :meth:`wait_for_offset` or
        :meth:`flush`, which report the results.
        """
        op, _ = self._start(data)
        self._register_async(op)
        return op

    def wait_for_offset(
        self, offset: int, *, timeout: Optional[float] = None, strict: bool = False
    ) -> list[TransmissionResult]:
        """Wait for the async send at ``offset`` and every async send before it.

        Returns the results of those sends not returned by an earlier wait,
        by ascending offset (each result carries its ``offset``). Raises the
        error of the first of them that failed (see :meth:`send_batch` for
        what counts as failed, and ``strict``), with ``results`` holding all
        of them. With a ``timeout`` (seconds) that passes first,
        :class:`TransmissionError` is raised and the sends go on.
        """
        return self._wait_until(offset, self._deadline(timeout), strict, f"after {timeout} s")

    def _wait_until(
        self, offset: int, deadline: Optional[float], strict: bool, bound: str
    ) -> list[TransmissionResult]:
        """:meth:`wait_for_offset` with a deadline (``bound`` describes it for the error)."""
        if offset < 0 or offset > self._issued:
            raise ValueError(f"offset {offset} was not returned by send_batch_async")
        with self._lock:
            covered = [o for o in self._pending if o <= offset]
        results: list[TransmissionResult] = []
        for o in covered:
            if not self._wait_op(o, deadline):
                raise TransmissionError(f"wait for offset {offset} timed out {bound}", op="wait")
            with self._lock:
                if o not in self._pending:
                    continue  # another thread reported it
                del self._pending[o]
            results.append(self._take_result(o, offset=o))
        self._drain_logs()
        for res in results:
            try:
                _raise_for(res, strict)
            except ZerobusError as exc:
                exc.results = results
                raise
        return results

    def flush(self, *, timeout: Optional[float] = None, strict: bool = False) -> list[TransmissionResult]:
        """Wait until every async send so far is resolved, and report them as :meth:`wait_for_offset` does.

        ``timeout`` (seconds, default ``flush_timeout_ms``) bounds the whole
        flush; when it passes first, :class:`TransmissionError` is raised and
        the sends go on. Concurrent :meth:`send_batch` calls report their own
        results.
        """
        return self._flush(self._flush_deadline(timeout), strict)

    def _flush(self, deadline: float, strict: bool) -> list[TransmissionResult]:
        bound = f"after {max(0.0, deadline - time.monotonic()):.3g} s"
        with self._lock:
            last = max(self._pending, default=-1)
        results = self._wait_until(last, deadline, strict, bound) if last >= 0 else []
        if not self._flush_engine(deadline):
            raise TransmissionError(f"flush timed out {bound}", op="flush")
        return results

    def shutdown(self, *, timeout: Optional[float] = None) -> None:
        """Flush, then close the streams and the connection. Calling it again does nothing.

        ``timeout`` (seconds, default ``flush_timeout_ms``) is one deadline
        for the whole shutdown; rows not acknowledged by then fail (as
        possibly stored if they were sent). Async sends not yet reported are
        waited for; the first that failed is raised after the wrapper is
        closed. Ctrl-C (or any exception) while it waits closes the wrapper
        within :data:`INTERRUPTED_CLOSE_S` seconds and is raised. ``close``
        is the same method.
        """
        if self._closed:
            return
        deadline = self._flush_deadline(timeout)
        error: Optional[ZerobusError] = None
        try:
            try:
                self._flush(deadline, strict=False)
            except ZerobusError as exc:
                error = exc
            self._mark_closed()
            try:
                self._close_engine(deadline)
            except ZerobusError as exc:
                error = error or exc
            # Closed: every send has ended. Those not reported yet (the flush
            # ran out of time) report now; their failure says which rows.
            with self._lock:
                last = max(self._pending, default=-1)
            if last >= 0:
                try:
                    self._wait_until(last, None, False, "")
                except ZerobusError as exc:
                    error = exc
        except BaseException:
            self._close_interrupted()
            raise
        finally:
            self._drain_logs()
        logger.debug("wrapper for table %s closed", self.config.table_name)
        if error is not None:
            raise error

    def _close_interrupted(self) -> None:
        """After Ctrl-C (or another exception) during a shutdown: end within a short bound."""
        self._mark_closed()
        logger.warning("shutdown interrupted: closing within %.0f s", INTERRUPTED_CLOSE_S)
        try:
            self._close_engine(time.monotonic() + INTERRUPTED_CLOSE_S)
        except ZerobusError as exc:  # the interrupt is what the caller hears about
            logger.warning("close after an interrupt: %s", exc)

    def _mark_closed(self) -> None:
        self._closed = True
        _open.discard(self)

    close = shutdown

    def stats(self) -> dict[str, int]:
        """The engine's counters: batches, rows acknowledged and failed, stream calls, replays..."""
        return dict(_engine.call_json(self._native.Stats))

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._closed

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
            f"endpoint={self.config.endpoint!r}, closed={self._closed})"
        )
