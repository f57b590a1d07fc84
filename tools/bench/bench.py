"""One table: every way to put the same rows into one zerobus-local.

    .venv/bin/python tools/bench/bench.py [--rows N] [--rounds 3] [--profile databricks]
                                          [--durable] [--quick] [--out docs/bench]

One zerobus-local serving TLS (Databricks' pure-Go SDK refuses plaintext),
in --discard mode (it acknowledges without storing) unless --durable, and
the same rows for every contender: {id int64, payload string}, the payload
sized so that each record encodes to 20, 220 or 1,024 bytes of protobuf.
Every contender runs in a subprocess of its own, once per row size and
round, the contenders taking turns within a round so that load from
elsewhere on the machine spreads over all of them. Each subprocess loads
the rows from an Arrow IPC file, opens its stream with a warm-up batch of
WARM_ROWS rows, then sends the N timed rows and waits for every
acknowledgement. It reports the seconds and the CPU time (user + system,
getrusage of its own process) of that timed part; the parent reads the
child's peak RSS from wait4's rusage (ru_maxrss), so it includes the rows
held in memory, as a real sender would hold them.

The contenders are the rows of CONTENDERS: the Go engine per transport and
stream count (tools/bench/goengine), pyzerobus through the Arrow C stream
and through IPC bytes, Databricks' pure-Go SDK with records encoded
beforehand and converted with dynamicpb in the loop
(tests/go/conformance/cmd/sdkbench), and Databricks' Python SDK with
protobuf records encoded beforehand (ingest_records_offset of 1,000 at a
time: its ingest_records_nowait returns from flush before the server has
acknowledged everything, so it cannot be timed) and through its Arrow
stream (create_arrow_stream, ingest_batch of record batches cut like
pyzerobus's chunks, and 8 times larger: pyzerobus's chunks grow up to 8
times once streams: auto has 4 or more streams open, so the SDK gets
requests of that size too). Databricks' Python SDK's runs check, before they close, that
the server has acknowledged every row; every run's table is checked after.
A Go engine row whose transport the engine refuses is skipped with a note.

Columns: rows/s (median of the rounds, and the spread: half of max - min
over the median), MB/s of encoded protobuf records (the same bytes for
every contender), the ratio to the fastest of Databricks' SDKs on the same
rows, CPU seconds per GB of records, and peak RSS. The table goes to stdout
and to OUT/bench-PROFILE.md, a chart of rows/s by contender and row size to
OUT/bench-PROFILE.png.

--profile databricks runs the server like the real service (about 150 ms to
durability, 100 MB/s and 100,000 records/s per stream), where stream counts
and defaults matter most; --durable makes the server store what it
acknowledges (the real persistence path) instead of discarding it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Union

import pyarrow as pa
import pyarrow.ipc

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = REPO / "build" / "_bench"
SIZES = (20, 220, 1024)
WARM_ROWS = 1000
SDK_RECORDS_PER_CALL = 1000
# The conformance module pulls Databricks' pure-Go SDK, whose checksum is
# not in the public checksum database (the Makefile's CONFORMANCE_ENV).
CONFORMANCE_ENV = {"GONOSUMDB": "github.com/databricks", "GOFLAGS": "-mod=mod"}


@dataclasses.dataclass(frozen=True)
class Contender:
    """One row of the table: a client and the way it is driven.

    kind is the program that runs it (go-engine, pyzerobus, purego,
    python-sdk) and mode its way of sending; databricks marks Databricks'
    own SDKs, the reference of the ratio column.
    """

    name: str
    kind: str
    mode: str
    streams: Union[int, str] = 1  # a count or "auto"
    transport: str = "proto"
    compression: str = "none"  # arrow_compression of the arrow transport (pyzerobus)
    databricks: bool = False


CONTENDERS: tuple[Contender, ...] = (
    Contender("Go engine, proto, 1 stream", "go-engine", "sync", streams=1, transport="proto"),
    Contender("Go engine, proto, 4 streams", "go-engine", "sync", streams=4, transport="proto"),
    Contender("Go engine, arrow, 1 stream", "go-engine", "sync", streams=1, transport="arrow"),
    Contender("Go engine, arrow, 4 streams", "go-engine", "sync", streams=4, transport="arrow"),
    Contender("Go engine, proto, 16 streams", "go-engine", "sync", streams=16, transport="proto"),
    Contender("Go engine, proto, streams auto", "go-engine", "sync", streams="auto", transport="proto"),
    Contender("pyzerobus, defaults (streams auto)", "pyzerobus", "c-stream", streams="auto"),
    Contender("pyzerobus, 1 stream", "pyzerobus", "c-stream"),
    Contender("pyzerobus, arrow, 1 stream", "pyzerobus", "c-stream", transport="arrow"),
    Contender(
        "pyzerobus, arrow, lz4, 1 stream", "pyzerobus", "c-stream", transport="arrow", compression="lz4"
    ),
    Contender("pyzerobus, IPC bytes, 1 stream", "pyzerobus", "ipc"),
    Contender("pure-Go SDK, pre-encoded", "purego", "preencoded", databricks=True),
    Contender("pure-Go SDK, dynamicpb", "purego", "dynamicpb", databricks=True),
    Contender("Python SDK, protobuf", "python-sdk", "proto", databricks=True),
    Contender("Python SDK, Arrow stream", "python-sdk", "arrow", databricks=True),
    Contender("Python SDK, Arrow stream, 8x batches", "python-sdk", "arrow-8x", databricks=True),
)

# pyzerobus's defaults, which the Go engine row is given too: rows per
# batch, about this many bytes of Arrow data per batch, batches in flight
# per stream.
BATCH_ROWS = 10_000
BATCH_BYTES = 1 << 20
CONCURRENT_BATCHES = 16
# The most a pyzerobus chunk grows under streams: auto (zbwrap.MaxChunkGrowth).
MAX_CHUNK_GROWTH = 8


@dataclasses.dataclass
class Run:
    """One contender's run: what the child measured and what wait4 said."""

    rows: int
    seconds: float
    cpu_seconds: float
    max_rss_bytes: int


