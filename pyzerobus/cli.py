"""The ``pyzerobus`` command: send files to a table, or run the local server.

``pyzerobus send`` streams Parquet, Arrow IPC (file and stream), CSV and JSON
lines files into one table, each file batch by batch (never a whole file in
memory) and as a send of its own, so that files of different schemas can go
together and failed rows are reported per file. ``pyzerobus local`` runs the
zerobus-local server in the foreground. ``python -m pyzerobus`` is the same
command.

Exit status (see ``pyzerobus send --help``): 0 every row acknowledged; 1 some
rows failed or a file could not be read; 2 a usage or configuration error; 3
the connection or the credentials failed; 130 interrupted.

Where settings come from, the last winning: defaults, the ``--config`` YAML
file, ``ZEROBUS_*`` / ``DATABRICKS_*`` variables (as
:meth:`WrapperConfiguration.from_yaml` applies them), the flags.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import difflib
import glob
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any, Optional, Union

import pyarrow as pa

from . import __version__
from .config import WrapperConfiguration
from .errors import ConfigurationError, ZerobusError
from .result import TransmissionResult
from .wrapper import INTERRUPTED_CLOSE_S, ZerobusWrapper

__all__ = [
    "EXIT_CONNECTION",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_INTERRUPTED = 130

# A send that fails with one of these kinds ends the run: the next files would meet the same.
_CONNECTION_KINDS = frozenset({"authentication", "token_refresh", "connection", "retry_exhausted"})

# The setting behind each curated flag, to name the flag in error messages.
_FLAG_OF = {
    "table_name": "--table",
    "endpoint": "--endpoint",
    "unity_catalog_url": "--workspace-url",
    "client_id": "--client-id",
    "tls_ca_file": "--tls-ca-file",
    "streams": "--streams",
    "transport": "--transport",
    "arrow_compression": "--arrow-compression",
    "batch_rows": "--batch-rows",
    "max_concurrent_batches": "--max-concurrent-batches",
}

_DRY_RUN_TABLE = "main.default.dry_run"

# Extensions of each input format; a compression suffix after them is allowed for CSV and JSON.
_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".arrows": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_COMPRESSION = (".gz", ".bz2", ".zst", ".lz4")
_FORMATS = ("auto", "parquet", "arrow", "csv", "json")

# How often a progress line is printed when standard error is not a terminal (seconds).
_PLAIN_INTERVAL_S = 5.0
# How often the progress bar is redrawn on a terminal (seconds).
_BAR_INTERVAL_S = 0.25

# Extra columns of the quarantine files.
QUARANTINE_COLUMNS = (
    "_zerobus_source_row",
    "_zerobus_error_kind",
    "_zerobus_error_message",
    "_zerobus_may_have_landed",
)


class UsageError(Exception):
    """A bad command line or setting: exit status 2."""


def _streams_arg(text: str) -> Union[int, str]:
    """``--streams``: a count or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or auto, got {text!r}") from None


# ---------------------------------------------------------------- inputs


@dataclasses.dataclass
class InputFile:
    """One file to send: its format, size on disk and (when the format says so cheaply) its rows."""

    path: str
    format: str
    size: int
    rows: Optional[int] = None


def _sniff(path: str) -> Optional[str]:
    """The format of a file by its leading bytes (Parquet or Arrow IPC), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
        return "arrow"
    return None


def detect_format(path: str, forced: str = "auto") -> Optional[str]:
    """The format of ``path``: ``forced`` unless "auto", else by extension, else by content."""
    if forced != "auto":
        return forced
    name = path.lower()
    for suffix in _COMPRESSION:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            fmt = _EXTENSIONS.get(os.path.splitext(name)[1])
            return fmt if fmt in ("csv", "json") else None
    return _EXTENSIONS.get(os.path.splitext(name)[1]) or _sniff(path)


def _known_rows(path: str, fmt: str) -> Optional[int]:
    """The row count, when the file says it without being read (Parquet footer, IPC file footer)."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            rows: int = pq.ParquetFile(path).metadata.num_rows
            return rows
        if fmt == "arrow" and _ipc_is_file(path):
            rf = pa.ipc.open_file(pa.memory_map(path))
            return sum(int(rf.get_batch(i).num_rows) for i in range(rf.num_record_batches))
    except (OSError, pa.ArrowException):
        return None  # the send reports what is wrong with the file
    return None


