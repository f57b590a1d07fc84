"""Write Spark DataFrames to Zerobus: the ``zerobus`` Python data source (Spark 4).

Register the source once per session, then write with the options of
:class:`~pyzerobus.WrapperConfiguration` by name::

    from pyzerobus.spark import ZerobusDataSource

    spark.dataSource.register(ZerobusDataSource)
    (df.write.format("zerobus")
        .option("table_name", "main.app.events")
        .option("endpoint", "https://<workspace-id>.zerobus.<region>.cloud.databricks.com")
        .option("unity_catalog_url", "https://<workspace>.cloud.databricks.com")
        .mode("append").save())
    (stream_df.writeStream.format("zerobus").options(**conn)
        .option("checkpointLocation", ckpt).start())

How it runs. The driver checks the options and the schema before any task
starts: every Spark type is converted to the Arrow type Spark hands the
writer, and the engine compiles that schema in a dry run, so an unsupported
column (an interval, a variant, a map with double keys, a name with a space)
fails the write with its name. Each task then opens one
:class:`~pyzerobus.ZerobusWrapper` (its ``streams`` setting: ``auto``, the
default, opens a second stream to the table only while one stream's quota is
the limit; a count fixes it), hands it its partition as one stream of Arrow
record batches, exactly as Spark produced them (no row-by-row step, the
partition is never held in memory), waits until every row is acknowledged or has failed,
closes the wrapper and returns a :class:`ZerobusCommitMessage`. The driver's
``commit`` (once per write, or per micro-batch) adds the messages up into a
:class:`WriteSummary` and logs one line; ``abort`` logs what the tasks that
finished had landed.

Logging. Logger ``pyzerobus.spark``, at the level of the ``log_level``
option (``info`` by default; ``debug``, ``warning``, ``error``): one line
per task (on its executor) and one summary per commit or abort. Those run in
Python processes that Spark starts, not in the driver's own Python, and
Spark configures no logging there; so unless such a process has handlers of
its own, the lines go to its stderr: the executor's log for the tasks, the
driver's log (the console, in local mode) for ``commit`` and ``abort``::

    INFO pyzerobus.spark: zerobus write to main.app.events committed: 4 tasks:
        1,000,000 rows acknowledged, 0 failed, 221,000,000 bytes

With ``spark.sql.pyspark.worker.logging.enabled`` set, they are also rows of
``spark.tvf.python_worker_logs()`` (Spark 4.3 collects there the lines of
tasks and of a batch write's commit and abort, not those of a stream's
commits).

Options:
    Every field of WrapperConfiguration (``table_name``, ``endpoint``,
    ``client_id``, ``streams``, ``batch_rows``...), converted from Spark's
    strings to the field's type (``true``/``false``, integers). A task
    starts from :meth:`WrapperConfiguration.from_env` of its executor
    (``ZEROBUS_*``, ``DATABRICKS_HOST``, ``DATABRICKS_CLIENT_ID``,
    ``DATABRICKS_CLIENT_SECRET``) and the options override it: leave the
    secret out of the options, which travel in the query plan, and set it in
    the executors' environment instead. ``save(path)`` is the table name
    when ``table_name`` is not given.

    ``on_failed_rows``: ``fail`` (the default) fails the task when any row
    failed, after its wrapper is closed, so Spark retries it; ``quarantine``
    writes the failed rows to ``quarantine_path`` and goes on.

    ``log_level``: see Logging above.

    ``quarantine_path``: a directory (local, or a URI pyarrow's filesystems
    open: ``s3://``, ``gs://``, ``hdfs://``...). Each task attempt with
    failed rows writes one Parquet file there, the rows as they were sent
    plus ``_zerobus_error_kind``, ``_zerobus_error_message`` and
    ``_zerobus_may_have_landed``. To find the failed rows after the send,
    a task in this mode keeps a copy of its partition in an Arrow file in
    the local temporary directory while it sends. Errors that are not about
    rows (configuration, authentication) fail the task in both modes.

Delivery: at least once, for batch writes and streams alike. A task
returns only when the service has acknowledged every row it sent as
durable, and Spark commits a write (or a micro-batch, to the query's
checkpoint) only when every task has returned; so a job that succeeds, and
every micro-batch in the checkpoint's commits, has every row in the table
(those counted as failed aside: they failed the task, or are in the
quarantine files). Rows land more than once only after a failure:

- a task that fails after some of its rows were acknowledged (failed rows
  with ``on_failed_rows=fail``, an error of the engine or of the upstream
  plan, a lost executor): Spark runs the whole partition again and the rows
  acknowledged by the failed attempt land twice;
- a speculative copy of a task (``spark.speculation``): both copies land;
- a streaming query that stops or fails after a micro-batch was written (in
  full or in part) but before Spark committed it to the checkpoint: on
  restart, the micro-batch is written again;
- a stream that broke and reconnected inside the engine: rows sent but not
  yet acknowledged are sent again, and some of them may have been durable
  already (see the engine's delivery notes).

A job that succeeds without any task retried, any speculative task or any
reconnection has each row exactly once. Rows are never lost silently: a row
not acknowledged fails the task, or is quarantined. Nothing is rolled back:
Zerobus has no transactions, so a job that fails leaves the rows its tasks
had landed (``abort`` logs how many of those the finished tasks report; the
error of a failed task says how many it had landed). If the target needs
exactly once, give each row a key and deduplicate downstream.

Spark must reach pyzerobus in every executor's Python (install the wheel
on the cluster). In local mode the workers are this machine's Python.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import types as st
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceStreamArrowWriter,
    WriterCommitMessage,
)

from .config import WrapperConfiguration
from .errors import ConfigProblem, ConfigurationError, ConversionError, ZerobusError
from .result import TransmissionResult
from .wrapper import ZerobusWrapper

__all__ = [
    "SinkOptions",
    "WriteSummary",
    "ZerobusCommitMessage",
    "ZerobusDataSource",
    "check_schema",
    "use_spark_logging",
    "write_partition",
]

logger = logging.getLogger("pyzerobus.spark")

_CONFIG_TYPES = {f.name: f.type for f in dataclasses.fields(WrapperConfiguration)}
_SECRET_OPTIONS = {"client_secret"}
_ON_FAILED_ROWS = ("fail", "quarantine")
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# Options of this source that are not settings of the engine.
_SINK_OPTIONS = {"on_failed_rows", "quarantine_path", "log_level", "_fail_task_once_at_row"}
# Options Spark itself adds or reads; not ours, not errors.
_SPARK_OPTIONS = {"path", "checkpointlocation", "queryname", "mergeschema"}
# Failures that are not about the rows: no mode quarantines them.
_NOT_ROW_KINDS = {"configuration", "authentication", "token_refresh"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

# Extra columns of a quarantine file.
ERROR_KIND_COLUMN = "_zerobus_error_kind"
ERROR_MESSAGE_COLUMN = "_zerobus_error_message"
MAY_HAVE_LANDED_COLUMN = "_zerobus_may_have_landed"


# ---------------------------------------------------------------- options


@dataclass(frozen=True)
class SinkOptions:
    """The options of one write, converted and checked (picklable: it travels to every task).

    Attributes:
        settings: the WrapperConfiguration settings given as options, typed.
        on_failed_rows: ``"fail"`` or ``"quarantine"``.
        quarantine_path: where ``quarantine`` writes failed rows.
        fail_task_once_at_row: tests only: the first attempt of the task of
            partition 0 fails once it has sent this many rows.
        log_level: the level of the ``pyzerobus.spark`` logger in Spark's
            Python processes (``logging.INFO`` unless ``log_level`` says).

    """

    settings: dict[str, Any] = field(default_factory=dict)
    on_failed_rows: str = "fail"
    quarantine_path: Optional[str] = None
    fail_task_once_at_row: Optional[int] = None
    log_level: int = logging.INFO

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> SinkOptions:
        """Convert Spark's string options; raise one ConfigurationError naming every bad option.

        Option names are case-insensitive (Spark lower-cases them).
        """
        opts = {k.lower(): v for k, v in options.items()}
        problems: list[ConfigProblem] = []
        settings: dict[str, Any] = {}
        for name, raw in opts.items():
            if name in _CONFIG_TYPES:
                try:
                    settings[name] = _convert(name, raw, _CONFIG_TYPES[name])
                except ValueError as exc:
                    problems.append(ConfigProblem(name, str(exc)))
            elif name not in _SINK_OPTIONS and name not in _SPARK_OPTIONS:
                problems.append(ConfigProblem(name, "unknown option (see WrapperConfiguration's fields)"))
        if "table_name" not in settings and opts.get("path"):
            settings["table_name"] = opts["path"]

        on_failed = opts.get("on_failed_rows", "fail").strip().lower()
        if on_failed not in _ON_FAILED_ROWS:
            problems.append(
                ConfigProblem(
                    "on_failed_rows", f"must be 'fail' or 'quarantine', got {opts['on_failed_rows']!r}"
                )
            )
        quarantine_path = opts.get("quarantine_path") or None
        if on_failed == "quarantine" and not quarantine_path:
            problems.append(ConfigProblem("quarantine_path", "required with on_failed_rows=quarantine"))
        fail_at: Optional[int] = None
        if "_fail_task_once_at_row" in opts:
            try:
                fail_at = _convert("_fail_task_once_at_row", opts["_fail_task_once_at_row"], "int")
            except ValueError as exc:
                problems.append(ConfigProblem("_fail_task_once_at_row", str(exc)))
        level_name = opts.get("log_level", "info").strip().lower()
        if level_name not in _LOG_LEVELS:
            problems.append(
                ConfigProblem(
                    "log_level", f"must be one of {', '.join(_LOG_LEVELS)}, got {opts['log_level']!r}"
                )
            )
        problems.extend(_value_problems(settings, {p.setting for p in problems}))
        if problems:
            raise ConfigurationError(
                "invalid zerobus options: " + "; ".join(str(p) for p in problems), problems=problems
            )
        return cls(settings, on_failed, quarantine_path, fail_at, _LOG_LEVELS[level_name])

    def configuration(self, environ: Optional[Mapping[str, str]] = None) -> WrapperConfiguration:
        """The task's configuration: the environment (``os.environ`` by default), then the options."""
        return WrapperConfiguration.from_env(environ).replace(**self.settings)

    def __repr__(self) -> str:
        """Show the options, the secret as ``'***'``."""
        shown = {k: ("***" if k in _SECRET_OPTIONS else v) for k, v in self.settings.items()}
        return (
            f"SinkOptions(settings={shown!r}, on_failed_rows={self.on_failed_rows!r}, "
            f"quarantine_path={self.quarantine_path!r}, log_level={logging.getLevelName(self.log_level)!r})"
        )


