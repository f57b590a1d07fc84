"""Throughput of pyzerobus against the Go engine and Databricks' Python SDK.

    .venv/bin/python tools/bench/pybench.py [--sizes 20,220,1024] [--mb 400] [--repeat 3]

One run, one zerobus-local in --discard mode (it acknowledges without
storing), the same rows for every contender. Rows are {id int64, payload
string}, the payload sized so that each encoded protobuf record is 20, 220
or 1,024 bytes. Contenders:

  c-stream   pyzerobus, send_batch(pyarrow.Table): the Arrow C stream, zero-copy
  ipc        pyzerobus, send_batch(Arrow IPC bytes)
  go-engine  zbwrap directly (tools/bench/goengine), the same chunks and concurrency
  go-async   zbwrap directly, SendBatchAsync then Flush
  python-sdk Databricks' SDK, ingest_records_nowait in lists of 1,000 records
             encoded beforehand (a head start: the encoding is not timed), then flush

Contenders take turns for --repeat rounds; each figure is a contender's best
round: rows/s and MB/s of encoded records.

--arrow compares the Arrow paths instead, on the same rows (payloads of
random hex, so that compression meets realistic data) and the same server:

  pz-proto        pyzerobus, send_batch(pyarrow.Table), transport proto
  pz-arrow[-lz4|-zstd]   pyzerobus, send_batch(pyarrow.Table), transport arrow
  sdk-arrow[-lz4|-zstd]  Databricks' SDK create_arrow_stream, ingest_batch(RecordBatch)
                  of 10,000 rows each (its users' way: it writes the IPC bytes), then flush
  sdk-proto       Databricks' SDK protobuf path, as python-sdk above

and reports rows/s, MB/s of Arrow data (the table's buffers), the bytes
the server received per row, and the CPU time per row of the client (this
process, every thread) and of the server (another process).

--profile databricks runs the server like the real service (about 150 ms to
durability, 100 MB/s and 100,000 records/s per stream; --ack-latency-only
keeps the latency and drops the quotas), with less data (--mb 100 is
plenty); --streams N gives the pyzerobus and Go contenders N streams.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

REPO = pathlib.Path(__file__).resolve().parents[2]
os.environ.setdefault("RUST_LOG", "warn")  # Databricks' SDK logs every stream at INFO
sys.path.insert(0, str(REPO / "tests" / "py"))

import pyzerobus  # noqa: E402
from conftest import LocalServer, start_server, zerobus_local_bin  # noqa: E402

BATCH_ROWS = 10_000
CHUNK_ROWS = 65_536  # rows per Arrow batch of the source table


def payload_len(record_size: int) -> int:
    """Payload length giving an encoded record of record_size bytes.

    A record is: tag, id as a varint (4 bytes: ids are between 2^21 and
    2^28), tag, payload length as a varint, payload.
    """
    id_bytes = 4
    for n in range(record_size, 0, -1):
        len_bytes = 1 if n < 128 else 2
        if 1 + id_bytes + 1 + len_bytes + n == record_size:
            return n
    raise ValueError(record_size)


def make_table(rows: int, record_size: int) -> pa.Table:
    """Rows with ids 2^21.. (4-byte varints) and fixed-size payloads."""
    n = payload_len(record_size)
    ids = pa.array(range(1 << 21, (1 << 21) + rows), pa.int64())
    text = pc.utf8_lpad(pc.cast(ids, pa.string()), width=min(n, 8), padding="0")
    if n > 8:
        text = pc.binary_join_element_wise(text, pa.scalar("x" * (n - 8)), "")
    elif n < 8:
        text = pc.utf8_slice_codeunits(text, 0, n)
    table = pa.table({"id": ids, "payload": text})
    return table.combine_chunks().to_reader(max_chunksize=CHUNK_ROWS).read_all()


def ipc_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def interleaved(
    rounds: int, contenders: dict[str, tuple[Callable[..., tuple[int, int, float]], tuple[Any, ...]]]
) -> dict[str, tuple[int, int, float]]:
    """Run every contender once per round, in turn, and keep each one's fastest run.

    Taking turns spreads any load from elsewhere on the machine over all of
    them instead of penalizing whoever ran during it.
    """
    runs: dict[str, list[tuple[int, int, float]]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (fn, fn_args) in contenders.items():
            runs[name].append(fn(*fn_args))
    return {name: min(out, key=lambda r: r[2]) for name, out in runs.items()}


def server_bytes(server: LocalServer) -> int:
    """Bytes of requests the server has received so far."""
    with urllib.request.urlopen(server.workspace_url + "/stats", timeout=10) as resp:
        return int(json.loads(resp.read())["bytes_received"])


def random_table(rows: int, record_size: int) -> pa.Table:
    """make_table's rows with payloads of random hex digits."""
    import numpy as np

    n = payload_len(record_size)
    ids = pa.array(range(1 << 21, (1 << 21) + rows), pa.int64())
    data = pa.py_buffer(os.urandom((rows * n + 1) // 2).hex().encode()[: rows * n])
    offsets = pa.py_buffer((np.arange(rows + 1, dtype=np.int64) * n).astype(np.int32).tobytes())
    payload = pa.StringArray.from_buffers(rows, offsets, data)
    table = pa.table({"id": ids, "payload": payload})
    return table.to_reader(max_chunksize=CHUNK_ROWS).read_all()


def bench_sdk_arrow(
    server: LocalServer, table: str, data: pa.Table, compression: str
) -> tuple[int, int, float]:
    from zerobus import ArrowStreamConfigurationOptions, IPCCompression
    from zerobus.sdk.sync import ZerobusSdk

    options = ArrowStreamConfigurationOptions()
    options.ipc_compression = getattr(IPCCompression, compression)
    sdk = ZerobusSdk(server.endpoint, server.workspace_url)
    stream = sdk.create_arrow_stream(table, data.schema, server.client_id, server.client_secret, options)
    batches = data.to_batches(max_chunksize=BATCH_ROWS)
    stream.ingest_batch(batches[0].slice(0, 1000))  # warm up like the others
    stream.flush()
    start = time.perf_counter()
    for b in batches:
        stream.ingest_batch(b)
    stream.flush()
    secs = time.perf_counter() - start
    stream.close()
    return data.num_rows, data.nbytes, secs


def server_cpu(server: LocalServer) -> float:
    """CPU seconds the server process has used (Linux /proc; 0 elsewhere)."""
    try:
        fields = pathlib.Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_wire(
    server: LocalServer, fn: Callable[..., tuple[int, int, float]], *fn_args: Any
) -> tuple[int, int, float, int, float, float]:
    """fn's figures, the bytes the server received meanwhile, and the CPU seconds
    this process (every thread: the client's whole cost) and the server process
    spent, warm-up and setup included."""
    before = server_bytes(server)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    scpu = server_cpu(server)
    rows, nbytes, secs = fn(*fn_args)
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return rows, nbytes, secs, server_bytes(server) - before, used, server_cpu(server) - scpu


def bench_arrow(args: argparse.Namespace, server: LocalServer, cfg: pyzerobus.WrapperConfiguration) -> None:
    """The --arrow comparison, one record size after another."""
    for size in (int(s) for s in args.sizes.split(",")):
        rows = args.mb * 1_000_000 // size
        table = random_table(rows, size)
        warm = table.slice(0, 1000)
        min_wire = size // 4  # bytes per row that even ZSTD cannot go below on random hex
        contenders: dict[
            str, tuple[Callable[..., tuple[int, int, float, int, float, float]], tuple[Any, ...]]
        ] = {
            "pz-proto": (with_wire, (server, bench_pyzerobus, cfg, table, warm)),
        }
        for comp in ("none", "lz4", "zstd"):
            name = "pz-arrow" + ("" if comp == "none" else "-" + comp)
            acfg = cfg.replace(table_name="main.bench.arrow", transport="arrow", arrow_compression=comp)
            contenders[name] = (with_wire, (server, bench_pyzerobus, acfg, table, warm))
        if not args.skip_sdk:
            for comp, sdk_comp in (("none", "NONE"), ("lz4", "LZ4_FRAME"), ("zstd", "ZSTD")):
                name = "sdk-arrow" + ("" if comp == "none" else "-" + comp)
                contenders[name] = (
                    with_wire,
                    (server, bench_sdk_arrow, server, "main.bench.sdkarrow", table, sdk_comp),
                )
            msg = message_class()
            sdk_rows = min(rows, args.sdk_mb * 1_000_000 // size)
            ids = table.column("id").to_pylist()[:sdk_rows]
            payloads = table.column("payload").to_pylist()[:sdk_rows]
            records = [msg(id=i, payload=p).SerializeToString() for i, p in zip(ids, payloads)]
            contenders["sdk-proto"] = (
                with_wire,
                (server, bench_sdk, server, "main.bench.sdk", records, msg.DESCRIPTOR),
            )
        runs: dict[str, list[tuple[int, int, float, int, float, float]]] = {name: [] for name in contenders}
        for _ in range(args.repeat):
            for name, (fn, fn_args) in contenders.items():
                runs[name].append(fn(*fn_args))
        # A run whose rows did not all reach the server (a stream that broke)
        # does not count.
        best = {
            name: min((r for r in out if r[3] >= r[0] * min_wire), key=lambda r: r[2], default=out[0])
            for name, out in runs.items()
        }
        per_row = table.nbytes / table.num_rows
        if any(r[3] < r[0] * min_wire for r in best.values()):
            print("  (some contender had no complete run: its figures are not to be trusted)")
        print(
            f"\nrows of {size} encoded bytes ({per_row:.0f} bytes of Arrow data each), best of {args.repeat}"
        )
        head = f"  {'contender':<15} {'rows/s':>12} {'Arrow MB/s':>11} {'wire B/row':>11}"
        head += f" {'CPU ns/row':>11} {'server ns/row':>14}"
        print(head + f" {'vs pz-proto':>12} {'vs sdk-arrow':>13}")
        rate = {k: v[0] / v[2] for k, v in best.items()}
        for name, (n, _, secs, wire, cpu, scpu) in best.items():
            vs_proto = f"{rate[name] / rate['pz-proto']:.2f}x"
            vs_sdk = f"{rate[name] / rate['sdk-arrow']:.2f}x" if "sdk-arrow" in rate else "-"
            warm_rows = 1000
            print(
                f"  {name:<15} {n / secs:>12,.0f} {n * per_row / secs / 1e6:>11,.0f}"
                f" {wire / (n + warm_rows):>11,.1f} {cpu * 1e9 / (n + warm_rows):>11,.0f}"
                f" {scpu * 1e9 / (n + warm_rows):>14,.0f}"
                f" {vs_proto:>12} {vs_sdk:>13}"
            )
        sys.stdout.flush()


def bench_pyzerobus(cfg: pyzerobus.WrapperConfiguration, data: Any, warm: pa.Table) -> tuple[int, int, float]:
    with pyzerobus.ZerobusWrapper(cfg) as w:
        w.send_batch(warm)  # open the stream, compile the schema
        start = time.perf_counter()
        res = w.send_batch(data)
        secs = time.perf_counter() - start
    assert res.success, res
    return res.successful_count, res.batch_size_bytes, secs


def chunk_rows(table: pa.Table, cfg: pyzerobus.WrapperConfiguration) -> int:
    """Rows per chunk as pyzerobus cuts them: batch_rows, and about batch_bytes of Arrow data."""
    per_row = max(table.nbytes // max(table.num_rows, 1), 1)
    return max(min(cfg.batch_rows, cfg.batch_bytes // per_row), 1)


def bench_go(
    server: LocalServer,
    table: str,
    ipc_file: pathlib.Path,
    mode: str,
    binary: pathlib.Path,
    concurrency: int,
    batch_rows: int,
    streams: int = 1,
) -> tuple[int, int, float]:
    out = subprocess.run(
        [
            str(binary),
            "-endpoint",
            server.endpoint,
            "-workspace-url",
            server.workspace_url,
            "-client-id",
            server.client_id,
            "-table",
            table,
            "-ipc",
            str(ipc_file),
            "-batch-rows",
            str(batch_rows),
            "-concurrency",
            str(concurrency),
            "-mode",
            mode,
            "-streams",
            str(streams),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ZEROBUS_CLIENT_SECRET": server.client_secret},
    )
    r = json.loads(out.stdout)
    return int(r["rows"]), int(r["bytes"]), float(r["seconds"])


def message_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="bench.proto", package="bench", syntax="proto2")
    msg = fdp.message_type.add(name="Row")
    t = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="id", number=1, type=t.TYPE_INT64, label=t.LABEL_OPTIONAL)
    msg.field.add(name="payload", number=2, type=t.TYPE_STRING, label=t.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.Row"))


def bench_sdk(
    server: LocalServer, table: str, records: list[bytes], descriptor: Any
) -> tuple[int, int, float]:
    from zerobus import TableProperties
    from zerobus.sdk.sync import ZerobusSdk

    sdk = ZerobusSdk(server.endpoint, server.workspace_url)
    stream = sdk.create_stream(server.client_id, server.client_secret, TableProperties(table, descriptor))
    stream.ingest_records_nowait(records[:1000])  # warm up like the others
    stream.flush()
    start = time.perf_counter()
    for i in range(0, len(records), 1000):
        stream.ingest_records_nowait(records[i : i + 1000])
    stream.flush()
    secs = time.perf_counter() - start
    stream.close()
    return len(records), sum(len(r) for r in records), secs


def concurrency(cfg: pyzerobus.WrapperConfiguration) -> int:
    """The chunks a wrapper keeps in flight: max_concurrent_batches, or its default (16, or 8 per stream)."""
    if cfg.max_concurrent_batches:
        return cfg.max_concurrent_batches
    streams = cfg.max_streams if cfg.streams == "auto" else int(cfg.streams)
    return max(16, 8 * streams)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="20,220,1024", help="encoded record sizes in bytes")
    p.add_argument("--mb", type=int, default=1000, help="MB of encoded records per contender and size")
    p.add_argument("--sdk-mb", type=int, default=300, help="MB for Databricks' SDK (it is slower)")
    p.add_argument("--repeat", type=int, default=5, help="rounds; each contender's best round counts")
    p.add_argument("--skip-sdk", action="store_true")
    p.add_argument("--profile", choices=["default", "databricks"], default="default", help="server profile")
    p.add_argument("--ack-latency-only", action="store_true", help="with --profile databricks: no quotas")
    p.add_argument(
        "--streams",
        type=lambda v: v if v == "auto" else int(v),
        default=1,
        help="streams of pyzerobus and the Go engine (a count or auto)",
    )
    p.add_argument("--arrow", action="store_true", help="compare the Arrow paths (see above)")
    args = p.parse_args()

    binary = REPO / "build" / "_bench" / "goengine"
    subprocess.run(["go", "build", "-o", str(binary), "./tools/bench/goengine"], cwd=REPO, check=True)
    zerobus_local_bin()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pybench-"))
    flags = ["--discard"]
    if args.profile == "databricks":
        flags += ["--profile", "databricks"]
        if args.ack_latency_only:
            flags += ["--stream-quota", "off", "--table-quota", "off"]
    server = start_server(tmp / "data", *flags)
    results: dict[int, dict[str, tuple[int, int, float]]] = {}
    try:
        cfg = pyzerobus.WrapperConfiguration(
            endpoint=server.endpoint,
            unity_catalog_url=server.workspace_url,
            client_id=server.client_id,
            client_secret=server.client_secret,
            table_name="main.bench.rows",
            batch_rows=BATCH_ROWS,
            streams=args.streams,
        )
        if args.arrow:
            bench_arrow(args, server, cfg)
            return
        for size in (int(s) for s in args.sizes.split(",")):
            rows = args.mb * 1_000_000 // size
            table = make_table(rows, size)
            warm = table.slice(0, 1000)
            data_ipc = ipc_stream(table)
            ipc_file = tmp / f"rows-{size}.arrow"
            with pa.OSFile(str(ipc_file), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
                w.write_table(table)
            conc = concurrency(cfg)
            rows_go = chunk_rows(table, cfg)  # the Go engine gets the same chunks
            contenders: dict[str, tuple[Callable[..., tuple[int, int, float]], tuple[Any, ...]]] = {
                "c-stream": (bench_pyzerobus, (cfg, table, warm)),
                "ipc": (bench_pyzerobus, (cfg, data_ipc, warm)),
                "go-engine": (
                    bench_go,
                    (server, cfg.table_name, ipc_file, "sync", binary, conc, rows_go, args.streams),
                ),
                "go-async": (
                    bench_go,
                    (server, cfg.table_name, ipc_file, "async", binary, conc, rows_go, args.streams),
                ),
            }
            if not args.skip_sdk:
                msg = message_class()
                sdk_rows = args.sdk_mb * 1_000_000 // size
                ids = table.column("id").to_pylist()[:sdk_rows]
                payloads = table.column("payload").to_pylist()[:sdk_rows]
                records = [msg(id=i, payload=p).SerializeToString() for i, p in zip(ids, payloads)]
                assert abs(len(records[0]) - size) <= 1, (len(records[0]), size)
                contenders["python-sdk"] = (bench_sdk, (server, "main.bench.sdk", records, msg.DESCRIPTOR))
            r = interleaved(args.repeat, contenders)
            # The async API reports no sizes: the same rows encode to the same bytes.
            rows_a, _, secs_a = r["go-async"]
            r["go-async"] = (rows_a, r["c-stream"][1] * rows_a // r["c-stream"][0], secs_a)
            results[size] = r
            os.unlink(ipc_file)
            report(size, r)
    finally:
        server.stop()
    print(
        json.dumps(
            {
                str(k): {n: {"rows": v[0], "bytes": v[1], "seconds": round(v[2], 4)} for n, v in r.items()}
                for k, r in results.items()
            }
        )
    )


def report(size: int, r: dict[str, tuple[int, int, float]]) -> None:
    print(f"\nrecords of {size} bytes")
    print(f"  {'contender':<11} {'rows/s':>13} {'MB/s':>9} {'vs go-engine':>13} {'vs python-sdk':>14}")
    rate = {k: v[0] / v[2] for k, v in r.items()}
    for name, (rows, nbytes, secs) in r.items():
        vs_go = f"{rate[name] / rate['go-engine']:.2f}x"
        vs_sdk = f"{rate[name] / rate['python-sdk']:.1f}x" if "python-sdk" in rate else "-"
        print(f"  {name:<11} {rows / secs:>13,.0f} {nbytes / secs / 1e6:>9,.0f} {vs_go:>13} {vs_sdk:>14}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
