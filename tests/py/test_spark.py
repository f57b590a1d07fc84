"""The ``zerobus`` Spark data source (pyzerobus.spark): options, schema, tasks, and Spark in local mode.

The first tests call the driver's and the tasks' code in this process (so
that coverage sees it); the last ones run pyspark in ``local[2,2]`` (two
cores; a task may fail once and be retried) against zerobus-local, and read
the rows back from the Delta table.
"""

from __future__ import annotations

import collections
import io
import logging
import os
import pathlib
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - Java is on the test machines
    pytest.skip("pyspark needs Java", allow_module_level=True)

from pyspark.logger.worker_io import JSONFormatterWithMarker
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql import types as st

from conftest import CLIENT_SECRET, LocalServer, read_delta
from pyzerobus import ConfigurationError, ConversionError
from pyzerobus.spark import (
    ERROR_KIND_COLUMN,
    ERROR_MESSAGE_COLUMN,
    MAY_HAVE_LANDED_COLUMN,
    InjectedFailureError,
    SinkOptions,
    TaskInfo,
    WriteSummary,
    ZerobusCommitMessage,
    ZerobusDataSource,
    ZerobusStreamWriter,
    ZerobusWriter,
    check_schema,
    use_spark_logging,
    write_partition,
)


def conn(server: LocalServer, table: str) -> dict[str, str]:
    """The options of a write to the server, without the secret (the executors' environment has it)."""
    return {
        "endpoint": server.endpoint,
        "unity_catalog_url": server.workspace_url,
        "client_id": server.client_id,
        "table_name": table,
        "retry_base_delay_ms": "5",
        "retry_max_delay_ms": "50",
        "ack_timeout_ms": "5000",
    }


SECRET_ENV = {"DATABRICKS_CLIENT_SECRET": CLIENT_SECRET}


# ---------------------------------------------------------------- options


def test_options_are_converted_to_the_settings_types() -> None:
    opts = SinkOptions.parse(
        {
            "TABLE_NAME": "main.a.b",
            "streams": " 4 ",
            "recovery_disabled": "TRUE",
            "observability_enabled": "off",
            "client_secret": "s3cret",
        }
    )
    assert SinkOptions.parse({"streams": "Auto"}).settings == {"streams": "auto"}
    assert opts.settings == {
        "table_name": "main.a.b",
        "streams": 4,
        "recovery_disabled": True,
        "observability_enabled": False,
        "client_secret": "s3cret",
    }
    assert opts.on_failed_rows == "fail" and opts.log_level == logging.INFO
    assert "s3cret" not in repr(opts) and "log_level='INFO'" in repr(opts)
    assert SinkOptions.parse({"log_level": " Warning"}).log_level == logging.WARNING
    # The executor's environment fills what the options leave out; an option wins.
    cfg = opts.configuration({"ZEROBUS_TABLE_NAME": "main.x.y", "DATABRICKS_CLIENT_ID": "from-env"})
    assert (cfg.table_name, cfg.client_id, cfg.client_secret, cfg.streams) == (
        "main.a.b",
        "from-env",
        "s3cret",
        4,
    )
    # save(path): the path is the table.
    assert SinkOptions.parse({"path": "main.p.q"}).settings == {"table_name": "main.p.q"}


def test_bad_options_are_named_together() -> None:
    with pytest.raises(ConfigurationError) as info:
        SinkOptions.parse(
            {
                "streams": "four",
                "recovery_disabled": "maybe",
                "client_secret": "ok",
                "max_request_bytes": "104857600",
                "tabel_name": "main.a.b",
                "on_failed_rows": "ignore",
                "_fail_task_once_at_row": "x",
                "log_level": "loud",
            }
        )
    named = {p.setting for p in info.value.problems}
    assert named == {
        "log_level",
        "streams",
        "recovery_disabled",
        "max_request_bytes",
        "tabel_name",
        "on_failed_rows",
        "_fail_task_once_at_row",
    }
    assert "'four'" in str(info.value) and "unknown option" in str(info.value)
    with pytest.raises(ConfigurationError, match="quarantine_path: required"):
        SinkOptions.parse({"on_failed_rows": "quarantine"})
    # A secret's value is never shown, not even when it is of the wrong type.
    with pytest.raises(ConfigurationError) as info:
        SinkOptions.parse({"client_secret": "x", "streams": "hidden?"})
    assert "'hidden?'" in str(info.value)