def _convert(name: str, raw: str, want: Any) -> Any:
    """A Spark option's string as a setting of type ``want`` (bool, int, str, or a count or word)."""
    if want == "bool":
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"must be true or false, got {raw!r}")
    if want in ("int", "Union[int, str]"):  # the latter a count or a word (streams: auto)
        words = ("auto",) if want != "int" else ()
        if raw.strip().lower() in words:
            return raw.strip().lower()
        try:
            return int(raw.strip())
        except ValueError:
            shown = "" if name in _SECRET_OPTIONS else f", got {raw!r}"
            also = "".join(f" or {w}" for w in words)
            raise ValueError(f"must be an integer{also}{shown}") from None
    return raw


def _value_problems(settings: dict[str, Any], skip: set[str]) -> list[ConfigProblem]:
    """The engine's objections to the settings given as options (not to those left to the executors).

    The engine checks the options on the defaults: settings that are missing
    here may still come from the executors' environment, so only problems of
    settings given as options count.
    """
    given = {k: v for k, v in settings.items() if k not in skip}
    try:
        WrapperConfiguration(**{**WrapperConfiguration.defaults(), **given}).validate()
    except ConfigurationError as exc:
        return [p for p in exc.problems if p.setting in given]
    return []


# ---------------------------------------------------------------- schema

