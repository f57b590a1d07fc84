"""The ``zerobus`` Spark data source (pyzerobus.spark): options, schema, tasks, and Spark in local mode.

The first tests call the driver's and the tasks' code in this process (so
that coverage sees it); the last ones run pyspark in ``local[2,2]`` (two
cores; a task may fail once and be retried) against zerobus-local, and read
the rows back from the Delta table.
"""

from __future__ import annotations

import collections
import logging
import os
import pathlib
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - Java is on the test machines
    pytest.skip("pyspark needs Java", allow_module_level=True)

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
    assert opts.settings == {
        "table_name": "main.a.b",
        "streams": 4,
        "recovery_disabled": True,
        "observability_enabled": False,
        "client_secret": "s3cret",
    }
    assert opts.on_failed_rows == "fail"
    assert "s3cret" not in repr(opts)
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
            }
        )
    named = {p.setting for p in info.value.problems}
    assert named == {
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


def test_a_stream_lands_every_micro_batch(
    spark: SparkSession, local_server: LocalServer, table_name: str, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "in"
    for k in range(3):
        generated(spark, 2000, 2).withColumn("id", F.col("id") + k * 2000).write.parquet(
            str(source / f"f{k}")
        )
        for f in (source / f"f{k}").glob("*.parquet"):
            f.rename(source / f"f{k}-{f.name}")
        shutil.rmtree(source / f"f{k}")
    schema = generated(spark, 1, 1).schema
    stream = spark.readStream.schema(schema).option("maxFilesPerTrigger", 2).parquet(str(source))
    ckpt = tmp_path / "ckpt"
    query = (
        stream.writeStream.format("zerobus")
        .options(**conn(local_server, table_name))
        .option("checkpointLocation", str(ckpt))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    assert query.exception() is None
    batches = [p for p in query.recentProgress if p["numInputRows"]]
    assert len(batches) >= 3 and sum(p["numInputRows"] for p in batches) == 6000
    assert len(list((ckpt / "commits").glob("[0-9]*"))) == len(batches)
    got = read_delta(local_server, table_name)
    assert sorted(got.column("id").to_pylist()) == list(range(6000))


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
