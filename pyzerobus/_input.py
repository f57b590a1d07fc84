"""Turn what users hand us into an Arrow C stream (zero-copy) or IPC bytes."""

from __future__ import annotations

import ctypes
import datetime
import itertools
import os
import re
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union

import pyarrow as pa

from .errors import ConversionError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ArrowArrayExportable", "ArrowStreamExportable", "SendInput", "Source", "to_source"]

_STREAM_CAPSULE = b"arrow_array_stream"

_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_is_valid.restype = ctypes.c_int
_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
# The PyCapsule type, from a capsule the standard library always has (building
# a pyarrow table here would import pandas, a third of a second).
_PyCapsuleType = type(datetime.datetime_CAPI)

# Readers already handed to the engine: a reader is read once, and a second
# send would otherwise be a silent success of 0 rows.
_sent_readers: weakref.WeakSet[pa.RecordBatchReader] = weakref.WeakSet()

# pyarrow's names for index levels that had no name of their own.
_UNNAMED_INDEX = re.compile(r"__index_level_\d+__")

# Leading bytes of the file formats read from paths.
_PARQUET_MAGIC = b"PAR1"
_IPC_FILE_MAGIC = b"ARROW1"
_IPC_STREAM_MAGIC = b"\xff\xff\xff\xff"


class ArrowStreamExportable(Protocol):
    """Any object of the Arrow PyCapsule interface that exports a stream (``__arrow_c_stream__``)."""

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...


class ArrowArrayExportable(Protocol):
    """Any object of the Arrow PyCapsule interface that exports one struct array (``__arrow_c_array__``)."""

    def __arrow_c_array__(self, requested_schema: Optional[object] = None) -> tuple[object, object]: ...


#: What ``send_batch`` accepts (see :func:`to_source`).
SendInput = Union[
    ArrowStreamExportable,
    ArrowArrayExportable,
    "pd.DataFrame",
    Iterable[Union[pa.RecordBatch, pa.Table]],
    bytes,
    bytearray,
    memoryview,
    str,
    "os.PathLike[str]",
    Sequence[Union[str, "os.PathLike[str]"]],
]


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


def _validated_batches(batches: Iterable[pa.RecordBatch], what: str) -> Iterator[pa.RecordBatch]:
    """The batches, each validated (see :func:`_validate`) as the engine pulls it."""
    for i, batch in enumerate(batches):
        _validate(batch, f"batch {i} of {what}")
        yield batch


def _stream_of(schema: pa.Schema, batches: Iterable[pa.RecordBatch], what: str) -> Source:
    """A C stream over pyarrow batches, validated one by one as the engine reads them."""
    reader = pa.RecordBatchReader.from_batches(schema, _validated_batches(batches, what))
    return Source(capsule=reader.__arrow_c_stream__())


def _reader_source(reader: pa.RecordBatchReader) -> Source:
    if reader in _sent_readers:
        raise ConversionError(
            "this RecordBatchReader was already sent and is exhausted (a reader is read once): "
            "send a new reader, or a Table",
            op="read input",
        )
    _sent_readers.add(reader)
    return _stream_of(reader.schema, reader, "the RecordBatchReader")


def _pandas_source(df: pd.DataFrame) -> Source:
    """A pandas DataFrame, converted by pyarrow (as pandas' own ``__arrow_c_stream__`` does).

    Named index levels become columns; unnamed ones (a RangeIndex or any
    other) are left out, whatever the pandas version.
    """
    table = pa.Table.from_pandas(df, preserve_index=None)
    unnamed = [n for n in table.column_names if _UNNAMED_INDEX.fullmatch(n)]
    if unnamed:
        table = table.drop_columns(unnamed)
    return Source(capsule=table.__arrow_c_stream__(), total_rows=len(df))


def _polars_lazy_source(lf: Any) -> Source:
    """A polars LazyFrame, run by polars' streaming engine and read chunk by chunk."""
    schema = lf.head(0).collect().to_arrow().schema
    chunks: Iterable[Any] = lf.collect_batches() if hasattr(lf, "collect_batches") else [lf.collect()]

    def batches() -> Iterator[pa.RecordBatch]:
        for df in chunks:
            yield from df.to_arrow().cast(schema).to_batches()

    return _stream_of(schema, batches(), "the LazyFrame")


def _dataset_source(data: Any) -> Source:
    """A pyarrow.dataset Dataset or Scanner, read batch by batch."""
    reader = data.to_reader() if hasattr(data, "to_reader") else data.scanner().to_reader()
    return _stream_of(reader.schema, reader, type(data).__name__)


