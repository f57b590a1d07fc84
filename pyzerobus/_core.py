"""The private core under :class:`~pyzerobus.ZerobusWrapper` and :class:`~pyzerobus.AsyncZerobusWrapper`.

A :class:`Core` owns one engine handle and everything about it that both
wrappers share: handing data over, the async sends not yet reported (by
offset), taking results, draining the engine's log records into
``logging``, the sliced waits (a native wait blocks at most
``WAIT_SLICE_MS``, so Ctrl-C is seen between slices), flush and close under
one deadline, and the exit handler.

Completions. The engine keeps a log of finished operations (the handle is
made with ``notify``). :meth:`Core.watch` returns a
:class:`concurrent.futures.Future` resolved when an operation finishes; one
poller thread per core, started on the first watch and ending when nothing
is watched, reads that log and resolves the futures (or fails them all if
reading it fails). The sync wrapper's ``send_batch_nowait`` and the asyncio
wrapper's awaits are built on these futures. The poller is a daemon thread:
futures left pending never keep the interpreter from reaching the exit
handler, which closes the wrapper and so resolves them.

The sync wrapper calls everything here from the caller's thread; the
asyncio wrapper calls the blocking methods (:meth:`Core.start`,
:meth:`Core.flush_engine`, :meth:`Core.shutdown`) in a worker thread and
only quick ones (``done``, ``progress``, ``take_result``, ``cancel``) on its
event loop.
"""

from __future__ import annotations

import atexit
import base64
import concurrent.futures
import contextlib
import json
import logging
import os
import threading
import time
import warnings
import weakref
from collections.abc import Mapping
from typing import Any, Callable, Optional, Union

from . import _engine
from ._input import SendInput, to_source
from ._progress import Progress
from .config import WrapperConfiguration
from .errors import ConfigurationError, TransmissionError, ZerobusError
from .result import TransmissionResult

__all__ = ["INTERRUPTED_CLOSE_S", "Core", "deprecated", "raise_for", "resolve_config"]

logger = logging.getLogger("pyzerobus")
_engine_logger = logging.getLogger("pyzerobus.engine")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
# Attributes of every LogRecord: an engine attribute of the same name is
# passed as engine_<name>.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

# How long one native wait may block: the bound on how late Ctrl-C is seen.
WAIT_SLICE_MS = 200
# How long one read of the completion log may block in the engine.
_POLL_MS = 250
# Log records are drained at least this often (seconds) while a wait goes on.
_LOG_DRAIN_S = 1.0
# After an interrupt, the close that follows is bounded by this (seconds):
# rows not acknowledged by then fail (as possibly stored if they were sent).
INTERRUPTED_CLOSE_S = 2.0

