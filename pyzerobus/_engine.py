"""Typed access to the gopy-built engine module (``pyzerobus._native``): the native boundary.

The generated module is untyped, raises RuntimeError for every Go error and
answers in JSON; this module gives it a typed surface (:class:`NativeModule`,
:class:`NativeWrapper`), and decodes what crosses: :func:`call` turns those
RuntimeErrors into pyzerobus exceptions, :func:`take_result` the JSON of a
finished send into a :class:`~pyzerobus.TransmissionResult` whose errors
point back at it. ``errors`` and ``result`` know nothing of the engine.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Callable, Optional, Protocol, TypeVar, cast

from .errors import BY_KIND, ConfigProblem, ConfigurationError, ZerobusError
from .result import FailedRows, SuccessfulRows, TransmissionResult, _Runs

T = TypeVar("T")


class NativeWrapper(Protocol):
    """The methods of the facade's ``Wrapper`` handle (see bindings/wrapper.go)."""

    def SendStream(self, addr: int, descriptor: str) -> int: ...  # noqa: N802
    def SendIPC(self, data: Any, descriptor: str) -> int: ...  # noqa: N802
    def Wait(self, op: int, timeout_ms: int) -> bool: ...  # noqa: N802
    def Progress(self, op: int) -> int: ...  # noqa: N802
    def Cancel(self, op: int) -> bool: ...  # noqa: N802
    def Result(self, op: int) -> str: ...  # noqa: N802
    def Completions(self, after: int, timeout_ms: int) -> str: ...  # noqa: N802
    def Logs(self) -> str: ...  # noqa: N802
    def Flush(self, timeout_ms: int) -> bool: ...  # noqa: N802
    def Close(self, timeout_ms: int, wait_ms: int) -> bool: ...  # noqa: N802
    def HeadersWanted(self, timeout_ms: int) -> bool: ...  # noqa: N802
    def SetHeaders(self, headers_json: str, failure: str) -> None: ...  # noqa: N802
    def Stats(self) -> str: ...  # noqa: N802


class NativeModule(Protocol):
    """The functions of the facade package (see bindings/config.go)."""

    def Version(self) -> str: ...  # noqa: N802
    def ParseConfig(self, text: str, env_json: str) -> str: ...  # noqa: N802
    def DefaultConfig(self) -> str: ...  # noqa: N802
    def ValidateConfig(self, config_json: str, custom_headers: bool) -> None: ...  # noqa: N802
    def NewWrapper(self, config_json: str, py_log_level: int, notify: bool) -> NativeWrapper: ...  # noqa: N802
    def NewWrapperWithHeaders(  # noqa: N802
        self, config_json: str, py_log_level: int, notify: bool
    ) -> NativeWrapper: ...
    def SetOTelEnvironment(self, env_json: str) -> None: ...  # noqa: N802


class _Loaded:
    module: Any = None
    go: Any = None
    pid: int = 0  # the process that loaded the engine


FORK_MESSAGE = (
    "the pyzerobus engine was loaded before this process was forked, and the Go runtime "
    "does not survive fork (any call would hang): create wrappers only in the child, "
    "start worker processes with the 'spawn' or 'forkserver' method "
    "(multiprocessing.get_context('spawn')), or load pyzerobus after forking "
    "(gunicorn without --preload, Celery with a non-prefork pool)"
)


def forked() -> bool:
    """Whether the engine was loaded by a parent of this (forked) process."""
    return bool(_Loaded.pid) and _Loaded.pid != os.getpid()


def check_process() -> None:
    """Raise :class:`ZerobusError` if the engine was loaded by a parent of this forked process."""
    if forked():
        raise ZerobusError(FORK_MESSAGE, kind="internal", op="fork")


def native() -> NativeModule:
    """The engine module, imported on first use.

    Raises :class:`ZerobusError` in a process forked after the engine was
    loaded (the Go runtime does not survive fork).
    """
    check_process()
    if _Loaded.module is None:
        try:
            _Loaded.module = importlib.import_module("pyzerobus._native.bindings")
            _Loaded.go = importlib.import_module("pyzerobus._native.go")
            _Loaded.pid = os.getpid()
        except ImportError as exc:  # pragma: no cover - only a broken install gets here
            raise ImportError(
                "the pyzerobus engine module is missing: install pyzerobus with pip "
                "(building from source needs Go), or run `make py-build` in a source tree"
            ) from exc
    return cast(NativeModule, _Loaded.module)


