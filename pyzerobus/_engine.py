"""Typed access to the gopy-built engine module (``pyzerobus._native``).

The generated module is untyped and raises RuntimeError for every Go error;
this module gives it a typed surface (:class:`NativeModule`,
:class:`NativeWrapper`) and :func:`call`, which turns those RuntimeErrors
into pyzerobus exceptions.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Callable, Protocol, TypeVar, cast

from .errors import ZerobusError, error_from_native

T = TypeVar("T")


class NativeWrapper(Protocol):
    """The methods of the facade's ``Wrapper`` handle (see bindings/wrapper.go)."""

    def SendStream(self, addr: int) -> int: ...  # noqa: N802
    def SendIPC(self, data: Any) -> int: ...  # noqa: N802
    def Wait(self, op: int, timeout_ms: int) -> bool: ...  # noqa: N802
    def Progress(self, op: int) -> int: ...  # noqa: N802
    def Cancel(self, op: int) -> bool: ...  # noqa: N802
    def Result(self, op: int) -> str: ...  # noqa: N802
    def Completions(self, after: int, timeout_ms: int) -> str: ...  # noqa: N802
    def Logs(self) -> str: ...  # noqa: N802
    def Flush(self, timeout_ms: int) -> bool: ...  # noqa: N802
    def Close(self, timeout_ms: int, wait_ms: int) -> bool: ...  # noqa: N802
    def Stats(self) -> str: ...  # noqa: N802


class NativeModule(Protocol):
    """The functions of the facade package (see bindings/config.go)."""

    def Version(self) -> str: ...  # noqa: N802
    def ParseConfig(self, text: str, env_json: str) -> str: ...  # noqa: N802
    def DefaultConfig(self) -> str: ...  # noqa: N802
    def ValidateConfig(self, config_json: str) -> None: ...  # noqa: N802
    def NewWrapper(self, config_json: str, py_log_level: int, notify: bool) -> NativeWrapper: ...  # noqa: N802
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
    "forked",
    "go_bytes",
    "native",
]
