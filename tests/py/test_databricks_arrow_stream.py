"""Databricks' own Python SDK streams Arrow (Flight DoPut) into zerobus-local: the wire is right."""

from __future__ import annotations

import json
import urllib.request

import deltalake
import pyarrow as pa
import pytest

from conftest import LocalServer

ROWS = 10_000

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("active", pa.bool_()),
        pa.field("day", pa.date32()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("tags", pa.list_(pa.string())),
    ]
)


def expected_row(i: int) -> dict:
    import datetime as dt

    return {
        "id": i,
        "name": f"event-{i}" if i % 7 else None,
        "score": i * 0.5,
        "active": i % 2 == 0,
        "day": dt.date(2024, 1, 1) + dt.timedelta(days=i % 366),
        "ts": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=i * 1_234_567),
        "tags": [f"t{i % 3}", "x"] if i % 5 else [],
    }


def batch(start: int, stop: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([expected_row(i) for i in range(start, stop)], schema=SCHEMA)


def stats(server: LocalServer) -> dict:
    with urllib.request.urlopen(server.workspace_url + "/stats") as resp:
        return json.load(resp)


@pytest.mark.parametrize("compression", ["NONE", "LZ4_FRAME", "ZSTD"])
def test_databricks_arrow_stream_ingests_into_local_server(
    local_server: LocalServer, compression: str
) -> None:
    from zerobus import ArrowStreamConfigurationOptions, IPCCompression
    from zerobus.sdk.sync import ZerobusSdk

    table = f"main.conformance.arrow_{compression.lower()}"
    options = ArrowStreamConfigurationOptions()
    options.ipc_compression = getattr(IPCCompression, compression)

    sdk = ZerobusSdk(local_server.endpoint, local_server.workspace_url)
    stream = sdk.create_arrow_stream(
        table, SCHEMA, local_server.client_id, local_server.client_secret, options
    )
    last = None
    for start in range(0, ROWS, 1000):
        last = stream.ingest_batch(batch(start, start + 1000))
    stream.flush()
    stream.wait_for_offset(last)
    stream.close()

    st = stats(local_server)
    assert st["tables"][table]["records_acked"] == ROWS
    assert [s["transport"] for s in st["streams"]] == ["arrow"]

    # A graceful stop materializes every durable record into the Delta table.
    assert local_server.stop() == 0

    got = (
        deltalake.DeltaTable(str(local_server.table_dir(table))).to_pyarrow_table().sort_by("id").to_pylist()
    )
    assert len(got) == ROWS
    assert got == [expected_row(i) for i in range(ROWS)]


def test_databricks_arrow_stream_schema_mismatch(local_server: LocalServer) -> None:
    from zerobus.sdk.sync import ZerobusSdk

    table = "main.conformance.arrow_mismatch"
    sdk = ZerobusSdk(local_server.endpoint, local_server.workspace_url)
    stream = sdk.create_arrow_stream(table, SCHEMA, local_server.client_id, local_server.client_secret)
    stream.ingest_batch(batch(0, 10))
    stream.flush()
    stream.close()

    wrong = pa.schema([pa.field("id", pa.string(), nullable=False)])
    with pytest.raises(Exception, match="column id"):
        sdk.create_arrow_stream(table, wrong, local_server.client_id, local_server.client_secret)