# Spark types with no Arrow form the engine can send, and what to do instead.
_UNSUPPORTED: dict[str, str] = {
    "CalendarIntervalType": "Spark cannot hand it over as Arrow; cast it to a string",
    "YearMonthIntervalType": "Zerobus has no interval type; cast it to a string or an integer",
    "VariantType": "send it as JSON text: to_json(column)",
    "GeometryType": "send it as WKB: st_asbinary(column)",
    "GeographyType": "send it as WKB: st_asbinary(column)",
}


def check_schema(schema: st.StructType) -> pa.Schema:
    """Check on the driver that every column of a Spark schema can be sent; return its Arrow schema.

    The Arrow schema is the one Spark hands the writer's tasks. The engine
    compiles it (a dry run of one row of nulls, no connection), so this
    raises :class:`~pyzerobus.ConversionError` naming the first column it
    refuses, with the Spark type when Spark is the one that cannot convert.
    """
    from pyspark.sql.pandas.types import to_arrow_schema

    for path, dt in _walk(schema, ""):
        reason = _UNSUPPORTED.get(type(dt).__name__)
        if reason:
            raise ConversionError(
                f"column {path!r} of type {dt.simpleString()} cannot be written to Zerobus: {reason}",
                op="check schema",
            )
    try:
        arrow = to_arrow_schema(schema, timezone="UTC")
    except Exception as exc:  # pragma: no cover - _UNSUPPORTED names the types Spark cannot convert
        raise ConversionError(f"the schema has no Arrow form: {exc}", op="check schema") from exc
    nulls = pa.table([pa.nulls(1, type=f.type) for f in arrow], schema=_nullable(arrow))
    dry = WrapperConfiguration(zerobus_writer_disabled=True, table_name="zerobus.spark.schema_check")
    with ZerobusWrapper(dry) as w:
        try:
            res = w.send_batch(nulls)
        except ConversionError as exc:
            raise ConversionError(
                f"the DataFrame cannot be written to Zerobus: {_reason(exc)}", op="check schema"
            ) from None
    if res.failed_count:  # pragma: no cover - one row: it fails with the send above
        raise ConversionError(f"the DataFrame cannot be written to Zerobus: {res.error}", op="check schema")
    return arrow


