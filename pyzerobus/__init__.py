"""pyzerobus: stream Apache Arrow data into Databricks Zerobus Ingest (Delta tables).

Hand a pyarrow Table, RecordBatch or RecordBatchReader, a pandas or polars
DataFrame, any object with ``__arrow_c_stream__``, or Arrow IPC bytes to a
:class:`ZerobusWrapper` (or :class:`AsyncZerobusWrapper`); the data crosses
into the Go engine without a copy, is converted to protobuf records and
streamed over gRPC; the result says which rows are durable in the table.

Example::

    import pyarrow as pa
    import pyzerobus

    cfg = pyzerobus.WrapperConfiguration(
        endpoint="https://<workspace-id>.zerobus.<region>.cloud.databricks.com",
        unity_catalog_url="https://<workspace>.cloud.databricks.com",
        table_name="main.app.events",
        client_id="...", client_secret="...",
    )
    with pyzerobus.ZerobusWrapper(cfg) as w:
        result = w.send_batch(pa.table({"id": [1, 2, 3]}))
        assert result.success

Logging goes through ``logging.getLogger("pyzerobus")`` (the engine's own
records through ``pyzerobus.engine``).
"""

from __future__ import annotations

import logging

from ._input import ArrowArrayExportable, ArrowStreamExportable, SendInput
from .aio import AsyncZerobusWrapper
from .config import WrapperConfiguration
from .errors import (
    AuthenticationError,
    ConfigProblem,
    ConfigurationError,
    ConnectionError,
    ConversionError,
    RetryExhausted,
    TokenRefreshError,
    TransmissionError,
    ZerobusError,
)
from .result import ErrorStats, FailedRow, TransmissionResult
from .wrapper import ZerobusWrapper

__version__ = "0.1.0"

# A library leaves output to the application: without a handler configured,
# records go nowhere (not to stderr through logging.lastResort).
logging.getLogger("pyzerobus").addHandler(logging.NullHandler())


def engine_version() -> str:
    """The version of the Go engine inside this package."""
    from . import _engine

    return _engine.native().Version()


__all__ = [
    "ArrowArrayExportable",
    "ArrowStreamExportable",
    "AsyncZerobusWrapper",
    "AuthenticationError",
    "ConfigProblem",
    "ConfigurationError",
    "ConnectionError",
    "ConversionError",
    "ErrorStats",
    "FailedRow",
    "RetryExhausted",
    "SendInput",
    "TokenRefreshError",
    "TransmissionError",
    "TransmissionResult",
    "WrapperConfiguration",
    "ZerobusError",
    "ZerobusWrapper",
    "__version__",
    "engine_version",
]
