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
from ._input import to_source
from ._progress import Progress, make_progress
from .config import WrapperConfiguration
from .errors import TransmissionError, ZerobusError
from .result import TransmissionResult

__all__ = ["ZerobusWrapper"]

logger = logging.getLogger("pyzerobus")
_engine_logger = logging.getLogger("pyzerobus.engine")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}

# How long one native wait may block: the bound on how late Ctrl-C is seen.
_WAIT_SLICE_MS = 200
_LOG_DRAIN_S = 1.0

_open: weakref.WeakSet[ZerobusWrapper] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close wrappers left open at exit, before the interpreter can no longer serve the engine."""
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
            mod.NewWrapper, config.to_json(), logger.getEffectiveLevel(), self._notify
        )
        self._lock = threading.Lock()
        self._pending: dict[int, None] = {}  # async offsets not yet reported, ascending
        self._issued = -1  # the highest operation id handed out
        self._closed = False
        self._last_drain = time.monotonic()
        _open.add(self)
        logger.debug("wrapper created for table %s", config.table_name)

    # ------------------------------------------------------------ plumbing

    def _start(self, data: Any) -> tuple[int, Optional[int]]:
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
        data = _engine.call_json(self._native.Result, op)
        return TransmissionResult._from_engine(data, offset)

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
            attrs = " ".join(f"{k}={v}" for k, v in (rec.get("attrs") or {}).items())
            _engine_logger.log(_LEVELS.get(rec["level"], logging.INFO), "%s %s", rec["message"], attrs)

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return None if timeout is None else time.monotonic() + timeout

    def _timeout_ms(self, timeout: Optional[float]) -> int:
        if timeout is None:
            return self.config.flush_timeout_ms
        return max(0, int(timeout * 1000))

    def _register_async(self, op: int) -> None:
        with self._lock:
            self._pending[op] = None

    # ------------------------------------------------------------ sending

    def send_batch(
        self, data: Any, *, progress: bool = False, strict: bool = False, timeout: Optional[float] = None
    ) -> TransmissionResult:
        """Send data and wait until every row is durably acknowledged or has failed.

        Args:
            data: a pyarrow Table, RecordBatch or RecordBatchReader, a pandas
                or polars DataFrame, an object with ``__arrow_c_stream__``, an
                ``arrow_array_stream`` PyCapsule, or Arrow IPC bytes. Streams
                are consumed batch by batch.
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

    def send_batch_async(self, data: Any) -> int:
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
        if offset < 0 or offset > self._issued:
            raise ValueError(f"offset {offset} was not returned by send_batch_async")
        deadline = self._deadline(timeout)
        with self._lock:
            covered = [o for o in self._pending if o <= offset]
        results: list[TransmissionResult] = []
        for o in covered:
            if not self._wait_op(o, deadline):
                raise TransmissionError(f"wait for offset {offset} timed out after {timeout} s", op="wait")
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

        Concurrent :meth:`send_batch` calls report their own results.
        """
        with self._lock:
            last = max(self._pending, default=-1)
        results = self.wait_for_offset(last, timeout=timeout, strict=strict) if last >= 0 else []
        _engine.call(self._native.Flush, self._timeout_ms(timeout))
        return results

    def shutdown(self, *, timeout: Optional[float] = None) -> None:
        """Flush, then close the streams and the connection. Calling it again does nothing.

        Async sends not yet reported are waited for; the first that failed
        is raised after the wrapper is closed. ``close`` is the same method.
        """
        if self._closed:
            return
        error: Optional[BaseException] = None
        try:
            self.flush(timeout=timeout)
        except ZerobusError as exc:
            error = exc
        finally:
            self._closed = True
            _open.discard(self)
            try:
                _engine.call(self._native.Close, self._timeout_ms(timeout))
            finally:
                self._drain_logs()
        logger.debug("wrapper for table %s closed", self.config.table_name)
        if error is not None:
            raise error

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
        """Shut down; an error of the shutdown does not hide an exception already raised."""
        if exc is None:
            self.shutdown()
            return
        try:
            self.shutdown()
        except ZerobusError as close_exc:
            logger.warning("shutdown after an error failed too: %s", close_exc)

    def __repr__(self) -> str:
        """Return e.g. ``ZerobusWrapper(table_name='main.app.events', endpoint='...', closed=False)``."""
        return (
            f"ZerobusWrapper(table_name={self.config.table_name!r}, "
            f"endpoint={self.config.endpoint!r}, closed={self._closed})"
        )