def _walk(dt: st.DataType, path: str) -> Iterator[tuple[str, st.DataType]]:
    """Every (column path, type) of a Spark type, depth first; paths as the engine names them."""
    yield path, dt
    if isinstance(dt, st.StructType):
        for f in dt.fields:
            yield from _walk(f.dataType, f"{path}.{f.name}" if path else f.name)
    elif isinstance(dt, st.ArrayType):
        yield from _walk(dt.elementType, path + "[]")
    elif isinstance(dt, st.MapType):
        yield from _walk(dt.keyType, path + ".key")
        yield from _walk(dt.valueType, path + ".value")
    elif isinstance(dt, st.UserDefinedType):
        yield from _walk(dt.sqlType(), path)


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema], metadata=schema.metadata)


def _reason(exc: ZerobusError) -> str:
    """The engine's reason for a row, without the layers of context before it."""
    err = exc.result.failed_rows[0].error if exc.result is not None and exc.result.failed_count else exc
    text = str(err)
    marker = "arrowproto: "
    return text[text.index(marker) + len(marker) :] if marker in text else text


# ---------------------------------------------------------------- tasks


@dataclass
class ZerobusCommitMessage(WriterCommitMessage):
    """What one task sent: returned to the driver's ``commit`` (or ``abort``).

    Attributes:
        partition_id, attempt: the task (Spark's partition and attempt numbers).
        rows_acknowledged: rows durable in the table.
        rows_failed: rows that failed (quarantined, in ``quarantine`` mode).
        bytes: encoded bytes of the records sent.
        failed_by_kind: failed rows by error kind (``"conversion"``...).
        quarantine_file: the Parquet file of the failed rows, if any.
        seconds: how long the task took, from its first batch.

    """

    partition_id: int = 0
    attempt: int = 0
    rows_acknowledged: int = 0
    rows_failed: int = 0
    bytes: int = 0
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    quarantine_file: Optional[str] = None
    seconds: float = 0.0