def test_the_source_only_appends() -> None:
    source = ZerobusDataSource({"table_name": "main.a.b"})
    assert ZerobusDataSource.name() == "zerobus"
    with pytest.raises(ConfigurationError, match="only appends"):
        source.writer(st.StructType([st.StructField("id", st.LongType())]), True)
    schema = st.StructType([st.StructField("id", st.LongType())])
    assert isinstance(source.writer(schema, False), ZerobusWriter)
    assert isinstance(source.streamWriter(schema, False), ZerobusStreamWriter)


# ---------------------------------------------------------------- schema

NESTED = st.StructType(
    [
        st.StructField("id", st.LongType(), False),
        st.StructField("name", st.StringType()),
        st.StructField("small", st.ByteType()),
        st.StructField("score", st.DoubleType()),
        st.StructField("price", st.DecimalType(12, 3)),
        st.StructField("day", st.DateType()),
        st.StructField("ts", st.TimestampType()),
        st.StructField("ts_ntz", st.TimestampNTZType()),
        st.StructField("took", st.DayTimeIntervalType()),
        st.StructField("raw", st.BinaryType()),
        st.StructField("tags", st.ArrayType(st.StringType())),
        st.StructField("attrs", st.MapType(st.StringType(), st.DoubleType())),
        st.StructField(
            "device",
            st.StructType(
                [
                    st.StructField("os", st.StringType()),
                    st.StructField(
                        "apps", st.ArrayType(st.StructType([st.StructField("v", st.IntegerType())]))
                    ),
                ]
            ),
        ),
    ]
)


def test_schema_of_every_supported_type_passes() -> None:
    from pyspark.testing.objects import ExamplePointUDT

    arrow = check_schema(NESTED)
    assert arrow.names == NESTED.fieldNames()
    # A user-defined type is checked as the SQL type it is stored as.
    check_schema(st.StructType([st.StructField("point", ExamplePointUDT())]))
    assert arrow.field("ts").type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (st.StructField("ym", st.YearMonthIntervalType()), "column 'ym' of type interval year to month"),
        (
            st.StructField("d", st.StructType([st.StructField("v", st.VariantType())])),
            "column 'd.v' of type variant cannot be written to Zerobus: send it as JSON",
        ),
        (st.StructField("cal", st.ArrayType(st.CalendarIntervalType())), "column 'cal[]'"),
        (
            st.StructField("m", st.MapType(st.DoubleType(), st.LongType())),
            'column "m.key": map key type float64 cannot be a protobuf map key',
        ),
        (st.StructField("bad name", st.LongType()), 'column "bad name": name "bad name" must be ASCII'),
    ],
)
def test_unsupported_columns_are_named(field: st.StructField, message: str) -> None:
    schema = st.StructType([st.StructField("id", st.LongType()), field])
    with pytest.raises(ConversionError, match="^.*" + message.replace("[", r"\[").replace("]", r"\]")):
        check_schema(schema)


# ---------------------------------------------------------------- tasks, in this process

EVENTS = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("counter", pa.uint64()),
        pa.field("tags", pa.list_(pa.string())),
    ]
)


def event_batches(n: int, per_batch: int, bad_every: int = 0) -> Iterator[pa.RecordBatch]:
    """Batches of events; every ``bad_every``-th row's counter does not fit a BIGINT."""
    for start in range(0, n, per_batch):
        ids = list(range(start, min(n, start + per_batch)))
        counters = [(1 << 63) + i if bad_every and i % bad_every == 3 else i for i in ids]
        yield pa.record_batch(
            [pa.array(ids), pa.array(counters, pa.uint64()), [["a"]] * len(ids)], schema=EVENTS
        )