def _walk(directory: str) -> Iterator[str]:
    """The files under a directory, recursively, sorted, without hidden or ``_``-prefixed names."""
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(names):
            if not name.startswith((".", "_")):
                yield os.path.join(root, name)


def collect_inputs(args: Sequence[str], forced: str = "auto") -> tuple[list[InputFile], list[str]]:
    """The files named by ``args`` (files, directories, glob patterns), in order, each once.

    Returns the files and those skipped in directories because their format
    is unknown. A named file of unknown format, or an argument that matches
    nothing, is a :class:`UsageError`.
    """
    files: list[InputFile] = []
    skipped: list[str] = []
    seen: set[str] = set()

    def add(path: str, named: bool) -> None:
        real = os.path.realpath(path)
        if real in seen:
            return
        fmt = detect_format(path, forced)
        if fmt is None:
            if named:
                raise UsageError(f"{path}: unknown format (name it with --format, or use a known extension)")
            skipped.append(path)
            return
        seen.add(real)
        files.append(InputFile(path, fmt, os.path.getsize(path), _known_rows(path, fmt)))

    for arg in args:
        if os.path.isdir(arg):
            for path in _walk(arg):
                add(path, named=False)
        elif os.path.exists(arg):
            add(arg, named=True)
        elif glob.has_magic(arg):
            matches = sorted(p for p in glob.glob(arg, recursive=True) if os.path.isfile(p))
            if not matches:
                raise UsageError(f"{arg}: no file matches")
            for path in matches:
                add(path, named=False)
        else:
            raise UsageError(f"{arg}: no such file or directory")
    if not files:
        unknown = f" ({len(skipped)} of unknown format skipped)" if skipped else ""
        raise UsageError("no file to send" + unknown)
    return files, skipped


def _ipc_is_file(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(6) == b"ARROW1"


def open_reader(f: InputFile) -> pa.RecordBatchReader:
    """A reader of one file's batches; nothing is read before they are pulled."""
    if f.format == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(f.path)
        return pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches())
    if f.format == "arrow":
        source = pa.memory_map(f.path)
        if _ipc_is_file(f.path):
            rf = pa.ipc.open_file(source)
            batches = (rf.get_batch(i) for i in range(rf.num_record_batches))
            return pa.RecordBatchReader.from_batches(rf.schema, batches)
        return pa.ipc.open_stream(source)
    import pyarrow.dataset as ds

    return ds.dataset(f.path, format=f.format).scanner().to_reader()


@dataclasses.dataclass
class _Counter:
    """Rows and Arrow bytes read so far from the file being sent (written by the engine's reads)."""

    rows: int = 0
    nbytes: int = 0


def _counted(reader: pa.RecordBatchReader, counter: _Counter) -> pa.RecordBatchReader:
    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            counter.rows += batch.num_rows
            counter.nbytes += batch.nbytes
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