@dataclass(frozen=True)
class TaskInfo:
    """Which task attempt runs (partition, attempt); from Spark's TaskContext, or zeros outside Spark."""

    partition_id: int = 0
    attempt: int = 0

    @classmethod
    def current(cls) -> TaskInfo:
        """The running Spark task, or partition 0, attempt 0 when not in a task."""
        ctx = TaskContext.get()
        if ctx is None:
            return cls()
        return cls(ctx.partitionId(), ctx.attemptNumber())  # pragma: no cover - in executors


class InjectedFailureError(RuntimeError):
    """The failure ``_fail_task_once_at_row`` injects into a task (tests only)."""


def write_partition(
    options: SinkOptions,
    batches: Iterable[pa.RecordBatch],
    task: TaskInfo = TaskInfo(),
    environ: Optional[Mapping[str, str]] = None,
) -> ZerobusCommitMessage:
    """Send one partition's batches through one wrapper and say what landed (a task's work).

    The batches are handed to the engine as one stream, read as it sends.
    Raises when the task must fail: an error of the input (re-raised once
    the rows before it are acknowledged), failed rows with
    ``on_failed_rows=fail``, or a failure that is not about rows. The
    wrapper is always closed first.
    """
    it = iter(batches)
    first = next(it, None)
    if first is None:
        return ZerobusCommitMessage(task.partition_id, task.attempt)
    start = time.monotonic()
    config = options.configuration(environ)
    spill = _Spill(first.schema) if options.on_failed_rows == "quarantine" else None
    fail_at = options.fail_task_once_at_row
    if task.partition_id != 0 or task.attempt != 0:
        fail_at = None
    upstream: list[BaseException] = []

    # The engine pulls the batches on its own reading thread, which coverage
    # does not trace: the tests check what feed does through what landed.
    def feed() -> Iterator[pa.RecordBatch]:  # pragma: no cover
        rows = 0
        try:
            for batch in itertools.chain([first], it):
                if fail_at is not None and rows + batch.num_rows > fail_at:
                    head = batch.slice(0, fail_at - rows)
                    if head.num_rows:
                        if spill is not None:
                            spill.write(head)
                        yield head
                    raise InjectedFailureError(
                        f"injected failure after {fail_at} rows (partition {task.partition_id}, "
                        f"attempt {task.attempt})"
                    )
                if spill is not None:
                    spill.write(batch)
                rows += batch.num_rows
                yield batch
        except BaseException as exc:
            upstream.append(exc)
            raise

    try:
        with ZerobusWrapper(config) as w:
            try:
                res = w.send_batch(pa.RecordBatchReader.from_batches(first.schema, feed()))
            except ZerobusError as exc:
                if exc.result is None:  # pragma: no cover - a send's errors carry its result
                    raise
                res = exc.result
        msg = ZerobusCommitMessage(
            task.partition_id,
            task.attempt,
            res.successful_count,
            res.failed_count,
            res.batch_size_bytes,
            res.error_stats().by_kind if res.failed_count else {},
        )
        if upstream or res.input_error is not None:
            logger.error(
                "partition %d attempt %d failed reading its input: %d rows acknowledged before "
                "(they land again if the task is retried), %d failed",
                task.partition_id,
                task.attempt,
                res.successful_count,
                res.failed_count,
            )
            if upstream:
                raise upstream[0]
            raise res.input_error  # type: ignore[misc]  # pragma: no cover - pyarrow's own read errors
        if res.failed_count:
            _handle_failed(options, res, msg, spill, task)
    finally:
        if spill is not None:
            spill.remove()
    msg.seconds = time.monotonic() - start
    logger.info(
        "partition %d attempt %d: %d rows acknowledged, %d failed, %d bytes in %.1f s",
        task.partition_id,
        task.attempt,
        msg.rows_acknowledged,
        msg.rows_failed,
        msg.bytes,
        msg.seconds,
    )
    return msg