def test_a_partition_lands_and_reports(local_server: LocalServer, table_name: str) -> None:
    opts = SinkOptions.parse({**conn(local_server, table_name), "streams": "2"})
    msg = write_partition(opts, event_batches(5000, 1000), TaskInfo(3, 1), environ=SECRET_ENV)
    assert (msg.partition_id, msg.attempt, msg.rows_acknowledged, msg.rows_failed) == (3, 1, 5000, 0)
    assert msg.bytes > 0 and msg.failed_by_kind == {}
    # An empty partition opens no wrapper at all.
    assert write_partition(opts, iter([]), TaskInfo(4, 0)) == ZerobusCommitMessage(4, 0)
    got = read_delta(local_server, table_name)
    assert sorted(got.column("id").to_pylist()) == list(range(5000))


def test_the_writer_sends_outside_a_task_as_partition_0(local_server: LocalServer, table_name: str) -> None:
    options = {**conn(local_server, table_name), "client_secret": CLIENT_SECRET}
    writer = ZerobusDataSource(options).writer(st.StructType([st.StructField("id", st.LongType())]), False)
    batch = pa.record_batch({"id": pa.array(range(10), pa.int64())})
    msg = writer.write(iter([batch]))
    assert (msg.partition_id, msg.attempt, msg.rows_acknowledged) == (0, 0, 10)
    assert "client_secret" not in repr(writer.options) or "***" in repr(writer.options)
    assert read_delta(local_server, table_name).num_rows == 10


def test_failed_rows_fail_the_task_after_the_rest_landed(local_server: LocalServer, table_name: str) -> None:
    opts = SinkOptions.parse(conn(local_server, table_name))
    with pytest.raises(ConversionError) as info:
        write_partition(opts, event_batches(1000, 300, bad_every=100), TaskInfo(2, 0), environ=SECRET_ENV)
    assert "partition 2 attempt 0: 10 of 1000 rows failed (conversion: 10)" in str(info.value)
    assert "990 acknowledged rows are in the table" in str(info.value)
    assert "first failed row 3" in str(info.value)
    assert read_delta(local_server, table_name).num_rows == 990


def test_quarantine_writes_the_failed_rows(
    local_server: LocalServer, table_name: str, tmp_path: pathlib.Path
) -> None:
    where = tmp_path / "quarantine"
    uri = where.as_uri()  # file:///...: any filesystem pyarrow opens
    opts = SinkOptions.parse(
        {**conn(local_server, table_name), "on_failed_rows": "quarantine", "quarantine_path": uri}
    )
    msg = write_partition(opts, event_batches(1000, 300, bad_every=100), TaskInfo(7, 2), environ=SECRET_ENV)
    assert (msg.rows_acknowledged, msg.rows_failed, msg.failed_by_kind) == (990, 10, {"conversion": 10})
    assert msg.quarantine_file is not None and msg.quarantine_file.startswith(uri + "/part-00007-attempt-2-")
    bad = pq.read_table(where / msg.quarantine_file.rsplit("/", 1)[1])
    assert bad.column("id").to_pylist() == list(range(3, 1000, 100))
    assert bad.column("counter").to_pylist() == [(1 << 63) + i for i in range(3, 1000, 100)]
    assert set(bad.column(ERROR_KIND_COLUMN).to_pylist()) == {"conversion"}
    assert "2^63" in bad.column(ERROR_MESSAGE_COLUMN)[0].as_py() or "9223372036854775807" in str(
        bad.column(ERROR_MESSAGE_COLUMN)[0]
    )
    assert bad.column(MAY_HAVE_LANDED_COLUMN).to_pylist() == [False] * 10
    assert not list(pathlib.Path(os.environ.get("TMPDIR", "/tmp")).glob("zerobus-spill-*"))
    assert read_delta(local_server, table_name).num_rows == 990


