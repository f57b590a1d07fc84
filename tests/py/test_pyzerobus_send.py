"""Sending every kind of input, sync and async APIs, results, logging, progress."""

from __future__ import annotations

import builtins
import concurrent.futures
import datetime
import io
import logging
import threading
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pytest

import pyzerobus
from conftest import LocalServer, assert_transport, read_delta, wrapper_config
from pyzerobus import TransmissionError, TransmissionResult, WrapperConfiguration, ZerobusWrapper

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("device", pa.struct([pa.field("os", pa.string()), pa.field("version", pa.int32())])),
        pa.field("attrs", pa.map_(pa.string(), pa.float64())),
    ]
)
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def rows(first: int, n: int) -> pa.Table:
    ids = list(range(first, first + n))
    return pa.table(
        {
            "id": ids,
            "name": [f"event-{i}" if i % 7 else None for i in ids],
            "score": [i * 0.5 for i in ids],
            "tags": [[f"t{i % 3}", "x"] if i % 5 else [] for i in ids],
            "ts": [EPOCH + datetime.timedelta(seconds=i) for i in ids],
            "device": [{"os": "linux" if i % 2 else "mac", "version": i % 20} for i in ids],
            "attrs": [[("a", float(i)), ("b", 1.0)] for i in ids],
        },
        schema=SCHEMA,
    )


def as_stored(table: pa.Table, transport: dict[str, str]) -> pa.Table:
    """The table as an auto-created Delta table holds it: a table made from a
    stream's descriptor stores timestamps as BIGINT microseconds (declare the
    table to get TIMESTAMP); one made from an Arrow stream's schema keeps
    TIMESTAMP."""
    if transport["transport"] == "arrow":
        return table
    i = table.schema.get_field_index("ts")
    return table.set_column(i, "ts", table.column("ts").cast(pa.int64()))


class StreamOnly:
    """A foreign producer that offers only the Arrow PyCapsule stream protocol."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self.table.__arrow_c_stream__(requested_schema)


class ArrayOnly:
    """A foreign producer of one struct array (__arrow_c_array__)."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch = batch

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self.batch.__arrow_c_array__(requested_schema)


def ipc_stream(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=250)
    return sink.getvalue()


def ipc_file(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


FLAT = ["id", "name", "score", "tags", "ts"]


def inputs() -> list[tuple[str, Any, int]]:
    """(name, data, row count): every accepted kind of input, with distinct ids.

    The columns are those every producer round-trips unchanged (pandas turns
    int32 into int64 and maps into lists; polars has no map type).
    """
    import pandas as pd  # noqa: F401 - DataFrame.to_pandas needs it
    import polars as pl

    out: list[tuple[str, Any, int]] = []
    base = 0

    def nxt(n: int) -> pa.Table:
        nonlocal base
        t = rows(base, n).select(FLAT)
        base += n
        return t

    out.append(("table", nxt(1000), 1000))
    out.append(("record batch", nxt(300).to_batches()[0], 300))
    t = nxt(2000)
    out.append(("reader", pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=128)), 2000))
    out.append(("pandas", nxt(500).to_pandas(), 500))
    out.append(("polars", pl.from_arrow(nxt(400)), 400))
    out.append(("__arrow_c_stream__", StreamOnly(nxt(200)), 200))
    out.append(("__arrow_c_array__", ArrayOnly(nxt(50).to_batches()[0]), 50))
    out.append(("capsule", nxt(60).__arrow_c_stream__(), 60))
    out.append(("ipc stream bytes", ipc_stream(nxt(700)), 700))
    out.append(("ipc file bytearray", bytearray(ipc_file(nxt(70))), 70))
    out.append(("ipc memoryview", memoryview(ipc_stream(nxt(30))), 30))
    return out


def test_every_input_kind_lands_in_the_table(
    local_server: LocalServer, table_name: str, transport: dict[str, str]
) -> None:
    cases = inputs()
    with ZerobusWrapper(wrapper_config(local_server, table_name, batch_rows=256, **transport)) as w:
        for name, data, n in cases:
            res = w.send_batch(data)
            assert isinstance(res, TransmissionResult), name
            assert res.success and res.total_rows == n and res.successful_count == n, (name, res)
            assert res.failed_count == 0 and res.error is None and res.attempts == 1, name
            assert res.batch_size_bytes > 0 and res.latency_ms > 0, name
            assert list(res.successful_rows) == list(range(n)), name
            assert res.offset is None and not res.cancelled
    assert_transport(local_server, transport)
    total = sum(n for _, _, n in cases)
    got = read_delta(local_server, table_name).sort_by("id")
    assert got.column("id").to_pylist() == list(range(total))
    assert got.select(FLAT).to_pylist() == as_stored(rows(0, total).select(FLAT), transport).to_pylist()