def _handle_failed(
    options: SinkOptions,
    res: TransmissionResult,
    msg: ZerobusCommitMessage,
    spill: Optional[_Spill],
    task: TaskInfo,
) -> None:
    """Fail the task, or quarantine the failed rows (``on_failed_rows``)."""
    err = res.error
    assert err is not None
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(msg.failed_by_kind.items()))
    landed = (
        f"{res.successful_count} acknowledged rows are in the table and land again if Spark retries the task"
        if res.successful_count
        else "none of its rows landed"
    )
    if spill is None or (err.kind in _NOT_ROW_KINDS and not res.successful_count):
        first = res.failed_rows[0]
        raise type(err)(
            f"partition {task.partition_id} attempt {task.attempt}: {res.failed_count} of {res.total_rows} "
            f"rows failed ({kinds}); {landed}; first failed row {first.index}: {first.error}",
            kind=err.kind,
            retryable=err.retryable,
            op="write partition",
            result=res,
        ) from err
    assert options.quarantine_path is not None
    msg.quarantine_file = _quarantine(options.quarantine_path, spill.read(), res, task)
    logger.warning(
        "partition %d attempt %d: %d rows failed (%s), quarantined in %s",
        task.partition_id,
        task.attempt,
        res.failed_count,
        kinds,
        msg.quarantine_file,
    )