def test_quarantine_does_not_take_a_failure_of_the_configuration(
    local_server: LocalServer, table_name: str, tmp_path: pathlib.Path
) -> None:
    opts = SinkOptions.parse(
        {
            **conn(local_server, table_name),
            "client_id": "nobody",
            "on_failed_rows": "quarantine",
            "quarantine_path": str(tmp_path / "q"),
            "retry_max_attempts": "1",
        }
    )
    with pytest.raises(Exception, match="rows failed"):
        write_partition(opts, event_batches(10, 10), TaskInfo(), environ=SECRET_ENV)
    assert not (tmp_path / "q").exists()


def test_an_injected_failure_comes_after_the_rows_before_it(
    local_server: LocalServer, table_name: str
) -> None:
    opts = SinkOptions.parse({**conn(local_server, table_name), "_fail_task_once_at_row": "1500"})
    with pytest.raises(InjectedFailureError, match="after 1500 rows"):
        write_partition(opts, event_batches(5000, 1000), TaskInfo(0, 0), environ=SECRET_ENV)
    # Only the first attempt of partition 0 fails.
    assert (
        write_partition(opts, event_batches(100, 100), TaskInfo(0, 1), environ=SECRET_ENV).rows_acknowledged
        == 100
    )
    assert (
        write_partition(opts, event_batches(100, 100), TaskInfo(1, 0), environ=SECRET_ENV).rows_acknowledged
        == 100
    )
    assert read_delta(local_server, table_name).num_rows == 1700


def test_commit_and_abort_log_the_sums(caplog: pytest.LogCaptureFixture) -> None:
    messages: list[Any] = [
        ZerobusCommitMessage(0, 0, 100, 2, 4000, {"conversion": 2}, "/q/part-0.parquet"),
        ZerobusCommitMessage(
            1,
            1,
            50,
            1,
            2000,
            {
                "conversion": 1,
            },
        ),
        None,
    ]
    s = WriteSummary.of(messages)
    assert (s.tasks, s.tasks_missing, s.rows_acknowledged, s.rows_failed, s.bytes) == (2, 1, 150, 3, 6000)
    assert s.failed_by_kind == {"conversion": 3} and s.quarantine_files == ["/q/part-0.parquet"]
    assert str(s) == (
        "2 tasks: 150 rows acknowledged, 3 failed (conversion: 3), 6,000 bytes, "
        "failed rows in 1 quarantine files; 1 tasks did not report"
    )
    schema = st.StructType([st.StructField("id", st.LongType())])
    writer = ZerobusDataSource({"table_name": "main.a.b"}).writer(schema, False)
    stream = ZerobusDataSource({}).streamWriter(schema, False)
    with caplog.at_level(logging.INFO, logger="pyzerobus.spark"):
        writer.commit(messages[:2])
        writer.abort(messages)
        stream.commit(messages[:2], 7)
        stream.abort(messages, 8)
    text = caplog.text
    assert "zerobus write to main.a.b committed: 2 tasks: 150 rows acknowledged" in text
    assert "zerobus write to main.a.b aborted" in text and "150 acknowledged rows stay in the table" in text
    assert "micro-batch 7 to (table from the environment) committed" in text
    assert "micro-batch 8" in text and "aborted" in text


