"""Turn what users hand us into an Arrow C stream (zero-copy) or IPC bytes."""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import pyarrow as pa

from .errors import ConversionError

__all__ = ["Source", "to_source"]

_STREAM_CAPSULE = b"arrow_array_stream"

_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_is_valid.restype = ctypes.c_int
_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_PyCapsuleType = type(pa.table({"x": [1]}).__arrow_c_stream__())

# Readers already handed to the engine: a reader is read once, and a second
# send would otherwise be a silent success of 0 rows.
_sent_readers: weakref.WeakSet[pa.RecordBatchReader] = weakref.WeakSet()


@dataclass
class Source:
    """One input, ready to hand to the engine.

    ``capsule`` (an ``arrow_array_stream`` PyCapsule) or ``ipc`` (bytes) is
    set. ``total_rows`` is known for in-memory data, None for streams.
    """

    capsule: Any = None
    ipc: Optional[bytes] = None
    total_rows: Optional[int] = None

    def stream_address(self) -> int:
        """The address of the capsule's ArrowArrayStream struct."""
        return int(_get_pointer(self.capsule, _STREAM_CAPSULE))


def _module_of(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def _validate(data: Any, what: str) -> None:
    """Check a pyarrow Table or RecordBatch's buffers before they cross into the engine.

    The Arrow C data interface carries no buffer lengths: the engine can only
    trust offsets (a string column's last offset says how long its data
    buffer is). pyarrow knows the lengths, and its cheap validation (O(1) per
    column and chunk, no data scan) catches offsets that point past a buffer,
    which would otherwise be read out of bounds.
    """
    try:
        data.validate()
    except pa.ArrowInvalid as exc:
        raise ConversionError(f"invalid Arrow data in {what}: {exc}", op="validate input") from None


def _validated_batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """The reader's batches, each validated (see :func:`_validate`) as the engine pulls it."""
    for i, batch in enumerate(reader):
        _validate(batch, f"batch {i} of the RecordBatchReader")
        yield batch


def _reader_source(reader: pa.RecordBatchReader) -> Source:
    if reader in _sent_readers:
        raise ConversionError(
            "this RecordBatchReader was already sent and is exhausted (a reader is read once): "
            "send a new reader, or a Table",
            op="read input",
        )
    _sent_readers.add(reader)
    checked = pa.RecordBatchReader.from_batches(reader.schema, _validated_batches(reader))
    return Source(capsule=checked.__arrow_c_stream__())


def to_source(data: Any) -> Source:
    """Describe ``data`` for the engine, without copying Arrow data.

    Accepted: pyarrow Table, RecordBatch and RecordBatchReader; pandas and
    polars DataFrames; any object with ``__arrow_c_stream__`` (read batch by
    batch, never all at once) or, failing that, ``__arrow_c_array__`` (a
    struct array: one batch); an ``arrow_array_stream`` PyCapsule; Arrow IPC
    bytes (stream or file format) as bytes, bytearray or memoryview.

    pyarrow Tables, RecordBatches and RecordBatchReaders are validated
    cheaply on the way (offsets against buffer lengths: :func:`_validate`);
    other producers' C streams carry no buffer lengths and must hand over
    valid arrays, since the engine cannot check offsets against memory it
    was not told the size of.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return Source(ipc=bytes(data))
    if isinstance(data, pa.RecordBatch):
        _validate(data, "the RecordBatch")
        table = pa.Table.from_batches([data])
        return Source(capsule=table.__arrow_c_stream__(), total_rows=data.num_rows)
    if isinstance(data, pa.Table):
        _validate(data, "the Table")
        return Source(capsule=data.__arrow_c_stream__(), total_rows=data.num_rows)
    if isinstance(data, pa.RecordBatchReader):
        return _reader_source(data)
    if isinstance(data, _PyCapsuleType):
        if not _is_valid(data, _STREAM_CAPSULE):
            raise ConversionError("the PyCapsule is not an Arrow C stream (arrow_array_stream)")
        return Source(capsule=data)
    total: Optional[int] = None
    module = _module_of(data)
    if module in ("pandas", "polars") and type(data).__name__ == "DataFrame":
        total = len(data)
        if module == "pandas" and not hasattr(data, "__arrow_c_stream__"):  # pandas < 2.2
            table = pa.Table.from_pandas(data, preserve_index=False)
            return Source(capsule=table.__arrow_c_stream__(), total_rows=total)
    if hasattr(data, "__arrow_c_stream__"):
        try:
            capsule = data.__arrow_c_stream__()
        except Exception as exc:
            raise ConversionError(f"{type(data).__name__}.__arrow_c_stream__() failed: {exc}") from exc
        if not (isinstance(capsule, _PyCapsuleType) and _is_valid(capsule, _STREAM_CAPSULE)):
            raise ConversionError(
                f"{type(data).__name__}.__arrow_c_stream__() did not return an arrow_array_stream PyCapsule"
            )
        return Source(capsule=capsule, total_rows=total)
    if hasattr(data, "__arrow_c_array__"):
        try:
            batch = pa.record_batch(data)
        except Exception as exc:
            raise ConversionError(f"cannot read {type(data).__name__} as a record batch: {exc}") from exc
        return to_source(batch)
    raise ConversionError(
        f"cannot send a {type(data).__module__}.{type(data).__qualname__}: expected a pyarrow Table, "
        "RecordBatch or RecordBatchReader, a pandas or polars DataFrame, an object with "
        "__arrow_c_stream__, or Arrow IPC bytes"
    )