def go_bytes(data: bytes) -> Any:
    """A Go []byte holding a copy of data (the fast path: about 1 GB/s)."""
    native()
    return _Loaded.go.Slice_byte.from_bytes(data)


#: The prefix of the engine's error messages (a JSON object follows).
NATIVE_ERROR_PREFIX = "zerobus-error:"

#: Names of the engine's settings that the Python configuration spells differently.
_SETTING_NAMES = {"zerobus_endpoint": "endpoint"}


def error_from_info(info: dict[str, Any]) -> ZerobusError:
    """Build the exception of an engine error given as its JSON object."""
    kind = str(info.get("kind") or "internal")
    cls = BY_KIND.get(kind, ZerobusError)
    kw: dict[str, Any] = {
        "kind": kind,
        "retryable": bool(info.get("retryable")),
        "grpc_code": info.get("grpc_code") or None,
        "grpc_message": info.get("grpc_message") or None,
        "op": info.get("op") or None,
    }
    message = str(info.get("message") or kind)
    # An error raised by Python code that produced the input comes back
    # through the Arrow C stream with pyarrow's traceback appended.
    message = message.split(". Detail: Python exception:", 1)[0]
    if cls is ConfigurationError:
        problems = [
            ConfigProblem(_SETTING_NAMES.get(p["setting"], p["setting"]), p["message"])
            for p in info.get("problems") or []
        ]
        if problems:
            message = "invalid configuration: " + "; ".join(str(p) for p in problems)
        return ConfigurationError(message, problems=problems, **kw)
    return cls(message, **kw)


def error_from_native(exc: BaseException) -> ZerobusError:
    """Translate the RuntimeError of a native call into a pyzerobus exception."""
    text = str(exc)
    if text.startswith(NATIVE_ERROR_PREFIX):
        try:
            info = json.loads(text[len(NATIVE_ERROR_PREFIX) :])
        except ValueError:
            info = {"kind": "internal", "message": text}
        return error_from_info(info)
    return ZerobusError(f"unexpected engine error: {text}")


def decode_result(data: dict[str, Any], offset: Optional[int] = None) -> TransmissionResult:
    """Build a result from the engine's JSON (bindings/operation.go resultJSON).

    Each error of the result (the summary, the input error, those of the
    failed rows) carries the result as its ``result``.
    """
    errors = [error_from_info(e) for e in data["errors"]]
    runs = _Runs(data["failed"], errors)
    summary = error_from_info(data["error"]) if data.get("error") else None
    input_error = error_from_info(data["input_error"]) if data.get("input_error") else None
    total = int(data["total_rows"])
    res = TransmissionResult(
        success=bool(data["success"]),
        total_rows=total,
        successful_count=int(data["successful_count"]),
        failed_count=int(data["failed_count"]),
        attempts=int(data["attempts"]),
        latency_ms=float(data["latency_s"]) * 1000.0,
        batch_size_bytes=int(data["batch_size_bytes"]),
        error=summary,
        failed_rows=FailedRows(runs),
        successful_rows=SuccessfulRows(total, runs),
        offset=offset,
        batches=int(data.get("batches", 0)),
        cancelled=bool(data.get("cancelled")),
        input_error=input_error,
    )
    # The errors and their result refer to each other: the errors are
    # complete once the result exists.
    for e in [*errors, summary, input_error]:
        if e is not None:
            e.result = res
            e.results = [res]
    return res


def take_result(handle: NativeWrapper, op: int, offset: Optional[int] = None) -> TransmissionResult:
    """The result of a finished operation (the engine forgets the operation)."""
    return decode_result(call_json(handle.Result, op), offset)


def call(fn: Callable[..., T], *args: Any) -> T:
    """Call a native function, raising pyzerobus exceptions for its errors."""
    check_process()
    try:
        return fn(*args)
    except RuntimeError as exc:
        raise error_from_native(exc) from None


def call_json(fn: Callable[..., str], *args: Any) -> Any:
    """Call a native function that returns JSON text and decode it."""
    return json.loads(call(fn, *args))


__all__ = [
    "NativeModule",
    "NativeWrapper",
    "call",
    "call_json",
    "check_process",
    "decode_result",
    "error_from_info",
    "error_from_native",
    "forked",
    "go_bytes",
    "native",
    "take_result",
]