def test_spark_logging_reaches_stderr_unless_the_process_has_a_handler(
    capfd: pytest.CaptureFixture[str],
) -> None:
    sink = logging.getLogger("pyzerobus.spark")
    root = logging.getLogger()
    saved_root, saved_level = root.handlers[:], sink.level
    try:
        # A process with a logging configuration of its own (here pytest's): only the level is set.
        use_spark_logging(logging.WARNING)
        assert sink.level == logging.WARNING and sink.handlers == []
        # A process Spark started: no handler, or only Spark's worker-logging one.
        spark_handler = logging.StreamHandler(io.StringIO())
        spark_handler.setFormatter(JSONFormatterWithMarker("PYTHON_WORKER_LOGGING", "1", dict))
        root.handlers = [spark_handler]
        use_spark_logging(logging.INFO)
        use_spark_logging(logging.INFO)  # once per process
        assert len(sink.handlers) == 1
        sink.info("zerobus write to main.a.b committed: 1 tasks")
        sink.debug("not shown")
        assert "INFO pyzerobus.spark: zerobus write to main.a.b committed: 1 tasks" in capfd.readouterr().err
        assert "zerobus write to main.a.b committed" in spark_handler.stream.getvalue()
    finally:
        root.handlers = saved_root
        sink.handlers = []
        sink.setLevel(saved_level)