def test_nested_values_survive(local_server: LocalServer, table_name: str, transport: dict[str, str]) -> None:
    table = rows(0, 3000)
    with ZerobusWrapper(wrapper_config(local_server, table_name, batch_rows=700, **transport)) as w:
        assert w.send_batch(table).successful_count == 3000
        assert w.send_batch(ipc_stream(rows(3000, 500))).successful_count == 500
    got = read_delta(local_server, table_name).sort_by("id").select(SCHEMA.names).to_pylist()
    want = as_stored(rows(0, 3500), transport).to_pylist()
    for row in (*got, *want):
        row["attrs"] = sorted(row["attrs"])
    assert got == want


def deprecated() -> pytest.WarningsRecorder:
    """Expect the DeprecationWarning of the offset API."""
    return pytest.warns(DeprecationWarning, match="is deprecated: use")


def test_async_sends_offsets_and_flush(
    local_server: LocalServer, table_name: str, transport: dict[str, str]
) -> None:
    # The offset API (send_batch_async, wait_for_offset) is deprecated and still works.
    with ZerobusWrapper(wrapper_config(local_server, table_name, **transport)) as w, deprecated():
        offsets = [w.send_batch_async(rows(i * 100, 100)) for i in range(10)]
        assert offsets == sorted(offsets) and len(set(offsets)) == 10
        got = w.wait_for_offset(offsets[4])
        assert [r.offset for r in got] == offsets[:5]
        assert all(r.success and r.total_rows == 100 for r in got)
        assert w.wait_for_offset(offsets[4]) == []  # each result is returned once
        rest = w.flush()
        assert [r.offset for r in rest] == offsets[5:]
        assert w.flush() == []
        with pytest.raises(ValueError):
            w.wait_for_offset(offsets[-1] + 100)
        with pytest.raises(ValueError):
            w.wait_for_offset(-1)
        last = w.send_batch_async(rows(1000, 10))
        assert w.stats()["rows_acked"] >= 1000
    assert w.closed
    # shutdown waited for the last async send
    assert read_delta(local_server, table_name).num_rows == 1010
    assert last == offsets[-1] + 1


