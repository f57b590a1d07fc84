"""The exceptions of pyzerobus: one tree, rooted at :class:`ZerobusError`.

Every exception carries what the engine knew about the failure: its
``kind``, whether trying again may succeed (``retryable``), the gRPC status
when the server sent one (``grpc_code``, ``grpc_message``), the operation
(``op``), and for sends the :class:`~pyzerobus.TransmissionResult` of the
batch (``result``), which says exactly which rows failed.

========================  ==============================================
kind                      exception
========================  ==============================================
configuration             :class:`ConfigurationError`
authentication            :class:`AuthenticationError`
connection                :class:`ConnectionError` (also builtin)
conversion                :class:`ConversionError`
transmission              :class:`TransmissionError`
retry_exhausted           :class:`RetryExhausted`
token_refresh             :class:`TokenRefreshError`
internal                  :class:`ZerobusError`
========================  ==============================================
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

# Annotations only: at run time this module imports nothing of the package.
if TYPE_CHECKING:  # pragma: no cover
    from .result import TransmissionResult

__all__ = [
    "AuthenticationError",
    "ConfigProblem",
    "ConfigurationError",
    "ConnectionError",
    "ConversionError",
    "RetryExhausted",
    "TokenRefreshError",
    "TransmissionError",
    "ZerobusError",
]


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid setting: its name (the keyword of WrapperConfiguration) and what is wrong."""

    setting: str
    message: str

    def __str__(self) -> str:
        """Return ``setting: message``."""
        return f"{self.setting}: {self.message}"


class ZerobusError(Exception):
    """Base class of every pyzerobus error.

    Attributes:
        kind: the engine's classification (see the module documentation).
        message: what happened.
        retryable: whether the same operation may succeed if tried again.
        grpc_code: the gRPC status code name (``"Unavailable"``...), or None.
        grpc_message: the gRPC status message, or None.
        op: what was being done (``"send"``, ``"open stream"``, ...), or None.
        result: the result of the batch this error reports, or None.
        results: for waits that cover several batches, all their results.

    """

    default_kind: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        kind: Optional[str] = None,
        retryable: bool = False,
        grpc_code: Optional[str] = None,
        grpc_message: Optional[str] = None,
        op: Optional[str] = None,
        result: Optional[TransmissionResult] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind or self.default_kind
        self.retryable = retryable
        self.grpc_code = grpc_code
        self.grpc_message = grpc_message
        self.op = op
        self.result = result
        self.results: list[TransmissionResult] = [result] if result is not None else []

    def __str__(self) -> str:
        """Return the message, with the gRPC code when there is one."""
        if self.grpc_code and self.grpc_code not in self.message:
            return f"{self.message} (gRPC {self.grpc_code})"
        return self.message

    def __repr__(self) -> str:
        """Return e.g. ``ConnectionError(kind='connection', retryable=True, message='...')``."""
        parts = [f"kind={self.kind!r}", f"retryable={self.retryable}"]
        if self.grpc_code:
            parts.append(f"grpc_code={self.grpc_code!r}")
        parts.append(f"message={self.message!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __reduce__(self) -> Any:
        """Pickle with every attribute (exceptions cross process pools)."""
        state = dict(self.__dict__)
        return (_rebuild, (type(self), self.message), state)


def _rebuild(cls: type[ZerobusError], message: str) -> ZerobusError:
    return cls.__new__(cls, message)


class ConfigurationError(ZerobusError):
    """A setting is missing or invalid, or the table does not exist.

    ``problems`` lists every invalid setting when the configuration was
    checked (:meth:`WrapperConfiguration.validate`, or creating a wrapper).
    """

    default_kind = "configuration"

    def __init__(self, message: str, *, problems: Optional[list[ConfigProblem]] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.problems: list[ConfigProblem] = list(problems or [])


class AuthenticationError(ZerobusError):
    """The credentials were refused (token endpoint, or the stream itself)."""

    default_kind = "authentication"


class ConnectionError(ZerobusError, builtins.ConnectionError):
    """The stream could not be opened or broke (and recovery was off)."""

    default_kind = "connection"


class ConversionError(ZerobusError):
    """Input that cannot be sent.

    An unsupported object, a released Arrow stream, corrupted IPC bytes, an
    unsupported Arrow type, or rows the encoder rejected.
    """

    default_kind = "conversion"


class TransmissionError(ZerobusError):
    """The server rejected the data, the wrapper was closed, or a wait timed out or was cancelled."""

    default_kind = "transmission"


class RetryExhausted(ZerobusError):  # noqa: N818 - the specified name
    """The engine reconnected ``retry_max_attempts`` times in a row and gave up."""

    default_kind = "retry_exhausted"


class TokenRefreshError(ZerobusError):
    """An OAuth token could not be renewed after one had been obtained."""

    default_kind = "token_refresh"


#: The exception class of each engine error kind (anything else: :class:`ZerobusError`).
BY_KIND: dict[str, type[ZerobusError]] = {
    cls.default_kind: cls
    for cls in (
        ConfigurationError,
        AuthenticationError,
        ConnectionError,
        ConversionError,
        TransmissionError,
        RetryExhausted,
        TokenRefreshError,
    )
}