@dataclasses.dataclass
class Row:
    """One line of the table: a contender at one row size over the rounds."""

    size: int
    contender: Contender
    runs: list[Run] = dataclasses.field(default_factory=list)
    note: str = ""

    @property
    def rates(self) -> list[float]:
        return [r.rows / r.seconds for r in self.runs]

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.runs else 0.0

    @property
    def spread(self) -> float:
        """Half the range of the rounds' rows/s, as a fraction of the median."""
        rates = self.rates
        return (max(rates) - min(rates)) / 2 / self.rate if self.runs else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.rate * self.size / 1e6

    @property
    def cpu_per_gb(self) -> float:
        return statistics.median(r.cpu_seconds / (r.rows * self.size / 1e9) for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.max_rss_bytes for r in self.runs) / 1e6


# ---------------------------------------------------------------- rows


def payload_len(record_size: int) -> int:
    """Payload length giving an encoded record of record_size bytes.

    A record is: tag, id as a varint (4 bytes: ids are between 2^21 and
    2^28), tag, payload length as a varint, payload.
    """
    for n in range(record_size, 0, -1):
        if 1 + 4 + 1 + (1 if n < 128 else 2) + n == record_size:
            return n
    raise ValueError(f"no payload gives a record of {record_size} bytes")


SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("payload", pa.string())])


def write_rows(path: pathlib.Path, rows: int, record_size: int) -> None:
    """An Arrow IPC file: a first batch of WARM_ROWS rows, then rows timed rows.

    Ids start at 2^21 (4-byte varints); each payload is the row's id padded
    with x to the payload length, so rows differ and compress alike. The
    timed rows also go to stream_path(path) in the IPC stream format: the
    bytes a sender of IPC bytes holds, read as they are.
    """
    n = payload_len(record_size)
    with pa.OSFile(str(path), "wb") as f, pa.OSFile(str(stream_path(path)), "wb") as fs:
        w, ws = pa.ipc.new_file(f, SCHEMA), pa.ipc.new_stream(fs, SCHEMA)
        start = 1 << 21
        for lo, hi in [(0, WARM_ROWS)] + [
            (WARM_ROWS + i, WARM_ROWS + min(i + 65_536, rows)) for i in range(0, rows, 65_536)
        ]:
            ids = list(range(start + lo, start + hi))
            batch = pa.record_batch(
                [pa.array(ids, pa.int64()), pa.array([str(i).ljust(n, "x")[:n] for i in ids])],
                schema=SCHEMA,
            )
            w.write_batch(batch)
            if lo >= WARM_ROWS:
                ws.write_batch(batch)
        w.close()
        ws.close()