# ---------------------------------------------------------------- progress


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class ProgressDisplay:
    """Rows, MB, MB/s, files done and ETA of a run, on standard error.

    On a terminal, one line redrawn in place (a bar when the total of rows is
    known); otherwise one plain line every few seconds. ``update_to`` is the
    hook of the wrapper's waits: the rows of the current file resolved so far.
    """

    def __init__(
        self,
        files: Sequence[InputFile],
        stream: IO[str],
        *,
        enabled: bool = True,
        interval: Optional[float] = None,
    ) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._enabled = enabled
        if interval is None:
            interval = _BAR_INTERVAL_S if self._tty else _PLAIN_INTERVAL_S
        self._interval = interval
        known = [f.rows for f in files]
        self._total: Optional[int] = None if None in known else sum(r or 0 for r in known)
        self._files_total = len(files)
        self._size_total = sum(f.size for f in files)
        self.files_done = 0
        self._size_done = 0
        self.rows_done = 0
        self.bytes_done = 0
        self._current: Optional[_Counter] = None
        self._current_rows = 0
        self._start = time.monotonic()
        self._last = self._start

    def file_started(self, counter: _Counter) -> None:
        """A file's send began; ``counter`` counts what its reader has read."""
        self._current = counter
        self._current_rows = 0

    def file_finished(self, f: InputFile, rows: int, nbytes: int) -> None:
        """A file's send ended with ``rows`` rows resolved (``nbytes`` of Arrow data)."""
        self._current = None
        self._current_rows = 0
        self.files_done += 1
        self._size_done += f.size
        self.rows_done += rows
        self.bytes_done += nbytes
        self._maybe_show()

    def update_to(self, rows: int) -> None:
        """The rows of the current file resolved so far."""
        self._current_rows = rows
        self._maybe_show()

    def _maybe_show(self) -> None:
        now = time.monotonic()
        if self._enabled and now - self._last >= self._interval:
            self._last = now
            self._show(now)

    def line(self, now: Optional[float] = None) -> str:
        """The progress as one line of text."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rows, nbytes = self.rows_done + self._current_rows, self.bytes_done
        cur = self._current
        if cur is not None and cur.rows:
            nbytes += int(cur.nbytes * min(1.0, self._current_rows / cur.rows))
        rate = rows / elapsed
        parts = [f"{rows:,} rows" if self._total is None else f"{rows:,}/{self._total:,} rows"]
        parts.append(f"{nbytes / 1e6:,.1f} MB")
        parts.append(f"{nbytes / 1e6 / elapsed:,.1f} MB/s")
        parts.append(f"files {self.files_done}/{self._files_total}")
        eta: Optional[float] = None
        if self._total is not None and rate > 0:
            eta = max(0, self._total - rows) / rate
        elif self._size_done and self._size_total:
            eta = elapsed * (self._size_total - self._size_done) / self._size_done
        parts.append("ETA " + (_duration(eta) if eta is not None else "?"))
        text = "  ".join(parts)
        if self._tty and self._total:
            done = min(1.0, rows / self._total)
            filled = int(done * 20)
            text = f"[{'#' * filled}{'.' * (20 - filled)}] {done:4.0%}  {text}"
        return text

    def _show(self, now: float) -> None:
        if self._tty:
            self._stream.write("\r" + self.line(now) + "\x1b[K")
        else:
            self._stream.write("pyzerobus: " + self.line(now).replace("  ", ", ") + "\n")
        self._stream.flush()

    def close(self) -> None:
        """End the display (a terminal's line is finished)."""
        if self._enabled and self._tty:
            self._show(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()


# ---------------------------------------------------------------- quarantine


def write_quarantine(directory: str, f: InputFile, res: TransmissionResult, used: set[str]) -> str:
    """Write the failed rows of one file's send as Parquet, with why each failed; return the path.

    The file is read again batch by batch and only the failed rows are kept,
    with four more columns (:data:`QUARANTINE_COLUMNS`): the row's number in
    the file, the error kind and message, and whether it may have landed.
    """
    import pyarrow.parquet as pq

    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(f.path) + ".failed"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}-{n}"
    used.add(name)
    path = os.path.join(directory, name + ".parquet")

    indices: list[int] = []
    kinds: list[str] = []
    messages: list[str] = []
    landed: list[bool] = []
    text: dict[int, str] = {}  # rows that failed together share one error
    for row in res.failed_rows:
        indices.append(row.index)
        kinds.append(row.kind)
        messages.append(text.setdefault(id(row.error), str(row.error)))
        landed.append(row.may_have_landed)

    reader = open_reader(f)
    schema = reader.schema
    for col, typ in zip(QUARANTINE_COLUMNS, (pa.int64(), pa.string(), pa.string(), pa.bool_())):
        schema = schema.append(pa.field(col, typ))
    with pq.ParquetWriter(path, schema) as writer:
        offset = 0
        for batch in reader:
            if offset > indices[-1]:
                break
            lo = bisect.bisect_left(indices, offset)
            hi = bisect.bisect_left(indices, offset + batch.num_rows)
            offset += batch.num_rows
            if lo == hi:
                continue
            rows = indices[lo:hi]
            taken = batch.take(pa.array([i - (offset - batch.num_rows) for i in rows], pa.int64()))
            extra = [
                pa.array(rows, pa.int64()),
                pa.array(kinds[lo:hi], pa.string()),
                pa.array(messages[lo:hi], pa.string()),
                pa.array(landed[lo:hi], pa.bool_()),
            ]
            writer.write_batch(pa.RecordBatch.from_arrays([*taken.columns, *extra], schema=schema))
    return path


# ---------------------------------------------------------------- sending


@dataclasses.dataclass
class RunSummary:
    """What a run of ``pyzerobus send`` did."""

    table: str
    dry_run: bool
    files: int
    files_sent: int = 0
    unreadable: list[str] = dataclasses.field(default_factory=list)
    rows: int = 0
    acknowledged: int = 0
    failed: int = 0
    may_have_landed: int = 0
    failed_by_kind: dict[str, int] = dataclasses.field(default_factory=dict)
    nbytes: int = 0
    seconds: float = 0.0
    quarantined: list[str] = dataclasses.field(default_factory=list)
    interrupted: bool = False
    stopped: str = ""  # why the run stopped before the last file

    def add(self, res: TransmissionResult, nbytes: int) -> None:
        """Count one send's result."""
        self.rows += res.total_rows
        self.acknowledged += res.successful_count
        self.failed += res.failed_count
        self.nbytes += nbytes
        if res.failed_count:
            st = res.error_stats()
            self.may_have_landed += st.may_have_landed
            for kind, n in st.by_kind.items():
                self.failed_by_kind[kind] = self.failed_by_kind.get(kind, 0) + n

    def lines(self) -> list[str]:
        """The summary as lines of text."""
        secs = max(self.seconds, 1e-9)
        verb = "converted" if self.dry_run else "acknowledged"
        head = f"{self.files_sent} of {self.files} files" + (
            " (dry run: converted, nothing sent)" if self.dry_run else f" sent to {self.table}"
        )
        out = [head + f" in {self.seconds:,.1f} s"]
        failed = f"{self.failed:,} failed"
        if self.failed_by_kind:
            failed += " (" + ", ".join(f"{k}: {n:,}" for k, n in sorted(self.failed_by_kind.items())) + ")"
        if self.may_have_landed:
            failed += f", {self.may_have_landed:,} of them may have landed"
        out.append(f"rows: {self.rows:,} read, {self.acknowledged:,} {verb}, {failed}")
        out.append(
            f"data: {self.nbytes / 1e6:,.1f} MB of Arrow data, {self.nbytes / 1e6 / secs:,.1f} MB/s, "
            f"{self.acknowledged / secs:,.0f} rows/s"
        )
        for path in self.unreadable:
            out.append(f"unreadable: {path}")
        for path in self.quarantined:
            out.append(f"quarantine: {path}")
        if self.stopped:
            out.append(f"stopped: {self.stopped}")
        return out

    def exit_status(self) -> int:
        """The exit status of the run (interrupts and stops are decided by the caller)."""
        return EXIT_PARTIAL if self.failed or self.unreadable else EXIT_OK


class Sender:
    """Sends files one after the other through one wrapper, counting into a :class:`RunSummary`."""

    def __init__(
        self,
        wrapper: ZerobusWrapper,
        summary: RunSummary,
        progress: ProgressDisplay,
        quarantine: Optional[str],
        err: IO[str],
    ) -> None:
        self._w = wrapper
        self._core = wrapper._core  # the sliced waits with a progress hook, and the cancelled result
        self.summary = summary
        self._progress = progress
        self._quarantine = quarantine
        self._err = err
        self._names: set[str] = set()

    def run(self, files: Sequence[InputFile]) -> int:
        """Send every file and return the exit status; a connection or table failure stops early."""
        for f in files:
            status = self._send_file(f)
            if status is not None:
                return status
        return self.summary.exit_status()

    def _send_file(self, f: InputFile) -> Optional[int]:
        counter = _Counter()
        try:
            op, _ = self._core.start(_counted(open_reader(f), counter))
        except (OSError, pa.ArrowException, ZerobusError) as exc:
            self.summary.unreadable.append(f"{f.path}: {exc}")
            self._err.write(f"pyzerobus: {f.path}: cannot read: {exc}\n")
            self._progress.file_finished(f, 0, 0)
            return None
        self._progress.file_started(counter)
        try:
            self._core.wait_op(op, None, self._progress)
        except KeyboardInterrupt:
            res = self._core.abandon(op)  # rows not yet written fail; those acknowledged are stored
            self.summary.add(res, counter.nbytes)
            raise
        res = self._core.take_result(op)
        self._core.drain_logs()
        self.summary.add(res, counter.nbytes)
        self.summary.files_sent += 1
        self._progress.file_finished(f, res.total_rows, counter.nbytes)
        if res.input_error is not None:
            self.summary.unreadable.append(f"{f.path}: {res.input_error} (after {res.total_rows:,} rows)")
        if res.failed_count and self._quarantine:
            self.summary.quarantined.append(write_quarantine(self._quarantine, f, res, self._names))
        if res.failed_count and res.successful_count == 0 and res.error is not None:
            if res.error.kind in _CONNECTION_KINDS:
                self.summary.stopped = f"{f.path}: {res.error}"
                return EXIT_CONNECTION
            if res.error.kind == "configuration":
                self.summary.stopped = f"{f.path}: {res.error}"
                return EXIT_USAGE
        return None


# ---------------------------------------------------------------- settings


def _parse_value(name: str, kind: str, text: str) -> Any:
    if kind == "bool":
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"setting {name}: {text!r} is not a boolean (true or false)")
    if kind == "int":
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            raise UsageError(f"setting {name}: {text!r} is not an integer") from None
    if kind == "Union[int, str]":  # a count or a word, such as streams=auto
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            return text
    return text


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as settings of :class:`WrapperConfiguration`, typed by its fields."""
    types = {f.name: str(f.type) for f in dataclasses.fields(WrapperConfiguration)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key == "zerobus_endpoint":
            key = "endpoint"
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        if key not in types:
            close = difflib.get_close_matches(key, types, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"unknown setting {key!r}{hint}; see `pyzerobus send --help`")
        out[key] = _parse_value(key, types[key], value)
    return out


def build_config(args: argparse.Namespace) -> WrapperConfiguration:
    """Defaults, then the ``--config`` file, then the environment, then the flags."""
    try:
        cfg = WrapperConfiguration.from_yaml(args.config) if args.config else WrapperConfiguration.from_env()
    except OSError as exc:
        raise UsageError(f"--config {args.config}: {exc.strerror or exc}") from None
    changes: dict[str, Any] = {}
    for name in _FLAG_OF:
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    changes.update(parse_settings(args.set or []))
    if args.dry_run:
        changes["zerobus_writer_disabled"] = True
        if not (changes.get("table_name") or cfg.table_name):
            changes["table_name"] = _DRY_RUN_TABLE
    if args.debug_dir:
        changes.update(
            debug_enabled=True,
            debug_arrow_enabled=True,
            debug_protobuf_enabled=True,
            debug_output_dir=args.debug_dir,
        )
    return cfg.replace(**changes)


def _describe_config_error(exc: ConfigurationError) -> str:
    if not exc.problems:
        return str(exc)
    lines = ["invalid configuration:"]
    for p in exc.problems:
        flag = _FLAG_OF.get(p.setting)
        lines.append(f"  {p.setting}" + (f" ({flag})" if flag else "") + f": {p.message}")
    return "\n".join(lines)


# ---------------------------------------------------------------- commands


def _cmd_send(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    if args.quarantine and os.path.exists(args.quarantine) and not os.path.isdir(args.quarantine):
        raise UsageError(f"--quarantine {args.quarantine}: not a directory")
    files, skipped = collect_inputs(args.inputs, args.format)
    for path in skipped:
        err.write(f"pyzerobus: skipped {path}: unknown format\n")
    try:
        config = build_config(args)
        wrapper = ZerobusWrapper(config)
    except ConfigurationError as exc:
        raise UsageError(_describe_config_error(exc)) from None
    summary = RunSummary(config.table_name, args.dry_run, len(files))
    progress = ProgressDisplay(files, err, enabled=not args.quiet and not args.no_progress)
    sender = Sender(wrapper, summary, progress, args.quarantine, err)
    start = time.monotonic()
    try:
        status = sender.run(files)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
        summary.interrupted = True
    finally:
        progress.close()
    try:
        if status == EXIT_INTERRUPTED:
            wrapper.shutdown(timeout=INTERRUPTED_CLOSE_S)
        else:
            wrapper.shutdown()
    except ZerobusError as exc:
        err.write(f"pyzerobus: closing the wrapper: {exc}\n")
    summary.seconds = time.monotonic() - start
    if status == EXIT_INTERRUPTED:
        if args.dry_run:
            said = f"{summary.acknowledged:,} rows converted"
        else:
            said = f"{summary.acknowledged:,} rows certainly acknowledged (stored in the table)"
            if summary.may_have_landed:
                said += f", {summary.may_have_landed:,} written but not acknowledged (they may have landed)"
        err.write(
            f"pyzerobus: interrupted after {summary.files_sent} of {summary.files} files: {said}; "
            "the rest were not sent\n"
        )
    if not args.quiet or status != EXIT_OK:
        for line in summary.lines():
            out.write(line + "\n")
    return status


def _find_local() -> str:
    """The zerobus-local binary (as :func:`pyzerobus.testing.find_zerobus_local` looks for it)."""
    try:
        from .testing import find_zerobus_local
    except ImportError:  # pragma: no cover - pyzerobus.testing needs pytest
        shipped = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "zerobus-local")
        for path in (os.environ.get("ZEROBUS_LOCAL_BIN"), shipped, shutil.which("zerobus-local")):
            if path and os.access(path, os.X_OK):
                return path
        raise FileNotFoundError(
            "zerobus-local was not found: set ZEROBUS_LOCAL_BIN, install a pyzerobus wheel that "
            "ships it, or build it from a source checkout (`make build`)"
        ) from None
    return find_zerobus_local()


def _cmd_local(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    try:
        binary = _find_local()
    except FileNotFoundError as exc:
        err.write(f"pyzerobus local: {exc}\n")
        return EXIT_USAGE
    extra = list(args.serve_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    cmd = [binary, "serve", "--data-dir", args.data_dir, "--client", args.client, *extra]
    client_id, _, secret = args.client.partition(":")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            out.write(line)
            out.flush()
            if line.startswith("zerobus-local ready"):
                fields = dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv)
                err.write(
                    "pyzerobus local: to send to it from another shell:\n"
                    f"  export ZEROBUS_ENDPOINT={fields.get('endpoint', '')} "
                    f"DATABRICKS_HOST={fields.get('workspace_url', '')} "
                    f"DATABRICKS_CLIENT_ID={client_id} DATABRICKS_CLIENT_SECRET={secret}\n"
                    + (f"  export ZEROBUS_TLS_CA_FILE={fields['ca_file']}\n" if "ca_file" in fields else "")
                    + "  pyzerobus send FILES --table main.default.events\n"
                    "Ctrl-C stops it (what it acknowledged is written to its Delta tables first).\n"
                )
                err.flush()
        return proc.wait()
    except KeyboardInterrupt:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=60)
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            return EXIT_INTERRUPTED


# ---------------------------------------------------------------- parser


_SEND_DESCRIPTION = """\
Send Parquet, Arrow IPC (file or stream), CSV and JSON lines files to one
Delta table through Zerobus Ingest. Each file is read batch by batch, never
whole in memory, and sent as a send of its own (files may differ in schema).
A directory stands for the files under it (recursively, sorted by name,
hidden and _-prefixed names left out); a quoted GLOB is expanded (** too).
"""

_SEND_EPILOG = """\
settings, the last winning:
  defaults < --config FILE < ZEROBUS_* and DATABRICKS_* variables < flags
  (ZEROBUS_<SETTING> sets any setting, e.g. ZEROBUS_ENDPOINT, ZEROBUS_TABLE_NAME,
  ZEROBUS_STREAMS; DATABRICKS_HOST, DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET
  fill unity_catalog_url, client_id and client_secret when those are empty).
  --set KEY=VALUE sets any setting of pyzerobus.WrapperConfiguration:
  {settings}