class _Spill:
    """A copy of the partition in a temporary Arrow file, to take the failed rows from after the send."""

    def __init__(self, schema: pa.Schema) -> None:
        fd, self.path = tempfile.mkstemp(prefix="zerobus-spill-", suffix=".arrow")
        os.close(fd)
        self._writer: Optional[pa.ipc.RecordBatchFileWriter] = pa.ipc.new_file(self.path, schema)

    def write(self, batch: pa.RecordBatch) -> None:  # pragma: no cover - on the engine's thread (feed)
        assert self._writer is not None
        self._writer.write_batch(batch)

    def read(self) -> pa.Table:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        with pa.memory_map(self.path) as source:
            return pa.ipc.open_file(source).read_all()

    def remove(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


def _quarantine(path: str, data: pa.Table, res: TransmissionResult, task: TaskInfo) -> str:
    """Write the failed rows with their error as one Parquet file under ``path``; return its path."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    rows = list(res.failed_rows)
    failed = data.take(pa.array([r.index for r in rows], type=pa.int64()))
    failed = failed.append_column(ERROR_KIND_COLUMN, pa.array([r.kind for r in rows], pa.string()))
    failed = failed.append_column(ERROR_MESSAGE_COLUMN, pa.array([str(r.error) for r in rows], pa.string()))
    failed = failed.append_column(
        MAY_HAVE_LANDED_COLUMN, pa.array([r.may_have_landed for r in rows], pa.bool_())
    )
    if "://" in path:
        fs, root = pafs.FileSystem.from_uri(path)
    else:
        fs, root = pafs.LocalFileSystem(), os.path.abspath(path)
    fs.create_dir(root, recursive=True)
    name = f"part-{task.partition_id:05d}-attempt-{task.attempt}-{uuid.uuid4().hex[:12]}.parquet"
    where = f"{root.rstrip('/')}/{name}"
    pq.write_table(failed, where, filesystem=fs)
    return path.rstrip("/") + "/" + name


# ---------------------------------------------------------------- the driver


@dataclass
class WriteSummary:
    """The commit messages of a write (or of a micro-batch) added up.

    Attributes:
        tasks: tasks that reported (their commit message reached the driver).
        tasks_missing: tasks without a message (they failed).
        rows_acknowledged, rows_failed, bytes: sums over the tasks.
        failed_by_kind: failed rows by error kind.
        quarantine_files: the Parquet files of failed rows.

    """

    tasks: int = 0
    tasks_missing: int = 0
    rows_acknowledged: int = 0
    rows_failed: int = 0
    bytes: int = 0
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    quarantine_files: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, messages: Iterable[Optional[WriterCommitMessage]]) -> WriteSummary:
        """Add up the tasks' messages (None for a task that failed)."""
        s = cls()
        for m in messages:
            if not isinstance(m, ZerobusCommitMessage):
                s.tasks_missing += 1
                continue
            s.tasks += 1
            s.rows_acknowledged += m.rows_acknowledged
            s.rows_failed += m.rows_failed
            s.bytes += m.bytes
            for kind, n in m.failed_by_kind.items():
                s.failed_by_kind[kind] = s.failed_by_kind.get(kind, 0) + n
            if m.quarantine_file:
                s.quarantine_files.append(m.quarantine_file)
        return s

    def __str__(self) -> str:
        """Return e.g. ``4 tasks: 1,000,000 rows acknowledged, 2 failed (conversion: 2), ...``."""
        text = (
            f"{self.tasks} tasks: {self.rows_acknowledged:,} rows acknowledged, {self.rows_failed:,} failed"
        )
        if self.failed_by_kind:
            text += " (" + ", ".join(f"{k}: {n:,}" for k, n in sorted(self.failed_by_kind.items())) + ")"
        text += f", {self.bytes:,} bytes"
        if self.quarantine_files:
            text += f", failed rows in {len(self.quarantine_files)} quarantine files"
        if self.tasks_missing:
            text += f"; {self.tasks_missing} tasks did not report"
        return text


_STDERR_HANDLER = "_pyzerobus_spark_stderr"


def use_spark_logging(level: int) -> None:
    """Let the sink's log records out of a Python process that Spark started.

    Spark's Python processes (the tasks' workers, and those the driver starts
    for ``commit`` and ``abort``) configure no logging: the root logger is at
    WARNING without a handler, so the tasks' lines and the commit's summary
    would go nowhere. This sets the ``pyzerobus.spark`` logger to ``level``
    and, unless the process has a logging configuration of its own, gives it
    a handler that writes to the process's stderr: the executor's log for the
    tasks, the driver's log (the console, in local mode) for ``commit`` and
    ``abort``. With ``spark.sql.pyspark.worker.logging.enabled``, the records
    also reach Spark's handler on the root logger and become rows of
    ``spark.tvf.python_worker_logs()`` (Spark 4.3 collects those of tasks and
    of a batch write's commit and abort, not those of a stream's commits).
    """
    logger.setLevel(level)
    if any(getattr(h, _STDERR_HANDLER, False) for h in logger.handlers):
        return
    # Spark's own handler (worker logging) marks its records for the JVM; any other is the user's.
    if any(type(h.formatter).__name__ != "JSONFormatterWithMarker" for h in logging.getLogger().handlers):
        return
    handler = logging.StreamHandler(sys.__stderr__)  # not Spark's wrapper of sys.stderr
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    setattr(handler, _STDERR_HANDLER, True)
    logger.addHandler(handler)


class _Writer:
    """What the batch and the streaming writers share: the options, and a task's write."""

    def __init__(self, options: SinkOptions, schema: pa.Schema) -> None:
        self.options = options
        self.arrow_schema = schema

    @property
    def table(self) -> str:
        return str(self.options.settings.get("table_name", "(table from the environment)"))

    def write(self, iterator: Iterator[pa.RecordBatch]) -> ZerobusCommitMessage:
        """Send this task's partition (see :func:`write_partition`)."""
        use_spark_logging(self.options.log_level)
        return write_partition(self.options, iterator, TaskInfo.current())


class ZerobusWriter(_Writer, DataSourceArrowWriter):
    """The batch writer of :class:`ZerobusDataSource`: each task sends its partition's Arrow batches."""

    def commit(self, messages: list[Optional[WriterCommitMessage]]) -> None:
        """Log what the write sent (on the driver, once every task succeeded)."""
        use_spark_logging(self.options.log_level)
        logger.info("zerobus write to %s committed: %s", self.table, WriteSummary.of(messages))

    def abort(self, messages: list[Optional[WriterCommitMessage]]) -> None:
        """Log what the finished tasks had landed; nothing is rolled back."""
        use_spark_logging(self.options.log_level)
        s = WriteSummary.of(messages)
        logger.error(
            "zerobus write to %s aborted: %s. Their %s acknowledged rows stay in the table, and "
            "so do the rows the failed tasks had acknowledged (their errors say how many).",
            self.table,
            s,
            f"{s.rows_acknowledged:,}",
        )


class ZerobusStreamWriter(_Writer, DataSourceStreamArrowWriter):
    """The Structured Streaming writer: each micro-batch is acknowledged before Spark commits it."""

    def commit(self, messages: list[Optional[WriterCommitMessage]], batchId: int) -> None:  # noqa: N803
        """Log what the micro-batch sent; every row of it is durable when this runs."""
        use_spark_logging(self.options.log_level)
        logger.info(
            "zerobus micro-batch %d to %s committed: %s", batchId, self.table, WriteSummary.of(messages)
        )

    def abort(self, messages: list[Optional[WriterCommitMessage]], batchId: int) -> None:  # noqa: N803
        """Log what the finished tasks of the micro-batch had landed (it runs again after a restart)."""
        use_spark_logging(self.options.log_level)
        s = WriteSummary.of(messages)
        logger.error(
            "zerobus micro-batch %d to %s aborted: %s; those %s rows stay in the table and land "
            "again when the micro-batch is retried.",
            batchId,
            self.table,
            s,
            f"{s.rows_acknowledged:,}",
        )


class ZerobusDataSource(DataSource):
    """The ``zerobus`` data source: ``df.write.format("zerobus")`` and ``writeStream.format("zerobus")``.

    Register it with ``spark.dataSource.register(ZerobusDataSource)``. Writes
    only append (the save mode ``append``); the options are described in the
    module documentation. The options and the schema are checked when the
    write is planned, on the driver, before any task starts.
    """

    @classmethod
    def name(cls) -> str:
        """Return ``"zerobus"``."""
        return "zerobus"

    def _prepare(self, schema: st.StructType, overwrite: bool) -> tuple[SinkOptions, pa.Schema]:
        if overwrite:
            raise ConfigurationError(
                "Zerobus only appends rows: write with mode('append') (outputMode('append') for streams)"
            )
        options = SinkOptions.parse(self.options)
        return options, check_schema(schema)

    def writer(self, schema: st.StructType, overwrite: bool) -> ZerobusWriter:
        """The batch writer, once the options and the schema are checked."""
        return ZerobusWriter(*self._prepare(schema, overwrite))

    def streamWriter(self, schema: st.StructType, overwrite: bool) -> ZerobusStreamWriter:  # noqa: N802
        """The streaming writer, once the options and the schema are checked."""
        return ZerobusStreamWriter(*self._prepare(schema, overwrite))
