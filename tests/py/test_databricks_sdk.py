"""Databricks' own Python SDK ingests into zerobus-local: proof that the wire is right."""

from __future__ import annotations

import deltalake
import pyarrow.parquet as pq
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from conftest import LocalServer

TABLE = "main.conformance.events_py"
ROWS = 10_000


def event_message_class():
    """A protobuf message class built at run time, as a user's generated code would be."""
    fdp = descriptor_pb2.FileDescriptorProto(name="event.proto", package="conf", syntax="proto2")
    msg = fdp.message_type.add(name="Event")
    opt = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    rep = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    types = descriptor_pb2.FieldDescriptorProto
    for number, (name, ftype, label) in enumerate(
        [
            ("id", types.TYPE_INT64, opt),
            ("name", types.TYPE_STRING, opt),
            ("score", types.TYPE_DOUBLE, opt),
            ("active", types.TYPE_BOOL, opt),
            ("tags", types.TYPE_STRING, rep),
        ],
        start=1,
    ):
        msg.field.add(name=name, number=number, type=ftype, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("conf.Event"))


def expected_row(i: int) -> dict:
    return {
        "id": i,
        "name": f"event-{i}" if i % 7 else None,
        "score": i * 0.5,
        "active": i % 2 == 0,
        "tags": [f"t{i % 3}", "x"] if i % 5 else [],
    }


def test_databricks_python_sdk_ingests_into_local_server(local_server: LocalServer) -> None:
    from zerobus import TableProperties
    from zerobus.sdk.sync import ZerobusSdk

    event_cls = event_message_class()
    records = []
    for i in range(ROWS):
        row = expected_row(i)
        m = event_cls(id=row["id"], score=row["score"], active=row["active"], tags=row["tags"])
        if row["name"] is not None:
            m.name = row["name"]
        records.append(m.SerializeToString())

    sdk = ZerobusSdk(local_server.endpoint, local_server.workspace_url)
    stream = sdk.create_stream(
        local_server.client_id,
        local_server.client_secret,
        TableProperties(TABLE, event_cls.DESCRIPTOR),
    )
    last = None
    for start in range(0, ROWS, 1000):
        last = stream.ingest_records_offset(records[start : start + 1000])
    stream.flush()
    stream.wait_for_offset(last)
    stream.close()

    # A graceful stop materializes every durable record into the Delta table.
    assert local_server.stop() == 0

    table_dir = local_server.table_dir(TABLE)
    got = deltalake.DeltaTable(str(table_dir)).to_pyarrow_table().sort_by("id").to_pylist()
    assert len(got) == ROWS
    assert got == [expected_row(i) for i in range(ROWS)]

    # The same rows through plain Parquet: the files are ordinary Parquet.
    files = sorted(table_dir.glob("*.parquet"))
    assert files
    assert sum(pq.read_metadata(f).num_rows for f in files) == ROWS