def test_threads_share_one_wrapper(
    local_server: LocalServer, table_name: str, transport: dict[str, str]
) -> None:
    results: list[TransmissionResult] = []
    with ZerobusWrapper(wrapper_config(local_server, table_name, batch_rows=100, **transport)) as w:

        def send(k: int) -> None:
            results.append(w.send_batch(rows(k * 1000, 1000)))

        threads = [threading.Thread(target=send, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = w.stats()
    assert len(results) == 8 and all(r.success for r in results)
    assert stats["rows_acked"] == 8000 and stats["streams"] == 1
    assert read_delta(local_server, table_name).num_rows == 8000


def test_empty_input_and_lifecycle(config: WrapperConfiguration) -> None:
    w = ZerobusWrapper(config)
    assert "closed=False" in repr(w)
    res = w.send_batch(rows(0, 0))
    assert res.success and res.total_rows == 0 and res.batches == 0
    w.close()
    w.shutdown()  # idempotent
    assert w.closed and "closed=True" in repr(w)
    with pytest.raises(TransmissionError, match="closed"):
        w.send_batch(rows(0, 1))
    with pytest.raises(TransmissionError, match="closed"), deprecated():
        w.send_batch_async(rows(0, 1))
    with pytest.raises(TransmissionError, match="closed"):
        w.send_batch_nowait(rows(0, 1))


def test_settings_override_config(config: WrapperConfiguration) -> None:
    with ZerobusWrapper(config, batch_rows=10) as w:
        assert w.config.batch_rows == 10
        res = w.send_batch(rows(0, 95))
        assert res.batches == 10
    with ZerobusWrapper(
        **{
            k: getattr(config, k)
            for k in ("endpoint", "table_name", "client_id", "client_secret", "unity_catalog_url")
        }
    ) as w:
        assert w.send_batch(rows(0, 5)).success


def test_writer_disabled_converts_without_connecting() -> None:
    cfg = WrapperConfiguration(table_name="main.offline.events", zerobus_writer_disabled=True, batch_rows=100)
    with ZerobusWrapper(cfg) as w:
        res = w.send_batch(rows(0, 250))
        assert res.success and res.batches == 3 and res.attempts == 0 and res.batch_size_bytes > 0
        assert w.stats()["calls_opened"] == 0


def test_tls_server_trusted_through_ca_file(tls_server: LocalServer, table_name: str) -> None:
    assert tls_server.endpoint.startswith("https://")
    cfg = wrapper_config(tls_server, table_name, tls_ca_file=str(tls_server.data_dir / "ca.pem"))
    with ZerobusWrapper(cfg) as w:
        assert w.send_batch(rows(0, 20)).success


def test_progress_with_tqdm_and_without(
    config: WrapperConfiguration, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ZerobusWrapper(config, batch_rows=500) as w:
        w.send_batch(rows(0, 5000), progress=True)
        err = capsys.readouterr().err
        assert "5.00k/5.00k" in err and "rows" in err  # tqdm's bar

        real_import = builtins.__import__

        def no_tqdm(name: str, *args: Any, **kw: Any) -> Any:
            if name.startswith("tqdm"):
                raise ImportError("no tqdm here")
            return real_import(name, *args, **kw)

        monkeypatch.setattr(builtins, "__import__", no_tqdm)
        reader = pa.RecordBatchReader.from_batches(SCHEMA, rows(5000, 3000).to_batches(max_chunksize=1000))
        w.send_batch(reader, progress=True)
        err = capsys.readouterr().err
        assert "pyzerobus: 3,000 rows" in err  # the plain line (total unknown for a stream)


def test_logging(config: WrapperConfiguration, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pyzerobus")
    with ZerobusWrapper(config) as w:
        w.send_batch(rows(0, 10))
    msgs = [r.getMessage() for r in caplog.records if r.name == "pyzerobus"]
    assert any("wrapper created" in m for m in msgs)
    assert any(m.startswith("sent TransmissionResult(success=True") for m in msgs)
    assert any("closed" in m for m in msgs)


def test_result_helpers_and_display() -> None:
    cfg = WrapperConfiguration(table_name="main.offline.events", zerobus_writer_disabled=True, batch_rows=40)
    table = pa.table(
        {"id": list(range(100)), "u": [2**63 if i in (3, 4, 5, 50) else i for i in range(100)]},
        schema=pa.schema([("id", pa.int64()), ("u", pa.uint64())]),
    )
    with ZerobusWrapper(cfg) as w:
        res = w.send_batch(table)
    assert res.is_partial_success() and not res.success
    assert (res.total_rows, res.successful_count, res.failed_count) == (100, 96, 4)
    assert res.failed_indices() == [3, 4, 5, 50]
    assert len(res.failed_rows) == 4 and len(res.successful_rows) == 96
    assert res.failed_rows[0].index == 3 and res.failed_rows[-1].index == 50
    assert [r.index for r in res.failed_rows[1:3]] == [4, 5]
    assert res.failed_rows[3].kind == "conversion" and not res.failed_rows[3].may_have_landed
    assert "row 50" in str(res.failed_rows[3].error) and "u" in str(res.failed_rows[3].error)
    with pytest.raises(IndexError):
        res.failed_rows[4]
    succ = res.successful_indices()
    assert succ == [i for i in range(100) if i not in (3, 4, 5, 50)]
    assert [res.successful_rows[i] for i in range(96)] == succ
    assert res.successful_rows[-1] == 99 and res.successful_rows[2:4] == [2, 6]
    assert 6 in res.successful_rows and 4 not in res.successful_rows and 100 not in res.successful_rows
    with pytest.raises(IndexError):
        res.successful_rows[96]
    assert res.failed_rows == [r for r in res.failed_rows] and res.successful_rows == succ
    assert repr(res.failed_rows) == "<4 failed rows>" and repr(res.successful_rows) == "<96 successful rows>"
    stats = res.error_stats()
    assert (stats.failed, stats.by_kind, stats.retryable, stats.may_have_landed, stats.distinct) == (
        4,
        {"conversion": 4},
        0,
        0,
        4,
    )
    assert list(res.errors_by_kind()) == ["conversion"]
    assert isinstance(res.error, pyzerobus.ConversionError) and res.error.result is res
    assert "4 of 100 rows failed; row 3" in str(res.error)

    failed = res.extract_failed_batch(table)
    assert failed.column("id").to_pylist() == [3, 4, 5, 50]
    ok = res.extract_successful_batch(table.to_batches()[0])
    assert isinstance(ok, pa.RecordBatch) and ok.num_rows == 96
    assert res.extract_failed_batch(table.to_pandas()).num_rows == 4
    with pytest.raises(ValueError, match="100"):
        res.extract_failed_batch(table.slice(0, 10))
    with pytest.raises(TypeError):
        res.extract_failed_batch(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))

    text = repr(res)
    assert text.startswith("TransmissionResult(success=False, total_rows=100, successful=96, failed=4")
    assert "ConversionError(kind='conversion'" in text
    page = res._repr_html_()
    assert "partial success" in page and "conversion" in page and "row 3" in page
    assert "<table>" in page


def test_strict_raises_on_partial_failure() -> None:
    cfg = WrapperConfiguration(table_name="main.offline.events", zerobus_writer_disabled=True)
    table = pa.table({"u": pa.array([1, 2**63], pa.uint64())})
    with ZerobusWrapper(cfg) as w:
        assert w.send_batch(table).is_partial_success()
        with pytest.raises(pyzerobus.ConversionError) as info:
            w.send_batch(table, strict=True)
        assert info.value.result is not None and info.value.result.failed_indices() == [1]
        with pytest.raises(pyzerobus.ConversionError) as info:
            w.send_batch_nowait(table, strict=True).result()
        assert info.value.result is not None and info.value.result.failed_indices() == [1]
        with deprecated():
            off = w.send_batch_async(table)
            with pytest.raises(pyzerobus.ConversionError) as info:
                w.wait_for_offset(off, strict=True)
            assert [r.offset for r in info.value.results] == [off]
            off = w.send_batch_async(table)
            assert w.flush()[0].failed_count == 1  # not strict: returned


def test_engine_version() -> None:
    assert pyzerobus.engine_version() == pyzerobus.__version__


def test_timeout_cancels_the_send(local_server: LocalServer, table_name: str) -> None:
    from conftest import arm_fault

    with ZerobusWrapper(wrapper_config(local_server, table_name)) as w:
        assert w.send_batch(rows(0, 10)).success
        arm_fault(local_server, kind="delay_acks", delay="3s")
        with pytest.raises(TransmissionError, match="timed out") as info:
            w.send_batch(rows(10, 10), timeout=0.3)
        res = info.value.result
        assert res is not None and res.cancelled and res.failed_count == 10
        assert all(r.may_have_landed for r in res.failed_rows)  # written, unacknowledged
        assert res.error_stats().may_have_landed == 10 and res.error_stats().retryable == 10
        assert "cancelled=True" in repr(res) and "cancelled" in res._repr_html_()
        fut = w.send_batch_nowait(rows(20, 10))
        with pytest.raises(concurrent.futures.TimeoutError):
            fut.result(timeout=0.2)  # the wait ends, the send goes on
        assert fut.result(timeout=30).success
        arm_fault(local_server, kind="delay_acks", delay="3s")
        with deprecated():
            off = w.send_batch_async(rows(30, 10))
            with pytest.raises(TransmissionError, match="timed out"):
                w.wait_for_offset(off, timeout=0.2)
            done = w.wait_for_offset(off, timeout=30)[0]
        assert done.success and f"offset={off}" in repr(done) and "offset" in done._repr_html_()


def test_shutdown_reports_unreported_async_failures(
    local_server: LocalServer, table_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = wrapper_config(local_server, table_name, client_secret="wrong")
    w = ZerobusWrapper(cfg)
    with deprecated():
        w.send_batch_async(rows(0, 5))
    with pytest.raises(pyzerobus.AuthenticationError):
        w.shutdown()
    assert w.closed
    with pytest.raises(ZeroDivisionError), ZerobusWrapper(cfg) as w2, deprecated():
        w2.send_batch_async(rows(0, 5))
        raise ZeroDivisionError  # the shutdown's own failure is logged, not raised over this
    assert any("shutdown after an error failed too" in r.getMessage() for r in caplog.records)