def _file_batches(path: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and batches of one Parquet or Arrow IPC (file or stream) file."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_PARQUET_MAGIC):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        return pf.schema_arrow, pf.iter_batches()
    if head.startswith(_IPC_FILE_MAGIC):
        rf = pa.ipc.open_file(pa.memory_map(path))
        return rf.schema, (rf.get_batch(i) for i in range(rf.num_record_batches))
    if head.startswith(_IPC_STREAM_MAGIC):
        rs = pa.ipc.open_stream(pa.memory_map(path))
        return rs.schema, iter(rs)
    raise ConversionError(f"{path}: not a Parquet or Arrow IPC file", op="read input")


def _expand(paths: Sequence[Union[str, os.PathLike[str]]]) -> list[str]:
    """Files in order: a directory stands for its files (not hidden), sorted by name."""
    out: list[str] = []
    for p in (os.fspath(x) for x in paths):
        if os.path.isdir(p):
            out.extend(os.path.join(p, n) for n in sorted(os.listdir(p)) if not n.startswith((".", "_")))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise ConversionError(f"{p}: no such file or directory", op="read input")
    if not out:
        raise ConversionError("no files to send", op="read input")
    return out


def _files_source(paths: Sequence[Union[str, os.PathLike[str]]]) -> Source:
    """Parquet and Arrow IPC files, read batch by batch in order; they must share one schema."""
    files = _expand(paths)
    schema, first = _file_batches(files[0])

    def batches() -> Iterator[pa.RecordBatch]:
        yield from first
        for path in files[1:]:
            other, rest = _file_batches(path)
            if not other.equals(schema):
                raise ConversionError(
                    f"{path} has another schema than {files[0]}: {other} vs {schema}", op="read input"
                )
            yield from rest

    return _stream_of(schema, batches(), f"{len(files)} file(s)")


def _iterable_source(items: Iterable[Any]) -> Source:
    """An iterable of RecordBatches (or Tables), pulled lazily; they must share one schema."""
    it = iter(items)
    try:
        first = next(it)
    except StopIteration:
        raise ConversionError(
            "the iterable yielded no RecordBatch: nothing to send", op="read input"
        ) from None

    def batches() -> Iterator[pa.RecordBatch]:
        for item in itertools.chain([first], it):
            if isinstance(item, pa.Table):
                yield from item.to_batches()
            elif isinstance(item, pa.RecordBatch):
                yield item
            else:
                raise ConversionError(
                    f"the iterable yielded a {type(item).__qualname__}: expected pyarrow RecordBatches",
                    op="read input",
                )

    if not isinstance(first, (pa.RecordBatch, pa.Table)):
        raise ConversionError(
            f"the iterable yielded a {type(first).__qualname__}: expected pyarrow RecordBatches",
            op="read input",
        )
    return _stream_of(first.schema, batches(), "the iterable")


def to_source(data: Any) -> Source:
    """Describe ``data`` for the engine, without copying Arrow data.

    Accepted: pyarrow Table, RecordBatch and RecordBatchReader; pandas
    DataFrames (named index levels become columns); polars DataFrames and
    LazyFrames (a LazyFrame runs on polars' streaming engine and is sent
    chunk by chunk); ``pyarrow.dataset`` Datasets and Scanners; any object
    with ``__arrow_c_stream__`` (read batch by batch, never all at once) or,
    failing that, ``__arrow_c_array__`` (a struct array: one batch); an
    ``arrow_array_stream`` PyCapsule; Arrow IPC bytes (stream or file
    format) as bytes, bytearray or memoryview; a path, or a list of paths, of
    Parquet or Arrow IPC files (a directory stands for its files), read
    batch by batch; any other iterable of RecordBatches, pulled as the
    engine needs them.

    pyarrow data is validated cheaply on the way (offsets against buffer
    lengths: :func:`_validate`); other producers' C streams carry no buffer
    lengths and must hand over valid arrays, since the engine cannot check
    offsets against memory it was not told the size of.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return Source(ipc=bytes(data))
    if isinstance(data, (str, os.PathLike)):
        return _files_source([data])
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
    module, name = _module_of(data), type(data).__name__
    if module == "pandas" and name == "DataFrame":
        return _pandas_source(data)
    if module == "polars" and name == "LazyFrame":
        return _polars_lazy_source(data)
    if module == "pyarrow" and name in ("FileSystemDataset", "UnionDataset", "InMemoryDataset", "Scanner"):
        return _dataset_source(data)
    total: Optional[int] = len(data) if module == "polars" and name == "DataFrame" else None
    if hasattr(data, "__arrow_c_stream__"):
        try:
            capsule = data.__arrow_c_stream__()
        except Exception as exc:
            raise ConversionError(f"{name}.__arrow_c_stream__() failed: {exc}") from exc
        if not (isinstance(capsule, _PyCapsuleType) and _is_valid(capsule, _STREAM_CAPSULE)):
            raise ConversionError(
                f"{name}.__arrow_c_stream__() did not return an arrow_array_stream PyCapsule"
            )
        return Source(capsule=capsule, total_rows=total)
    if hasattr(data, "__arrow_c_array__"):
        try:
            batch = pa.record_batch(data)
        except Exception as exc:
            raise ConversionError(f"cannot read {name} as a record batch: {exc}") from exc
        return to_source(batch)
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data):
        return _files_source(data)
    if isinstance(data, Iterable) and not isinstance(data, (dict, set, frozenset)):
        return _iterable_source(data)
    raise ConversionError(
        f"cannot send a {type(data).__module__}.{type(data).__qualname__}: expected a pyarrow Table, "
        "RecordBatch or RecordBatchReader, a pandas or polars DataFrame, a polars LazyFrame, a "
        "pyarrow Dataset or Scanner, an object with __arrow_c_stream__, Arrow IPC bytes, a path or "
        "list of paths of Parquet or Arrow IPC files, or an iterable of RecordBatches"
    )