# ---------------------------------------------------------------- Spark, local mode


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """A small local Spark: two cores, a task may fail once, no UI.

    The secret is in the executors' environment, not in the options.
    """
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2,2]")
        .appName("pyzerobus-test-spark")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "5000")
        .config("spark.executorEnv.DATABRICKS_CLIENT_SECRET", CLIENT_SECRET)
        # commit's and abort's log lines become rows of spark.tvf.python_worker_logs().
        .config("spark.sql.pyspark.worker.logging.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.dataSource.register(ZerobusDataSource)
    try:
        yield session
    finally:
        session.stop()


def generated(spark: SparkSession, n: int, partitions: int) -> Any:
    """A DataFrame of n events with nested types, ids 0..n-1, in several partitions."""
    return spark.range(0, n, numPartitions=partitions).select(
        F.col("id"),
        F.concat(F.lit("event-"), F.col("id").cast("string")).alias("name"),
        (F.col("id") * 0.5).alias("score"),
        F.array(F.lit("a"), (F.col("id") % 3).cast("string")).alias("tags"),
        F.struct((F.col("id") % 2 == 0).alias("even"), (F.col("id") % 7).cast("int").alias("bucket")).alias(
            "device"
        ),
        F.create_map(F.lit("k"), F.col("id").cast("double")).alias("attrs"),
    )


def sink_log(spark: SparkSession, table: str) -> list[str]:
    """The lines pyzerobus.spark logged about writes to ``table`` in Spark's Python processes, in order."""
    rows = (
        spark.tvf.python_worker_logs()
        .where((F.col("logger") == "pyzerobus.spark") & F.col("msg").contains(f" to {table} "))
        .orderBy("ts")
        .select("msg")
        .collect()
    )
    return [r.msg for r in rows]


def test_a_dataframe_lands_every_row(spark: SparkSession, local_server: LocalServer, table_name: str) -> None:
    n = 1_000_000
    df = generated(spark, n, partitions=4)
    df.write.format("zerobus").options(**conn(local_server, table_name)).option("streams", "2").mode(
        "append"
    ).save()
    got = read_delta(local_server, table_name)
    assert got.num_rows == n
    ids = got.column("id")
    assert pa.compute.count_distinct(ids).as_py() == n
    assert pa.compute.min_max(ids).as_py() == {"min": 0, "max": n - 1}
    row = got.filter(pa.compute.equal(ids, 12345)).to_pylist()[0]
    assert row["name"] == "event-12345" and row["tags"] == ["a", "0"]
    assert row["device"] == {"even": False, "bucket": 12345 % 7} and row["attrs"] == [("k", 12345.0)]
    # The driver's commit added the four tasks' messages up and logged one summary.
    (summary,) = sink_log(spark, table_name)
    assert summary.startswith(
        f"zerobus write to {table_name} committed: 4 tasks: 1,000,000 rows acknowledged, 0 failed"
    )


def test_schema_errors_stop_the_write_on_the_driver(
    spark: SparkSession, local_server: LocalServer, table_name: str
) -> None:
    df = spark.range(10).select("id", F.make_ym_interval(F.lit(1), F.lit(2)).alias("span"))
    with pytest.raises(Exception, match="column 'span' of type interval year to month"):
        df.write.format("zerobus").options(**conn(local_server, table_name)).mode("append").save()
    with pytest.raises(Exception, match="streams: must be an integer"):
        spark.range(3).write.format("zerobus").options(**conn(local_server, table_name)).option(
            "streams", "two"
        ).mode("append").save()
    # No task ran: the server never saw the table.
    assert not local_server.table_dir(table_name).exists()


def test_quarantine_mode_lands_the_good_rows_and_keeps_the_bad(
    spark: SparkSession, local_server: LocalServer, table_name: str, tmp_path: pathlib.Path
) -> None:
    # Protobuf cannot carry a null inside a list: every 100th row fails in the engine.
    df = spark.range(0, 10_000, numPartitions=3).select(
        "id",
        F.when(F.col("id") % 100 == 7, F.array(F.lit(1), F.lit(None).cast("int")))
        .otherwise(F.array(F.lit(1)))
        .alias("values"),
    )
    where = tmp_path / "quarantine"
    df.write.format("zerobus").options(**conn(local_server, table_name)).option(
        "on_failed_rows", "quarantine"
    ).option("quarantine_path", str(where)).mode("append").save()
    bad = pq.read_table(where)
    assert sorted(bad.column("id").to_pylist()) == list(range(7, 10_000, 100))
    assert set(bad.column(ERROR_KIND_COLUMN).to_pylist()) == {"conversion"}
    assert "null" in bad.column(ERROR_MESSAGE_COLUMN)[0].as_py()
    assert len(list(where.glob("part-*.parquet"))) == 3  # one per task that had failed rows
    got = read_delta(local_server, table_name)
    assert sorted(got.column("id").to_pylist()) == [i for i in range(10_000) if i % 100 != 7]


def run_rate_stream(
    spark: SparkSession, options: dict[str, str], ckpt: pathlib.Path, batches: int
) -> list[dict[str, Any]]:
    """Run a query from the rate source until ``batches`` micro-batches with rows are committed; stop it.

    Returns the progress of the micro-batches it committed. The micro-batch
    running when the query stops may have landed rows without being
    committed.
    """
    rate = spark.readStream.format("rate").option("rowsPerSecond", 2000).option("numPartitions", 2).load()
    query = (
        rate.select(
            F.col("value").alias("id"),
            F.col("timestamp").alias("ts"),
            F.struct((F.col("value") % 7).cast("int").alias("bucket")).alias("device"),
        )
        .writeStream.format("zerobus")
        .options(**options)
        .option("checkpointLocation", str(ckpt))
        .trigger(processingTime="500 milliseconds")
        .start()
    )
    try:
        deadline = time.monotonic() + 180
        while sum(1 for p in query.recentProgress if p["numInputRows"]) < batches:
            assert query.exception() is None
            if time.monotonic() > deadline:  # pragma: no cover - a stalled query
                pytest.fail(f"the stream did not commit {batches} micro-batches in 180 s")
            time.sleep(0.1)
    finally:
        query.stop()
    assert query.exception() is None
    return [p for p in query.recentProgress if p["numInputRows"]]


def test_a_rate_stream_acknowledges_each_micro_batch_before_spark_commits_it(
    spark: SparkSession, local_server: LocalServer, table_name: str, tmp_path: pathlib.Path
) -> None:
    ckpt = tmp_path / "ckpt"
    options = conn(local_server, table_name)
    first = run_rate_stream(spark, options, ckpt, batches=3)
    # Restarted from its checkpoint, the query goes on where it was committed.
    second = run_rate_stream(spark, options, ckpt, batches=2)
    progress = first + second
    ids = [p["batchId"] for p in progress]
    assert ids == sorted(set(ids)) and len(ids) >= 5
    committed = {int(f.name) for f in (ckpt / "commits").iterdir() if f.name.isdigit()}
    assert set(ids) <= committed

    # The rate source numbers its rows 0, 1, 2... in the order of its micro-batches, so each
    # committed micro-batch holds the ids that follow those of the one before it: every one of
    # them is in the table, in the count the query reports it processed.
    got = read_delta(local_server, table_name)
    counts = collections.Counter(got.column("id").to_pylist())
    start = 0
    for p in progress:
        end = start + p["numInputRows"]
        landed = sum(1 for i in range(start, end) if i in counts)
        assert landed == p["numInputRows"], (
            f"micro-batch {p['batchId']}: {landed} of {end - start} rows landed"
        )
        start = end
    # Duplicates can only come from the micro-batch that was running when the first query
    # stopped (written, maybe in part, but not committed), which the restarted query wrote again
    # as its first. (Rows past the last committed micro-batch are those of the one running when
    # the second query stopped.)
    replayed_start = sum(p["numInputRows"] for p in first)
    replayed = range(replayed_start, replayed_start + second[0]["numInputRows"])
    assert all(i in replayed and c == 2 for i, c in counts.items() if c > 1), "unexpected duplicates"
    row = got.filter(pa.compute.equal(got.column("id"), 5)).to_pylist()[0]
    assert row["device"] == {"bucket": 5} and row["ts"] is not None


def test_a_failed_write_is_aborted_and_abort_reports_what_landed(
    spark: SparkSession, local_server: LocalServer, table_name: str
) -> None:
    # Partition 0 (ids 0..4,999) has 50 rows the engine refuses, on every attempt: the job fails
    # after its second attempt, and the driver's abort logs what partition 1 (ids 5,000..9,999,
    # written while partition 0 fails and is retried) had landed.
    df = spark.range(0, 10_000, numPartitions=2).select(
        "id",
        F.when((F.col("id") < 5000) & (F.col("id") % 100 == 7), F.array(F.lit(1), F.lit(None).cast("int")))
        .otherwise(F.array(F.lit(1)))
        .alias("values"),
    )
    with pytest.raises(
        Exception, match="50 of 5000 rows failed \\(conversion: 50\\); 4950 acknowledged rows"
    ):
        df.write.format("zerobus").options(**conn(local_server, table_name)).mode("append").save()
    (aborted,) = [line for line in sink_log(spark, table_name) if "aborted" in line]
    assert aborted.startswith(
        f"zerobus write to {table_name} aborted: 1 tasks: 5,000 rows acknowledged, 0 failed"
    ), aborted
    assert "1 tasks did not report. Their 5,000 acknowledged rows stay in the table" in aborted
    # Nothing is rolled back: partition 1's rows, and the good rows of both failed attempts.
    counts = collections.Counter(read_delta(local_server, table_name).column("id").to_pylist())
    good0 = [i for i in range(5000) if i % 100 != 7]
    assert counts == collections.Counter(list(range(5000, 10_000)) + good0 * 2)


def test_a_failed_task_is_retried_and_nothing_acknowledged_is_lost(
    spark: SparkSession, local_server: LocalServer, table_name: str
) -> None:
    # Partition 0 (ids 0..49,999) fails on its first attempt after sending 12,345 rows; Spark runs it again.
    n, fail_at = 100_000, 12_345
    spark.range(0, n, numPartitions=2).write.format("zerobus").options(
        **conn(local_server, table_name)
    ).option("_fail_task_once_at_row", str(fail_at)).mode("append").save()
    ids = read_delta(local_server, table_name).column("id").to_pylist()
    counts = collections.Counter(ids)
    assert set(counts) == set(range(n))  # every row landed
    duplicated = sorted(i for i, c in counts.items() if c > 1)
    # Exactly the rows the failed attempt had acknowledged landed twice.
    assert duplicated == list(range(fail_at))
    assert max(counts.values()) == 2