def stream_path(path: pathlib.Path | str) -> pathlib.Path:
    """Where write_rows puts the timed rows as an IPC stream."""
    return pathlib.Path(str(path) + ".stream")


def chunk_rows(record_size: int) -> int:
    """Rows per batch as pyzerobus cuts them: BATCH_ROWS, and about BATCH_BYTES of Arrow data."""
    arrow_bytes = 8 + 4 + payload_len(record_size)
    return max(min(BATCH_ROWS, BATCH_BYTES // arrow_bytes), 1)


# ---------------------------------------------------------------- workers


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM), 0 where /proc does not say."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def acked(spec: dict[str, Any]) -> int:
    """Records the server has acknowledged on spec's table (GET /stats)."""
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=spec["ca_file"])
    with urllib.request.urlopen(spec["workspace_url"] + "/stats", context=ctx, timeout=30) as resp:
        tables = json.load(resp)["tables"]
    return int(tables.get(spec["table"], {}).get("records_acked", 0))


def load(path: str) -> tuple[pa.RecordBatch, pa.Table]:
    """The warm-up batch and the timed rows of an IPC file from write_rows."""
    with pa.memory_map(path) as src:
        r = pa.ipc.open_file(src)
        warm = r.get_batch(0)
        rest = pa.Table.from_batches([r.get_batch(i) for i in range(1, r.num_record_batches)], SCHEMA)
    return warm, rest


def worker(spec: dict[str, Any]) -> dict[str, float]:
    """Run one contender in this process; spec comes from the parent."""
    warm, data = load(spec["ipc"])
    secret = os.environ["ZEROBUS_CLIENT_SECRET"]
    if spec["kind"] == "pyzerobus":
        out = worker_pyzerobus(spec, secret, warm, data)
    elif spec["kind"] == "python-sdk":
        out = worker_python_sdk(spec, secret, warm, data)
    else:
        raise ValueError(f"unknown contender kind {spec['kind']!r}")
    return {**out, "peak_rss_bytes": peak_rss_bytes()}


def go_concurrency(c: Contender) -> int:
    """SendBatch calls the Go engine keeps going: 16 per stream it may use (auto: max_streams, 16)."""
    return CONCURRENT_BATCHES * (c.streams if isinstance(c.streams, int) else 16)


def worker_pyzerobus(
    spec: dict[str, Any], secret: str, warm: pa.RecordBatch, data: pa.Table
) -> dict[str, float]:
    import pyzerobus

    cfg = pyzerobus.WrapperConfiguration(
        endpoint=spec["endpoint"],
        unity_catalog_url=spec["workspace_url"],
        client_id=spec["client_id"],
        client_secret=secret,
        table_name=spec["table"],
        tls_ca_file=spec["ca_file"],
        streams=spec["streams"],
        transport=spec.get("transport", "proto"),
        arrow_compression=spec.get("compression", "none"),
        batch_rows=BATCH_ROWS,
        batch_bytes=BATCH_BYTES,
        # max_concurrent_batches left at its default: 16 chunks with one
        # stream, 8 per stream the wrapper may use with more.
    )
    # The rows are memory-mapped: only what a contender touches counts in its RSS.
    payload: Any = data if spec["mode"] != "ipc" else stream_path(spec["ipc"]).read_bytes()
    with pyzerobus.ZerobusWrapper(cfg) as w:
        res = w.send_batch(pa.Table.from_batches([warm]))  # open the stream
        if not res.success:
            raise RuntimeError(f"warm-up: {res}")
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        res = w.send_batch(payload)
        secs, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    if not res.success:
        raise RuntimeError(str(res))
    return {"rows": res.successful_count, "seconds": secs, "cpu_seconds": cpu}