_open: weakref.WeakSet[Core] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close wrappers left open at exit, before the interpreter can no longer serve the engine."""
    if _engine.forked():  # the parent's wrappers: this process has no engine to close them
        return
    for core in list(_open):
        try:
            core.shutdown(core.flush_deadline(None))
        except Exception as exc:  # pragma: no cover - best effort at exit
            logger.warning("closing the wrapper for %s at exit: %s", core.config.table_name, exc)


#: An explicit message descriptor for a send: a ``google.protobuf``
#: ``DescriptorProto`` (anything with ``SerializeToString``), or its bytes.
Descriptor = Union[bytes, Any]


def _descriptor_arg(descriptor: Optional[Descriptor]) -> str:
    """The engine's form of a send's descriptor: base64 of the serialized DescriptorProto, or ""."""
    if descriptor is None:
        return ""
    raw = descriptor if isinstance(descriptor, (bytes, bytearray)) else descriptor.SerializeToString()
    if not raw:
        raise ConfigurationError("the descriptor is empty", op="descriptor")
    return base64.b64encode(bytes(raw)).decode("ascii")


#: A callable that returns the headers of a stream call (``authorization``
#: among them), in place of OAuth: called each time the engine opens a call.
HeadersProvider = Callable[[], Mapping[str, str]]


def resolve_config(
    config: Optional[WrapperConfiguration], settings: dict[str, Any], custom_headers: bool = False
) -> WrapperConfiguration:
    """The configuration of a new wrapper: ``config`` with ``settings`` over it, validated."""
    if config is None:
        config = WrapperConfiguration(**settings)
    elif settings:
        config = config.replace(**settings)
    config.validate(custom_headers=custom_headers)
    return config


def deprecated(name: str, instead: str) -> None:
    """Warn (DeprecationWarning) that ``name`` is deprecated, pointing at the caller of the wrapper method."""
    warnings.warn(f"{name} is deprecated: use {instead}", DeprecationWarning, stacklevel=3)


def raise_for(result: TransmissionResult, strict: bool) -> None:
    """Raise the result's error when the send failed.

    A send fails when reading its input failed, when no row at all was
    acknowledged, or (``strict``) when any row failed.
    """
    if result.input_error is not None:
        raise result.input_error
    if result.failed_count and (strict or result.successful_count == 0) and result.error is not None:
        raise result.error


def log_cancelled(res: TransmissionResult) -> None:
    """Say what a cancelled send left behind."""
    logger.warning(
        "send cancelled: %d of %d rows read were acknowledged, %d failed",
        res.successful_count,
        res.total_rows,
        res.failed_count,
    )


class Core:
    """One engine handle and the state both wrappers share (see the module documentation).

    Thread-safe: ``_lock`` guards the pending offsets, the watched
    operations and the poller; ``_poll_lock`` makes one thread at a time
    read the completion log (and own ``_seq``).
    """

    def __init__(
        self, config: WrapperConfiguration, headers_provider: Optional[HeadersProvider] = None
    ) -> None:
        """Create the engine handle for a validated configuration."""
        self.config = config
        mod = _engine.native()
        # The engine's OpenTelemetry exporters read OTEL_* variables from the
        # Go runtime's copy of the environment, taken when the module loaded.
        otel = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
        _engine.call(mod.SetOTelEnvironment, json.dumps(otel))
        new = mod.NewWrapper if headers_provider is None else mod.NewWrapperWithHeaders
        self._native = _engine.call(new, config.to_json(), _engine_logger.getEffectiveLevel(), True)
        self._headers_thread: Optional[threading.Thread] = None
        self._headers_stop = threading.Event()
        if headers_provider is not None:
            self._headers_thread = threading.Thread(
                target=self._serve_headers, args=(headers_provider,), name="pyzerobus-headers", daemon=True
            )
            self._headers_thread.start()
        self._lock = threading.Lock()
        self._pending: dict[int, None] = {}  # async offsets not yet reported, ascending
        self._issued = -1  # the highest operation id handed out
        self._closed = False
        self._last_drain = time.monotonic()
        self._watched: dict[int, concurrent.futures.Future[None]] = {}
        self._poller: Optional[threading.Thread] = None
        self._poll_lock = threading.Lock()
        self._seq = 0  # the completion log is read up to here
        self._futures: set[concurrent.futures.Future[TransmissionResult]] = set()  # of result_future
        _open.add(self)

    @property
    def closed(self) -> bool:
        """Whether the close has begun."""
        return self._closed

    # ------------------------------------------------------------ operations

    def start(self, data: SendInput, descriptor: Optional[Descriptor] = None) -> tuple[int, Optional[int]]:
        """Hand data to the engine; return the operation id and the row count if known."""
        if self._closed:
            raise TransmissionError("the wrapper is closed", op="send")
        desc = _descriptor_arg(descriptor)
        src = to_source(data)
        if src.ipc is not None:
            op = _engine.call(self._native.SendIPC, _engine.go_bytes(src.ipc), desc)
        else:
            # The engine moves the stream out of the capsule's struct before
            # returning; the capsule (kept alive until then) is left released.
            op = _engine.call(self._native.SendStream, src.stream_address(), desc)
        with self._lock:
            self._issued = max(self._issued, op)
        return op, src.total_rows

    def done(self, op: int) -> bool:
        """Whether an operation has finished (does not wait)."""
        return _engine.call(self._native.Wait, op, 0)

    def progress(self, op: int) -> int:
        """How many rows of an operation are resolved so far."""
        return _engine.call(self._native.Progress, op)

    def cancel(self, op: int) -> None:
        """Cancel an operation: rows not yet written fail; it finishes soon after."""
        _engine.call(self._native.Cancel, op)

    def wait_op(self, op: int, deadline: Optional[float], bar: Optional[Progress] = None) -> bool:
        """Wait for an operation in short slices (Ctrl-C is seen between them).

        Returns False if the deadline passed first.
        """
        while True:
            slice_ms = WAIT_SLICE_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                slice_ms = max(1, min(slice_ms, int(left * 1000)))
            finished = _engine.call(self._native.Wait, op, slice_ms)
            if bar is not None:
                bar.update_to(self.progress(op))
            self.drain_logs_if_due()
            if finished:
                return True

    def take_result(self, op: int, offset: Optional[int] = None) -> TransmissionResult:
        """The result of a finished operation (only once: the engine forgets it)."""
        res = _engine.take_result(self._native, op, offset)
        self._trim_completions()
        return res

    def abandon(self, op: int) -> TransmissionResult:
        """Cancel an operation, wait (in slices) until it stops, and return its result."""
        self.cancel(op)
        self.wait_op(op, None)
        res = self.take_result(op)
        log_cancelled(res)
        return res

    # ------------------------------------------------------------ logs

    def drain_logs(self) -> None:
        """Hand the engine's log records kept so far to ``logging`` (``pyzerobus.engine``).

        Each record's attributes are in its text for plain handlers, and each
        one an attribute of the record (``extra``) for structured ones.
        """
        self._last_drain = time.monotonic()
        text = _engine.call(self._native.Logs)
        for line in text.splitlines():
            rec = json.loads(line)
            attrs = rec.get("attrs") or {}
            level = _LEVELS.get(rec["level"], logging.INFO)
            if not _engine_logger.isEnabledFor(level):
                continue
            text_attrs = " ".join(f"{k}={v}" for k, v in attrs.items())
            extra = {(k if k not in _RESERVED else f"engine_{k}"): v for k, v in attrs.items()}
            _engine_logger.log(level, "%s %s", rec["message"], text_attrs, extra=extra)

    def drain_logs_if_due(self) -> None:
        """Drain the log records if the last drain is older than a second."""
        if time.monotonic() - self._last_drain > _LOG_DRAIN_S:
            self.drain_logs()

    # ------------------------------------------------------------ completions

    def watch(self, op: int) -> concurrent.futures.Future[None]:
        """A future resolved when the engine finishes ``op`` (its result is not taken).

        Calls for the same operation share one future until it resolves.
        If reading the completion log fails, the future fails with that error.
        """
        with self._lock:
            fut = self._watched.get(op)
            if fut is not None:
                return fut
            fut = concurrent.futures.Future()
            self._watched[op] = fut
        try:
            finished = self.done(op)  # finished before it was watched
        except BaseException as exc:
            self._settle(op, exc)
            return fut
        if finished:
            self._settle(op)
        else:
            self._ensure_poller()
        return fut

    def _settle(self, op: int, error: Optional[BaseException] = None) -> None:
        with self._lock:
            fut = self._watched.pop(op, None)
        if fut is None or not fut.set_running_or_notify_cancel():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)

    def _ensure_poller(self) -> None:
        with self._lock:
            if self._poller is not None or not self._watched:
                return
            self._poller = threading.Thread(target=self._poll, name="pyzerobus-completions", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        """The poller thread: resolve watched operations as the engine finishes them."""
        while True:
            with self._lock:
                if not self._watched:
                    self._poller = None
                    return
            try:
                with self._poll_lock:
                    out = _engine.call_json(self._native.Completions, self._seq, _POLL_MS)
                    self._seq = int(out["seq"])
            except BaseException as exc:  # the engine failed: fail the waiters rather than hang them
                with self._lock:
                    ops = list(self._watched)
                    self._poller = None
                for op in ops:
                    self._settle(op, exc)
                return
            for op in out["ops"]:
                self._settle(int(op))
            if out["ops"]:
                self.drain_logs()
            else:
                self.drain_logs_if_due()

    def _trim_completions(self) -> None:
        """Let the engine forget the completion log read so far (it grows by one id per send).

        The poller does this as it reads; without one running, a look
        without waiting does it, and resolves what it finds watched.
        """
        if self._poller is not None or not self._poll_lock.acquire(blocking=False):
            return
        try:
            out = _engine.call_json(self._native.Completions, self._seq, 0)
            self._seq = int(out["seq"])
        finally:
            self._poll_lock.release()
        for op in out["ops"]:
            self._settle(int(op))

    def result_future(self, op: int, strict: bool) -> concurrent.futures.Future[TransmissionResult]:
        """A future of the result of ``op``: the result, or the exception a send would raise.

        Cancelling the future cancels the operation (its result is then
        logged and dropped).
        """
        fut: concurrent.futures.Future[TransmissionResult] = concurrent.futures.Future()

        def finish(done: concurrent.futures.Future[None]) -> None:
            running = fut.set_running_or_notify_cancel()
            error = done.exception()
            if error is not None:
                if running:
                    fut.set_exception(error)
                return
            try:
                res = self.take_result(op)
            except BaseException as exc:
                if running:
                    fut.set_exception(exc)
                return
            if not running:
                log_cancelled(res)
                return
            try:
                raise_for(res, strict)
            except ZerobusError as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(res)

        def on_cancel(f: concurrent.futures.Future[TransmissionResult]) -> None:
            if f.cancelled():
                with contextlib.suppress(ZerobusError):  # finished and taken meanwhile
                    self.cancel(op)

        def forget(f: concurrent.futures.Future[TransmissionResult]) -> None:
            with self._lock:
                self._futures.discard(f)

        with self._lock:
            self._futures.add(fut)
        fut.add_done_callback(on_cancel)
        fut.add_done_callback(forget)
        self.watch(op).add_done_callback(finish)
        return fut

    def wait_futures(self, deadline: float) -> bool:
        """Wait in slices for the futures of :meth:`result_future` so far; False at the deadline."""
        with self._lock:
            futures = list(self._futures)
        while futures:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _, not_done = concurrent.futures.wait(futures, min(left, WAIT_SLICE_MS / 1000))
            futures = list(not_done)
            self.drain_logs_if_due()
        return True

    # ------------------------------------------------------------ async offsets

    def register_pending(self, op: int) -> None:
        """Keep an async send's offset until a wait reports its result."""
        with self._lock:
            self._pending[op] = None

    def pending(self) -> list[int]:
        """The offsets of async sends not reported yet, ascending."""
        with self._lock:
            return list(self._pending)

    def covered(self, offset: int) -> list[int]:
        """The unreported offsets up to ``offset``; ValueError if it was never handed out."""
        if offset < 0 or offset > self._issued:
            raise ValueError(f"offset {offset} was not returned by send_batch_async")
        with self._lock:
            return [o for o in self._pending if o <= offset]

    def wait_until(
        self, offset: int, deadline: Optional[float], strict: bool, bound: str
    ) -> list[TransmissionResult]:
        """Wait for the async sends up to ``offset`` and report them (``bound`` describes the deadline)."""
        results: list[TransmissionResult] = []
        for o in self.covered(offset):
            if not self.wait_op(o, deadline):
                raise TransmissionError(f"wait for offset {offset} timed out {bound}", op="wait")
            with self._lock:
                if o not in self._pending:
                    continue  # another thread reported it
                del self._pending[o]
            results.append(self.take_result(o, offset=o))
        self.drain_logs()
        for res in results:
            try:
                raise_for(res, strict)
            except ZerobusError as exc:
                exc.results = results
                raise
        return results

    # ------------------------------------------------------------ flush and close

    @staticmethod
    def deadline(timeout: Optional[float]) -> Optional[float]:
        """The monotonic time ``timeout`` seconds from now (None: no deadline)."""
        return None if timeout is None else time.monotonic() + timeout

    def flush_deadline(self, timeout: Optional[float]) -> float:
        """One deadline for a flush or shutdown: ``timeout`` seconds, by default flush_timeout_ms."""
        if timeout is None:
            timeout = self.config.flush_timeout_ms / 1000
        return time.monotonic() + max(0.0, timeout)

    def flush_engine(self, deadline: float) -> bool:
        """Flush the engine's streams in slices until ``deadline``; False if it passed first."""
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                return False
            if _engine.call(self._native.Flush, min(WAIT_SLICE_MS, left_ms)):
                return True

    def flush(self, deadline: float, strict: bool) -> list[TransmissionResult]:
        """Report the async sends so far, resolve the futures of the sends so far, flush the engine.

        One deadline for all three.
        """
        bound = f"after {max(0.0, deadline - time.monotonic()):.3g} s"
        pending = self.pending()
        results = self.wait_until(pending[-1], deadline, strict, bound) if pending else []
        if not self.wait_futures(deadline) or not self.flush_engine(deadline):
            raise TransmissionError(f"flush timed out {bound}", op="flush")
        return results

    def _close_engine(self, deadline: float) -> None:
        """Close the engine under one deadline, waiting in slices (Ctrl-C is seen between them).

        The first call starts the close; later ones (after an interrupt, with
        a nearer deadline) bring its deadline closer.
        """
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if _engine.call(self._native.Close, left_ms, WAIT_SLICE_MS):
                return

    def _mark_closed(self) -> None:
        self._closed = True
        _open.discard(self)

    def _serve_headers(self, provider: HeadersProvider) -> None:
        """Answer the engine's requests for call headers with the provider's, until closed.

        The engine's goroutines cannot call Python: a stream opening a call
        asks and waits, this thread (the provider's only caller) answers.
        """
        while not self._headers_stop.is_set():
            try:
                if not _engine.call(self._native.HeadersWanted, WAIT_SLICE_MS):
                    continue
            except ZerobusError:  # pragma: no cover - the handle is gone
                return
            try:
                headers = {str(k): str(v) for k, v in dict(provider()).items()}
            except Exception as exc:  # the provider's failure fails the calls that wait
                logger.warning("headers provider failed: %s", type(exc).__name__)
                _engine.call(self._native.SetHeaders, "", f"{type(exc).__name__}: {exc}")
                continue
            _engine.call(self._native.SetHeaders, json.dumps(headers), "")

    def _stop_headers(self) -> None:
        """End the headers thread (it sees the stop within one wait slice)."""
        self._headers_stop.set()
        if self._headers_thread is not None and self._headers_thread is not threading.current_thread():
            self._headers_thread.join(2 * WAIT_SLICE_MS / 1000)

    def shutdown(self, deadline: float) -> None:
        """Flush, then close, by ``deadline``; raise the first failure of an unreported async send.

        Ctrl-C (or any exception) while it waits closes the engine within
        ``INTERRUPTED_CLOSE_S`` seconds and is raised. Calling it again does nothing.
        """
        if self._closed:
            return
        error: Optional[ZerobusError] = None
        try:
            try:
                self.flush(deadline, strict=False)
            except ZerobusError as exc:
                error = exc
            self._mark_closed()
            try:
                self._close_engine(deadline)
            except ZerobusError as exc:
                error = error or exc
            # Closed: every send has ended. Those not reported yet (the flush
            # ran out of time) report now; their failure says which rows.
            pending = self.pending()
            if pending:
                try:
                    self.wait_until(pending[-1], None, False, "")
                except ZerobusError as exc:
                    error = exc
            self._settle_watched()
        except BaseException:
            self.close_interrupted()
            raise
        finally:
            self._stop_headers()
            self.drain_logs()
        logger.debug("wrapper for table %s closed", self.config.table_name)
        if error is not None:
            raise error

    def _settle_watched(self) -> None:
        """After the close: every operation has ended, resolve what is still watched."""
        with self._lock:
            ops = list(self._watched)
        for op in ops:
            try:
                finished = self.done(op)
            except ZerobusError as exc:
                self._settle(op, exc)
                continue
            if finished:
                self._settle(op)

    def close_interrupted(self) -> None:
        """After Ctrl-C (or another exception) during a shutdown: end within a short bound."""
        self._mark_closed()
        logger.warning("shutdown interrupted: closing within %.0f s", INTERRUPTED_CLOSE_S)
        try:
            self._close_engine(time.monotonic() + INTERRUPTED_CLOSE_S)
        except ZerobusError as exc:  # the interrupt is what the caller hears about
            logger.warning("close after an interrupt: %s", exc)

    def stats(self) -> dict[str, int]:
        """The engine's counters."""
        return dict(_engine.call_json(self._native.Stats))
