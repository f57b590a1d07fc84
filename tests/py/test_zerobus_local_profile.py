"""zerobus-local --profile databricks: the real service's ack latency and quotas, with real clients."""

from __future__ import annotations

import json
import pathlib
import shutil
import time
import urllib.request
from collections.abc import Iterator

import deltalake
import pyarrow as pa
import pytest
from test_databricks_sdk import event_message_class, expected_row

import pyzerobus
from conftest import LocalServer, start_server, wrapper_config

TABLE = "main.profile.events_py"
ROWS = 10_000


def stats(server: LocalServer) -> dict:
    """GET /stats of a running server."""
    with urllib.request.urlopen(server.workspace_url + "/stats", timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def databricks_server(tmp_path: pathlib.Path) -> Iterator[LocalServer]:
    """A zerobus-local with the databricks profile and a stream quota of 5,000 records/s (quick to test)."""
    server = start_server(
        tmp_path / "data",
        "--materialize-interval",
        "200ms",
        "--profile",
        "databricks",
        "--stream-quota",
        "records=5000",
    )
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def test_databricks_python_sdk_against_databricks_profile(databricks_server: LocalServer) -> None:
    """Databricks' Python SDK is paced to the stream quota, waits out the ack latency, and every row lands."""
    from zerobus import TableProperties
    from zerobus.sdk.sync import ZerobusSdk

    server = databricks_server
    event_cls = event_message_class()
    records = []
    for i in range(ROWS):
        row = expected_row(i)
        m = event_cls(id=row["id"], score=row["score"], active=row["active"], tags=row["tags"])
        if row["name"] is not None:
            m.name = row["name"]
        records.append(m.SerializeToString())

    sdk = ZerobusSdk(server.endpoint, server.workspace_url)
    stream = sdk.create_stream(
        server.client_id, server.client_secret, TableProperties(TABLE, event_cls.DESCRIPTOR)
    )
    start = time.monotonic()
    last = None
    for first in range(0, ROWS, 1000):
        last = stream.ingest_records_offset(records[first : first + 1000])
    stream.flush()
    stream.wait_for_offset(last)
    elapsed = time.monotonic() - start

    st = stats(server)
    stream.close()
    # 10,000 records at 5,000 records/s (a burst of 0.1 s) take about 2 s.
    assert 1.5 < elapsed < 10, elapsed
    assert st["limits"] == {
        "profile": "databricks",
        "ack_latency": "median=150ms,p95=500ms",
        "stream_bytes_per_sec": 0,
        "stream_records_per_sec": 5000,
        "table_bytes_per_sec": 10_000_000_000,
        "table_records_per_sec": 0,
        "quota_mode": "pace",
    }
    (s,) = st["streams"]
    assert s["table"] == TABLE and s["records_acked"] == ROWS and s["records_received"] == ROWS
    assert s["throttled_seconds"] > 0.5 and s["bytes_received"] > 0
    assert st["tables"][TABLE]["records_acked"] == ROWS and st["tables"][TABLE]["throttled_seconds"] > 0.5

    assert server.stop() == 0
    got = deltalake.DeltaTable(str(server.table_dir(TABLE))).to_pyarrow_table().sort_by("id").to_pylist()
    assert got == [expected_row(i) for i in range(ROWS)]


def test_pyzerobus_paced_by_stream_quota(tmp_path: pathlib.Path) -> None:
    """pyzerobus against a 2,000 records/s stream quota: paced to about that rate, every row lands once."""
    from pyzerobus import ZerobusWrapper

    server = start_server(
        tmp_path / "data",
        "--profile",
        "databricks",
        "--ack-latency",
        "median=20ms,p95=60ms",
        "--stream-quota",
        "records=2000",
    )
    try:
        table = pa.table({"id": pa.array(range(6000), pa.int64()), "name": [f"r{i}" for i in range(6000)]})
        start = time.monotonic()
        with ZerobusWrapper(wrapper_config(server, "main.profile.paced", batch_rows=200)) as w:
            assert w.send_batch(table).successful_count == 6000
        rate = 6000 / (time.monotonic() - start)
        st = stats(server)
        assert 1500 < rate < 2600, rate
        assert sum(s["throttled_seconds"] for s in st["streams"]) > 1
        assert st["records_acked"] >= 6000
        assert server.stop() == 0
        got = deltalake.DeltaTable(str(server.table_dir("main.profile.paced"))).to_pyarrow_table()
        assert sorted(got.column("id").to_pylist()) == list(range(6000))
    finally:
        server.stop()


def test_default_profile_stats_unchanged(local_server: LocalServer) -> None:
    """The default profile sets no limit, and /stats keeps its fields."""
    st = stats(local_server)
    for key in ("streams_opened", "streams_active", "records_received", "records_acked", "records_durable"):
        assert st[key] == 0
    assert st["tables"] == {} and st["streams"] == []
    assert st["limits"]["profile"] == "default" and st["limits"]["ack_latency"] == "0"
    assert st["limits"]["stream_records_per_sec"] == 0 and st["limits"]["table_bytes_per_sec"] == 0


def test_pyzerobus_streams_spread_over_the_stream_quota(databricks_server: LocalServer) -> None:
    """With streams=4 the table takes four streams' quota: the server sees the load on four streams."""
    server = databricks_server
    table = "main.profile.streams_py"
    cfg = wrapper_config(server, table, streams=4, batch_rows=1000, max_concurrent_batches=8)
    data = pa.table({"id": pa.array(range(20_000), pa.int64())})
    with pyzerobus.ZerobusWrapper(cfg) as w:
        res = w.send_batch(data)
        assert res.success and res.successful_count == 20_000
        assert w.stats()["streams"] == 4
    busy = [s for s in stats(server)["streams"] if s["table"] == table and s["records_received"] > 0]
    assert len(busy) == 4, busy
    assert all(s["throttled_seconds"] > 0 for s in busy)  # each at its quota
    server.stop()
    ids = deltalake.DeltaTable(str(server.table_dir(table))).to_pyarrow_table().column("id").to_pylist()
    assert sorted(ids) == list(range(20_000))


def test_pyzerobus_streams_auto_grows_under_the_stream_quota(databricks_server: LocalServer) -> None:
    """streams="auto" opens more streams while one holds more than it can move, up to max_streams."""
    server = databricks_server
    table = "main.profile.auto_py"
    # A small window makes a stream pressed early (half of it in flight), so the test stays short.
    cfg = wrapper_config(
        server, table, streams="auto", max_streams=4, max_inflight_records=4000, batch_rows=1000
    )
    data = pa.table({"id": pa.array(range(30_000), pa.int64())})
    with pyzerobus.ZerobusWrapper(cfg) as w:
        res = w.send_batch(data)
        assert res.success and res.successful_count == 30_000
        opened = w.stats()["streams"]
        assert 2 <= opened <= 4, opened
    busy = [s for s in stats(server)["streams"] if s["table"] == table and s["records_received"] > 0]
    assert len(busy) == opened, busy
    server.stop()
    ids = deltalake.DeltaTable(str(server.table_dir(table))).to_pyarrow_table().column("id").to_pylist()
    assert sorted(ids) == list(range(30_000))


def test_pyzerobus_defaults_go_past_one_streams_quota(databricks_server: LocalServer) -> None:
    """Default streams="auto": a send one stream cannot carry opens more, and every row lands once."""
    server = databricks_server
    table = "main.profile.defaults_py"
    cfg = wrapper_config(server, table)
    assert (cfg.streams, cfg.max_streams, cfg.max_concurrent_batches) == ("auto", 16, 0)
    data = pa.table({"id": pa.array(range(60_000), pa.int64())})
    with pyzerobus.ZerobusWrapper(cfg) as w:
        res = w.send_batch(data)
        assert res.success and res.successful_count == 60_000
        opened = w.stats()["streams"]
        assert opened >= 2, opened
    server.stop()
    ids = deltalake.DeltaTable(str(server.table_dir(table))).to_pyarrow_table().column("id").to_pylist()
    assert sorted(ids) == list(range(60_000))


def test_pyzerobus_defaults_send_fewer_larger_requests_to_a_slow_service(tmp_path: pathlib.Path) -> None:
    """With acknowledgements 150 ms away, auto opens streams and a large table goes in grown chunks."""
    server = start_server(tmp_path / "data", "--ack-latency", "150ms")
    try:
        table = "main.profile.grown_py"
        rows, batch_rows = 1_000_000, 10_000
        cfg = wrapper_config(server, table)
        assert cfg.batch_rows == batch_rows
        with pyzerobus.ZerobusWrapper(cfg) as w:
            res = w.send_batch(pa.table({"id": pa.array(range(rows), pa.int64())}))
            assert res.success and res.successful_count == rows
            opened = w.stats()["streams"]
        assert opened >= 4, opened
        # Without growth: one chunk per 10,000 rows (100); once 4 streams or
        # more are open, chunks span 2 to 8 times that.
        assert res.batches < 0.8 * rows // batch_rows, res.batches
    finally:
        server.stop()
    ids = deltalake.DeltaTable(str(server.table_dir(table))).to_pyarrow_table().column("id").to_pylist()
    assert sorted(ids) == list(range(rows))


def test_pyzerobus_defaults_keep_a_small_load_on_one_stream(tmp_path: pathlib.Path) -> None:
    """Sends one stream carries with room to spare (a notebook's tables, a trickle) stay on one stream."""
    server = start_server(tmp_path / "data")
    try:
        table = "main.profile.small_py"
        with pyzerobus.ZerobusWrapper(wrapper_config(server, table)) as w:
            for i in range(20):
                res = w.send_batch(pa.table({"id": pa.array(range(i * 1000, (i + 1) * 1000), pa.int64())}))
                assert res.success and res.successful_count == 1000
            assert w.stats()["streams"] == 1
        busy = [s for s in stats(server)["streams"] if s["table"] == table and s["records_received"] > 0]
        assert len(busy) == 1, busy
    finally:
        server.stop()