progress and summary:
  On a terminal a progress bar (rows, MB, MB/s, files done, ETA) on stderr,
  otherwise one line every {plain:.0f} s; at the end a summary on stdout: files,
  rows read / acknowledged / failed (by kind), MB of Arrow data, seconds, rows/s.

quarantine:
  With --quarantine DIR, the failed rows of each file are written to
  DIR/<file name>.failed.parquet with the columns of the file and
  _zerobus_source_row (the row's number in the file), _zerobus_error_kind,
  _zerobus_error_message and _zerobus_may_have_landed (true: the row may be in
  the table already; do not send it again blindly).

exit status:
  0    every row acknowledged (with --dry-run: converted)
  1    some rows failed, or a file could not be read
  2    usage or configuration error (a bad flag or setting, an unknown table)
  3    connection or authentication error (the run stops at the first)
  130  interrupted (Ctrl-C): the send in progress is cancelled, and the
       rows certainly acknowledged so far are reported

examples:
  pyzerobus send events/ --table main.app.events --config zerobus.yaml
  ZEROBUS_ENDPOINT=... DATABRICKS_HOST=... pyzerobus send 'data/**/*.parquet' \\
      --table main.app.events --streams 4 --quarantine failed/
  pyzerobus send sample.csv --dry-run --debug-dir debug/
"""

_MAIN_DESCRIPTION = """\
Stream Arrow data into Databricks Zerobus Ingest (Delta tables).
Run `pyzerobus COMMAND --help` for a command's options; `python -m pyzerobus`
is the same command.
"""


def _settings_help() -> str:
    names = [f.name for f in dataclasses.fields(WrapperConfiguration)]
    lines: list[str] = []
    line = ""
    for name in names:
        if line and len(line) + len(name) + 2 > 76:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {name}" if line else name
    lines.append(line)
    return "\n  ".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``pyzerobus`` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="pyzerobus",
        description=_MAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pyzerobus {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    send = sub.add_parser(
        "send",
        help="send Parquet, Arrow IPC, CSV and JSON lines files to a table",
        description=_SEND_DESCRIPTION,
        epilog=_SEND_EPILOG.format(settings=_settings_help(), plain=_PLAIN_INTERVAL_S),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("inputs", nargs="+", metavar="FILE|DIR|GLOB", help="what to send")
    send.add_argument("-t", "--table", dest="table_name", metavar="CATALOG.SCHEMA.TABLE", help="the table")
    send.add_argument("-c", "--config", metavar="FILE", help="a YAML file of settings (the engine's keys)")
    send.add_argument(
        "--format", choices=_FORMATS, default="auto", help="the format of every file (default: by extension)"
    )

    conn = send.add_argument_group("connection (or from --config / the environment)")
    conn.add_argument("--endpoint", metavar="URL", help="the Zerobus endpoint")
    conn.add_argument(
        "--workspace-url", dest="unity_catalog_url", metavar="URL", help="the workspace URL (OAuth tokens)"
    )
    conn.add_argument("--client-id", metavar="ID", help="the service principal (the secret: env or --config)")
    conn.add_argument("--tls-ca-file", metavar="PEM", help="CA certificates to trust instead of the system's")

    tuning = send.add_argument_group("sending")
    tuning.add_argument(
        "--streams",
        type=_streams_arg,
        metavar="N|auto",
        help="streams the table may use at once, or auto (auto)",
    )
    tuning.add_argument("--transport", metavar="NAME", help="the wire format: proto or arrow (proto)")
    tuning.add_argument(
        "--arrow-compression",
        metavar="NAME",
        help="compression of the arrow transport: none, lz4 or zstd (none)",
    )
    tuning.add_argument("--batch-rows", type=int, metavar="N", help="the most rows per chunk (10000)")
    tuning.add_argument(
        "--max-concurrent-batches",
        type=int,
        metavar="N",
        help="chunks in flight at once (8 per stream the table may use, at least 16)",
    )
    tuning.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any other setting (repeatable; the list is below)",
    )

    output = send.add_argument_group("checking and output")
    output.add_argument("--quarantine", metavar="DIR", help="write failed rows to DIR as Parquet")
    output.add_argument(
        "--dry-run", action="store_true", help="convert and validate every row, never connect"
    )
    output.add_argument("--debug-dir", metavar="DIR", help="write debug files (Arrow and protobuf) to DIR")
    output.add_argument("--no-progress", action="store_true", help="no progress display")
    output.add_argument("-q", "--quiet", action="store_true", help="no progress; a summary only on failure")
    output.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    send.set_defaults(func=_cmd_send)

    local = sub.add_parser(
        "local",
        help="run the local Zerobus server (zerobus-local) in the foreground",
        usage="pyzerobus local [-h] [--data-dir DIR] [--client ID:SECRET] [-- SERVE_FLAGS...]",
        description=(
            "Run zerobus-local, the local Zerobus server shipped with the wheel (or found through\n"
            "$ZEROBUS_LOCAL_BIN or PATH), in the foreground until Ctrl-C. It prints its ready line,\n"
            "then how to point `pyzerobus send` at it. Arguments after -- go to `zerobus-local serve`\n"
            "(e.g. -- --profile databricks)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    local.add_argument(
        "--data-dir", default="zerobus-local-data", metavar="DIR", help="its Delta tables (%(default)s)"
    )
    local.add_argument(
        "--client",
        default="pyzerobus-local:pyzerobus-local-secret",
        metavar="ID:SECRET",
        help="the OAuth client it accepts (%(default)s)",
    )
    local.add_argument("serve_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    local.set_defaults(func=_cmd_local, verbose=0)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command with ``argv`` (default: the process's arguments); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    log = logging.getLogger("pyzerobus")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pyzerobus: %(levelname)s: %(message)s"))
    old_level = log.level
    log.addHandler(handler)
    log.setLevel((logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)])
    try:
        return int(args.func(args, sys.stdout, sys.stderr))
    except UsageError as exc:
        sys.stderr.write(f"pyzerobus {args.command}: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("pyzerobus: interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