def message_class() -> Any:
    """A protobuf message class for SCHEMA's rows."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="bench.proto", package="bench", syntax="proto2")
    msg = fdp.message_type.add(name="Row")
    t = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="id", number=1, type=t.TYPE_INT64, label=t.LABEL_OPTIONAL)
    msg.field.add(name="payload", number=2, type=t.TYPE_STRING, label=t.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.Row"))


def worker_python_sdk(
    spec: dict[str, Any], secret: str, warm: pa.RecordBatch, data: pa.Table
) -> dict[str, float]:
    os.environ.setdefault("RUST_LOG", "warn")  # it logs every stream at INFO
    os.environ["SSL_CERT_FILE"] = spec["ca_file"]  # how its TLS trusts a private CA
    from zerobus import TableProperties
    from zerobus.sdk.sync import ZerobusSdk

    sdk = ZerobusSdk(spec["endpoint"], spec["workspace_url"])
    if spec["mode"] in ("arrow", "arrow-8x"):
        rows = chunk_rows(spec["size"]) * (MAX_CHUNK_GROWTH if spec["mode"] == "arrow-8x" else 1)
        batches = data.to_batches(max_chunksize=rows)
        stream = sdk.create_arrow_stream(spec["table"], SCHEMA, spec["client_id"], secret)
        stream.ingest_batch(warm)
        stream.flush()
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        for b in batches:
            stream.ingest_batch(b)
        stream.flush()
        secs, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        check_acked(spec, warm.num_rows + data.num_rows)
        stream.close()
        return {"rows": data.num_rows, "seconds": secs, "cpu_seconds": cpu}
    msg = message_class()

    def encode(t: pa.Table | pa.RecordBatch) -> list[bytes]:
        cols = t.to_pydict()
        return [msg(id=i, payload=p).SerializeToString() for i, p in zip(cols["id"], cols["payload"])]

    records = encode(data)  # encoded beforehand: the SDK's best case
    if abs(len(records[0]) - spec["size"]) > 1:
        raise RuntimeError(f"records of {len(records[0])} bytes, not {spec['size']}")
    stream = sdk.create_stream(spec["client_id"], secret, TableProperties(spec["table"], msg.DESCRIPTOR))
    stream.ingest_records_offset(encode(warm))
    stream.flush()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    for i in range(0, len(records), SDK_RECORDS_PER_CALL):
        stream.ingest_records_offset(records[i : i + SDK_RECORDS_PER_CALL])
    stream.flush()
    secs, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    check_acked(spec, warm.num_rows + len(records))
    stream.close()
    return {"rows": len(records), "seconds": secs, "cpu_seconds": cpu}


def check_acked(spec: dict[str, Any], want: int) -> None:
    """Databricks' SDK's flush returned: the server must have acknowledged every record.

    Each run has a table of its own, so the count is this run's.
    """
    got = acked(spec)
    if got != want:
        raise RuntimeError(f"flush returned with {got} of {want} records acknowledged")


# ---------------------------------------------------------------- parent


class SkipError(Exception):
    """The contender does not exist in this build (the engine refused its transport)."""


@dataclasses.dataclass
class Server:
    """The running zerobus-local, as its ready line describes it."""

    endpoint: str
    workspace_url: str
    ca_file: str
    proc: subprocess.Popen[str]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret"


def start_server(binary: str, data_dir: pathlib.Path, flags: Sequence[str]) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--tls"]
    cmd += ["--client", f"{CLIENT_ID}:{CLIENT_SECRET}", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("zerobus-local ready"):
            fields = dict(kv.split("=", 1) for kv in line.split()[2:])
            return Server(fields["endpoint"], fields["workspace_url"], fields["ca_file"], proc)
    proc.wait()
    raise RuntimeError(f"zerobus-local exited with {proc.returncode} before it was ready: {' '.join(cmd)}")


def build_go() -> dict[str, pathlib.Path]:
    """Build the Go contenders' programs (cached by go build)."""
    go = shutil.which("go") or "go"
    out = {"go-engine": BIN_DIR / "goengine", "purego": BIN_DIR / "sdkbench"}
    subprocess.run([go, "build", "-o", str(out["go-engine"]), "./tools/bench/goengine"], cwd=REPO, check=True)
    subprocess.run(
        [go, "build", "-o", str(out["purego"]), "./cmd/sdkbench"],
        cwd=REPO / "tests" / "go" / "conformance",
        env={**os.environ, **CONFORMANCE_ENV},
        check=True,
    )
    return out


