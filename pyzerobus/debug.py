"""Read the engine's debug files as pyarrow Tables.

With ``debug_arrow_enabled`` / ``debug_protobuf_enabled`` (or ``debug_enabled``
for both), the engine writes, under ``<debug_output_dir>/zerobus``:

- ``arrow/<table>.arrows``: the input batches, as Arrow IPC streams;
- ``proto/<table>.pb``: the encoded records, each prefixed with its length as
  a varint;
- ``descriptors/<table>.desc``: the record descriptor, a ``FileDescriptorSet``.

Full files are rotated to ``<table>.<UTC time>.<sequence>.<ext>`` (for example
``events.20261127T101500.123Z.000042.arrows``). :func:`read_arrow` and
:func:`read_protobuf` read every file of a table, rotated ones first, oldest
first, and return one pyarrow Table, which DuckDB queries directly::

    import duckdb
    from pyzerobus.debug import read_arrow, read_protobuf

    batches = read_arrow("/tmp/zerobus-debug", "main.app.events")
    records = read_protobuf("/tmp/zerobus-debug", "main.app.events")
    duckdb.sql("SELECT kind, count(*) AS n FROM batches GROUP BY kind ORDER BY kind")

This module needs only pyarrow and protobuf, not the compiled engine.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.ipc
from google.protobuf import (  # type: ignore[import-untyped,unused-ignore]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)
from google.protobuf.descriptor import (  # type: ignore[import-untyped,unused-ignore]
    Descriptor,
    FieldDescriptor,
)
from google.protobuf.message import Message  # type: ignore[import-untyped,unused-ignore]

__all__ = ["file_base", "iter_records", "read_arrow", "read_protobuf"]

PathLike = Union[str, "os.PathLike[str]"]

# The names, as zbwrap/debugfiles makes them: change both together.
_MAX_NAME_LEN = 255
_ROTATED_SUFFIX_LEN = len(".20261127T101500.123Z.000042.arrows~")
_MAX_BASE_LEN = _MAX_NAME_LEN - _ROTATED_SUFFIX_LEN
_HASH_LEN = 16
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_ROTATED_TAIL = re.compile(r"\.[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.[0-9]{6}$")
_STAMP = r"([0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.[0-9]{6})"

_SCALARS: dict[int, pa.DataType] = {
    FieldDescriptor.TYPE_DOUBLE: pa.float64(),
    FieldDescriptor.TYPE_FLOAT: pa.float32(),
    FieldDescriptor.TYPE_INT64: pa.int64(),
    FieldDescriptor.TYPE_SINT64: pa.int64(),
    FieldDescriptor.TYPE_SFIXED64: pa.int64(),
    FieldDescriptor.TYPE_UINT64: pa.uint64(),
    FieldDescriptor.TYPE_FIXED64: pa.uint64(),
    FieldDescriptor.TYPE_INT32: pa.int32(),
    FieldDescriptor.TYPE_SINT32: pa.int32(),
    FieldDescriptor.TYPE_SFIXED32: pa.int32(),
    FieldDescriptor.TYPE_UINT32: pa.uint32(),
    FieldDescriptor.TYPE_FIXED32: pa.uint32(),
    FieldDescriptor.TYPE_BOOL: pa.bool_(),
    FieldDescriptor.TYPE_STRING: pa.string(),
    FieldDescriptor.TYPE_BYTES: pa.binary(),
    FieldDescriptor.TYPE_ENUM: pa.string(),
}


def file_base(table: str) -> str:
    """The stem of the debug file names of ``table``.

    A name of ASCII letters, digits, ``.``, ``_`` and ``-`` (not starting with
    ``.``) that fits is used as it is. Otherwise every other byte of its UTF-8
    form becomes ``_``, it is cut so that rotated names stay within 255
    bytes, and ``-`` plus 16 hex digits of its SHA-256 are appended.

    Raises:
        ValueError: ``table`` is empty.

    """
    if not table:
        raise ValueError("table must not be empty")
    raw = table.encode("utf-8")
    safe = "".join(chr(c) if c in _SAFE else "_" for c in raw)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if safe == table and len(safe) <= _MAX_BASE_LEN and not _ROTATED_TAIL.search(safe):
        return safe
    digest = hashlib.sha256(raw).hexdigest()[:_HASH_LEN]
    return safe[: _MAX_BASE_LEN - 1 - _HASH_LEN] + "-" + digest


def _files(root: Path, sub: str, base: str, ext: str) -> list[tuple[Path, Optional[str]]]:
    """The files of one type, oldest first, each with its rotation stamp (None when active)."""
    directory = root / sub
    pattern = re.compile("^" + re.escape(base) + r"\." + _STAMP + r"\." + re.escape(ext) + "$")
    rotated: list[tuple[Path, Optional[str]]] = []
    if directory.is_dir():
        for name in sorted(os.listdir(directory)):
            m = pattern.match(name)
            if m:
                rotated.append((directory / name, m.group(1)))
    active = directory / f"{base}.{ext}"
    if active.is_file():
        rotated.append((active, None))
    return rotated


def _concat(tables: list[pa.Table], paths: list[Path]) -> pa.Table:
    """Concatenate, filling columns missing from some files with nulls."""
    if all(t.schema.equals(tables[0].schema) for t in tables):
        return pa.concat_tables(tables)
    try:
        return pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        detail = "; ".join(
            f"{p.name}: {t.schema.to_string(show_schema_metadata=False)!r}" for p, t in zip(paths, tables)
        )
        raise ValueError(f"the files have incompatible schemas ({e}); {detail}") from e


def read_arrow(directory: PathLike, table: str) -> pa.Table:
    """Read every Arrow debug file of ``table`` as one Table.

    Args:
        directory: the engine's debug output directory (``debug_output_dir``),
            the one holding ``zerobus/``.
        table: the table name, as configured.

    Returns:
        The input batches of all files, rotated files first, oldest first. A
        file still being written reads up to its last flushed batch. When the
        schema changed between files, the tables are concatenated with
        ``promote_options="default"``: a column missing from some files is
        null in their rows, and a null-typed column takes the other files'
        type.

    Raises:
        FileNotFoundError: there is no Arrow file of ``table``.
        ValueError: the schemas cannot be combined (a column changed type),
            or a file is damaged; the message names the files.

    """
    root = Path(directory) / "zerobus"
    files = [p for p, _ in _files(root, "arrow", file_base(table), "arrows") if p.stat().st_size > 0]
    if not files:
        raise FileNotFoundError(f"no Arrow debug file of table {table!r} in {root / 'arrow'}")
    tables = []
    for path in files:
        try:
            with pyarrow.ipc.open_stream(path) as reader:
                tables.append(reader.read_all())
        except pa.ArrowInvalid as e:
            raise ValueError(f"{path}: not a readable Arrow IPC stream: {e}") from e
    return _concat(tables, files)


def iter_records(data: bytes) -> Iterator[bytes]:
    """Split the content of a ``.pb`` debug file into its records.

    Raises:
        ValueError: the data ends inside a length or a record; the message
            gives the offset.

    """
    pos, end = 0, len(data)
    while pos < end:
        start, length, shift = pos, 0, 0
        while True:
            if pos >= end or shift > 63:
                raise ValueError(f"bad record length at offset {start}")
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        if length > end - pos:
            raise ValueError(
                f"record at offset {start} is {length} bytes long but only {end - pos} bytes are left"
            )
        yield data[pos : pos + length]
        pos += length


class _Decoder:
    """The message class and Arrow schema of one descriptor file."""

    def __init__(self, path: Path) -> None:
        try:
            files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file
            if not files or not files[-1].message_type:
                raise ValueError("no message descriptor in the FileDescriptorSet")
            pool = descriptor_pool.DescriptorPool()
            for f in files:
                pool.Add(f)
            last = files[-1]
            name = (last.package + "." if last.package else "") + last.message_type[0].name
            self.descriptor: Descriptor = pool.FindMessageTypeByName(name)
        except Exception as e:  # the protobuf runtimes raise different types
            raise ValueError(f"{path}: not a usable descriptor set: {e}") from e
        self.message_class: type[Message] = message_factory.GetMessageClass(self.descriptor)
        self.schema = pa.schema(
            [pa.field(f.name, _field_type(f, (self.descriptor.full_name,))) for f in self.descriptor.fields]
        )

    def decode(self, data: bytes, path: Path) -> pa.Table:
        rows = []
        for i, record in enumerate(iter_records(data)):
            msg = self.message_class()
            try:
                msg.ParseFromString(record)
            except Exception as e:  # the protobuf runtimes raise different types
                raise ValueError(f"{path}: record {i} does not decode: {e}") from e
            rows.append(_row(msg))
        return pa.Table.from_pylist(rows, schema=self.schema)


def _is_map(f: FieldDescriptor) -> bool:
    return f.message_type is not None and f.message_type.GetOptions().map_entry


def _field_type(f: FieldDescriptor, path: tuple[str, ...]) -> pa.DataType:
    """The Arrow type of a field: repeated fields are lists, maps are maps."""
    if _is_map(f):
        entry = f.message_type.fields_by_name
        return pa.map_(_value_type(entry["key"], path), _value_type(entry["value"], path))
    t = _value_type(f, path)
    return pa.list_(t) if f.is_repeated else t


def _value_type(f: FieldDescriptor, path: tuple[str, ...]) -> pa.DataType:
    """The Arrow type of one value of a field."""
    m = f.message_type
    if m is None:
        return _SCALARS[f.type]
    if m.full_name in path:
        raise ValueError(f"message {m.full_name} contains itself (field {f.full_name}): no Arrow type")
    inner = (*path, m.full_name)
    return pa.struct([pa.field(g.name, _field_type(g, inner)) for g in m.fields])


def _row(msg: Message) -> dict[str, Any]:
    """A message as a dict pyarrow turns into a struct: absent fields are None."""
    out: dict[str, Any] = {}
    for f in msg.DESCRIPTOR.fields:
        v = getattr(msg, f.name)
        if _is_map(f):
            vf = f.message_type.fields_by_name["value"]
            out[f.name] = [(k, _value(vf, v[k])) for k in sorted(v)]
        elif f.is_repeated:
            out[f.name] = [_value(f, x) for x in v]
        elif f.has_presence and not msg.HasField(f.name):
            out[f.name] = None
        else:
            out[f.name] = _value(f, v)
    return out


def _value(f: FieldDescriptor, v: Any) -> Any:
    if f.message_type is not None:
        return _row(v)
    if f.type == FieldDescriptor.TYPE_ENUM:
        ev = f.enum_type.values_by_number.get(v)
        return ev.name if ev is not None else str(v)
    return v


def read_protobuf(directory: PathLike, table: str) -> pa.Table:
    """Read and decode every protobuf debug file of ``table`` as one Table.

    Each record is decoded with the descriptor it was written with (the
    rotated file's own descriptor set if present, else
    ``descriptors/<table>.desc``) through protobuf's ``message_factory``.

    Args:
        directory: the engine's debug output directory (``debug_output_dir``).
        table: the table name, as configured.

    Returns:
        One row per record, rotated files first, oldest first; one column per
        field of the record message, in field order. Absent fields are null;
        messages are structs, repeated fields lists, maps pyarrow maps (entries
        in key order), enums their value names, ``bytes`` binary. When the
        descriptor changed between files, the tables are concatenated as in
        :func:`read_arrow`.

    Raises:
        FileNotFoundError: there is no protobuf file of ``table``, or no
            descriptor file for one.
        ValueError: a file is damaged (the message gives the file, the offset
            or record number) or the schemas cannot be combined.

    """
    root = Path(directory) / "zerobus"
    base = file_base(table)
    files = _files(root, "proto", base, "pb")
    if not files:
        raise FileNotFoundError(f"no protobuf debug file of table {table!r} in {root / 'proto'}")
    decoders: dict[bytes, _Decoder] = {}
    tables, paths = [], []
    for path, stamp in files:
        desc = root / "descriptors" / f"{base}.{stamp}.desc" if stamp else None
        if desc is None or not desc.is_file():
            desc = root / "descriptors" / f"{base}.desc"
        if not desc.is_file():
            raise FileNotFoundError(f"no descriptor file for {path} (looked for {desc})")
        key = desc.read_bytes()
        decoder = decoders.get(key)
        if decoder is None:
            decoder = decoders[key] = _Decoder(desc)
        tables.append(decoder.decode(path.read_bytes(), path))
        paths.append(path)
    return _concat(tables, paths)