def command(
    c: Contender, size: int, ipc: pathlib.Path, server: Server, table: str, bins: dict[str, pathlib.Path]
) -> list[str]:
    """The child process of one run."""
    conn = ["-endpoint", server.endpoint, "-workspace-url", server.workspace_url, "-ca-file", server.ca_file]
    conn += ["-client-id", CLIENT_ID, "-table", table, "-ipc", str(ipc)]
    if c.kind == "go-engine":
        return [
            str(bins["go-engine"]),
            *conn,
            *("-mode", c.mode, "-transport", c.transport),
            *("-streams", str(c.streams), "-batch-rows", str(chunk_rows(size))),
            *("-concurrency", str(go_concurrency(c))),
        ]
    if c.kind == "purego":
        return [str(bins["purego"]), *conn, "-mode", c.mode, "-batch-rows", str(SDK_RECORDS_PER_CALL)]
    spec = {
        "kind": c.kind,
        "mode": c.mode,
        "streams": c.streams,
        "transport": c.transport,
        "compression": c.compression,
        "size": size,
        "ipc": str(ipc),
        "endpoint": server.endpoint,
        "workspace_url": server.workspace_url,
        "ca_file": server.ca_file,
        "client_id": CLIENT_ID,
        "table": table,
    }
    return [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker", json.dumps(spec)]


def run_child(cmd: list[str], timeout: float) -> tuple[dict[str, Any], Any]:
    """Run one child; its JSON line and its rusage (wait4)."""
    env = {**os.environ, "ZEROBUS_CLIENT_SECRET": CLIENT_SECRET, "RUST_LOG": "warn"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise RuntimeError(f"{cmd[0]}: no result after {timeout:.0f} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read().strip()
    if proc.returncode == 2 and "transport" in stderr:
        raise SkipError(stderr.splitlines()[-1])
    if proc.returncode != 0:
        raise RuntimeError(f"{os.path.basename(cmd[0])} exited with {proc.returncode}: {stderr[-2000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), ru


def table_name(c: Contender, size: int, rnd: int) -> str:
    """A table of its own for each run, so that the server's counts are the run's."""
    slug = "".join(ch if ch.isalnum() else "_" for ch in c.name.lower()).strip("_")
    while "__" in slug:
        slug = slug.replace("__", "_")
    return f"main.bench.{slug}_{size}_r{rnd}"


def run_all(
    args: argparse.Namespace, contenders: Sequence[Contender], server: Server, tmp: pathlib.Path
) -> list[Row]:
    bins = build_go()
    table: list[Row] = []
    skipped: dict[str, str] = {}
    for size in args.sizes:
        ipc = tmp / f"rows-{size}.arrow"
        write_rows(ipc, args.rows, size)
        rows = {c.name: Row(size, c) for c in contenders}
        for rnd in range(args.rounds):
            for c in contenders:
                if c.name in skipped:
                    rows[c.name].note = skipped[c.name]
                    continue
                name = table_name(c, size, rnd)
                try:
                    out, ru = run_child(command(c, size, ipc, server, name, bins), args.timeout)
                except SkipError as e:
                    skipped[c.name] = rows[c.name].note = f"skipped: {e}"
                    continue
                got = acked({"workspace_url": server.workspace_url, "ca_file": server.ca_file, "table": name})
                if int(out["rows"]) != args.rows or got != args.rows + WARM_ROWS:
                    raise RuntimeError(
                        f"{c.name}: {out['rows']} rows reported and {got} acknowledged by the server, "
                        f"of {args.rows} (+{WARM_ROWS} to warm up)"
                    )
                # On Linux a child's ru_maxrss starts from the RSS of the process that forked it
                # (this one, with every row in memory); the child's own high-water mark is exact.
                rss = int(out.get("peak_rss_bytes", 0)) or ru.ru_maxrss * 1024
                run = Run(int(out["rows"]), float(out["seconds"]), float(out["cpu_seconds"]), rss)
                rows[c.name].runs.append(run)
                print(
                    f"  {size:>5} B  round {rnd + 1}/{args.rounds}  {c.name:<30} "
                    f"{run.rows / run.seconds:>12,.0f} rows/s",
                    file=sys.stderr,
                    flush=True,
                )
        ipc.unlink()
        stream_path(ipc).unlink()
        table.extend(rows.values())
    return table


def size_label(size: int) -> str:
    return "1 KB" if size == 1024 else f"{size} B"


def markdown(table: Sequence[Row]) -> str:
    """The table, one line per contender and row size."""
    lines = [
        "| rows | contender | rows/s | MB/s | vs fastest Databricks SDK | CPU s/GB | peak RSS MB |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for size in sorted({r.size for r in table}):
        same = [r for r in table if r.size == size]
        ref = max((r.rate for r in same if r.contender.databricks and r.runs), default=0.0)
        for r in same:
            if not r.runs:
                why = "skipped (see below)" if r.note else "no run"
                lines.append(f"| {size_label(size)} | {r.contender.name} | {why} | | | | |")
                continue
            ratio = f"{r.rate / ref:.2f}x" if ref else "-"
            lines.append(
                f"| {size_label(size)} | {r.contender.name} | {r.rate:,.0f} ±{r.spread:.0%} | "
                f"{r.mb_per_s:,.1f} | {ratio} | {r.cpu_per_gb:,.1f} | {r.peak_rss_mb:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(pathlib.Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1e6:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{cpu}, {os.cpu_count()} CPUs{mem}, {platform.system()} {platform.release()}; "
        f"{go.removeprefix('go version ')}, Python {platform.python_version()}"
    )


def chart(table: Sequence[Row], title: str, path: pathlib.Path) -> None:
    """Rows/s by contender (one group of bars each) and row size (one bar each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r.size for r in table})
    names = list(dict.fromkeys(r.contender.name for r in table if r.runs))
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(names) * len(sizes) / 2 + 1.5))
    height = 0.8 / len(sizes)
    for k, size in enumerate(sizes):
        by_name = {r.contender.name: r for r in table if r.size == size and r.runs}
        ys = [i + (k - (len(sizes) - 1) / 2) * height for i in range(len(names))]
        xs = [by_name[n].rate if n in by_name else 0 for n in names]
        ax.barh(ys, xs, height=height, label=f"{size_label(size)} rows")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    lowest = min((r.rate for r in table if r.runs), default=1.0)
    ax.set_xlim(left=10 ** math.floor(math.log10(lowest)))  # a decade below the slowest, labelled
    ax.set_xlabel("rows/s (median, log scale)")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=len(sizes), frameon=False)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="timed rows per contender, size and round")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the table shows the median and spread")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="encoded record sizes in bytes")
    p.add_argument("--profile", choices=["default", "databricks"], default="default", help="server profile")
    p.add_argument(
        "--ack-latency-only",
        action="store_true",
        help="with --profile databricks: the service's time to durability without its quotas",
    )
    p.add_argument("--durable", action="store_true", help="store what is acknowledged (not --discard)")
    p.add_argument("--quick", action="store_true", help="a fast smoke run: 3,000 rows, one round")
    p.add_argument(
        "--only", action="append", default=[], help="run the contenders whose name contains this (repeatable)"
    )
    p.add_argument(
        "--out", type=pathlib.Path, default=REPO / "docs" / "bench", help="where the .md and .png go"
    )
    p.add_argument("--timeout", type=float, default=900, help="seconds one run may take")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.rounds = 3000, 1
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    for name, v in (("--rows", args.rows), ("--rounds", args.rounds)):
        if v < 1:
            p.error(f"{name} must be at least 1, got {v}")
    for s in args.sizes:
        try:
            payload_len(s)
        except ValueError:
            p.error(f"--sizes: no record of {s} bytes can be built (at least 8)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    contenders = [
        c for c in CONTENDERS if not args.only or any(o.lower() in c.name.lower() for o in args.only)
    ]
    binary = os.environ.get("ZEROBUS_LOCAL_BIN") or str(REPO / ".bin" / "zerobus-local")
    flags = [] if args.durable else ["--discard"]
    if args.profile == "databricks":
        flags += ["--profile", "databricks"]
        if args.ack_latency_only:
            flags += ["--stream-quota", "off", "--table-quota", "off"]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-"))
    server = start_server(binary, tmp / "data", flags)
    try:
        table = run_all(args, contenders, server, tmp)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    latency_only = args.profile == "databricks" and args.ack_latency_only
    name = f"bench-{args.profile}" + ("-latency" if latency_only else "")
    name += "-durable" if args.durable else ""
    world = f"profile {args.profile}, " + ("latency only, " if latency_only else "")
    world += "durable" if args.durable else "discard"
    cmdline = "tools/bench/bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    head = (
        f"`{cmdline.strip()}`: {args.rows:,} rows per contender, size and round, {args.rounds} round(s), "
        f"one TLS zerobus-local ({world}), {datetime.date.today()}.\n\n"
        f"Machine: {machine()}.\n\n"
    )
    notes = sorted({f"- {r.contender.name}: {r.note}" for r in table if r.note})
    text = head + markdown(table) + ("\n" + "\n".join(notes) + "\n" if notes else "")
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.md").write_text(text)
    chart(table, f"rows/s into one zerobus-local ({world})", args.out / f"{name}.png")
    print(f"wrote {args.out / name}.md and .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
