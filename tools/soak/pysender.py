"""A soak sender on pyzerobus: ZerobusWrapper (sync) or AsyncZerobusWrapper (asyncio).

It sends batches of random size (1 KB to 10 MB of payload; with --small-rows N,
1 to N rows) with unique keys (sender, seq) until SIGTERM, then closes the wrapper and exits 0. Every send
is one JSON line of its ledger, in the format the Go sender writes (see
tools/soak/sender/ledger.go); tools/soak/soak.py reads them.

    python tools/soak/pysender.py --id py-sync --mode sync --ledger L.jsonl \\
        --endpoint http://127.0.0.1:P --workspace-url http://127.0.0.1:Q --client-id ID

The client secret comes from DATABRICKS_CLIENT_SECRET.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import sys
import threading
import time
from typing import IO, Any, Optional

import pyarrow as pa

import pyzerobus
from pyzerobus import ZerobusError

#: Batch payload sizes in bytes and their weights (small batches more often), as the Go sender.
SIZES = [(1_000, 500), (10_000, 250), (100_000, 130), (1_000_000, 80), (4_000_000, 25), (10_000_000, 15)]


class Ledger:
    """One JSON line per send; thread-safe."""

    def __init__(self, out: IO[str], sender: str) -> None:
        self.out = out
        self.sender = sender
        self.lock = threading.Lock()

    def write(self, line: dict[str, Any]) -> None:
        with self.lock:
            self.out.write(json.dumps(line) + "\n")

    def result(
        self,
        first: int,
        rows: int,
        latency_ms: float,
        res: Optional[pyzerobus.TransmissionResult],
        kind: str,
        error: str = "",
    ) -> None:
        """Record a send; res None means it failed before the engine took it (kind and error say why).

        A failed send's line has "error", the message of its first failed row's error.
        """
        line: dict[str, Any] = {
            "sender": self.sender,
            "first": first,
            "rows": rows,
            "latency_ms": latency_ms,
            "success": False,
            "attempts": 0,
            "acked": [],
            "failed": [],
        }
        if res is None:
            line["failed"] = [[0, rows, kind, False]]
            line["error"] = error
            self.write(line)
            return
        line["success"] = bool(res.success)
        line["attempts"] = res.attempts
        acked: list[list[int]] = line["acked"]
        for i in res.successful_rows:
            if acked and acked[-1][0] + acked[-1][1] == i:
                acked[-1][1] += 1
            else:
                acked.append([i, 1])
        failed: list[list[Any]] = line["failed"]
        for f in res.failed_rows:
            if "error" not in line:
                line["error"] = str(f.error)
            last = failed[-1] if failed else None
            if last and last[0] + last[1] == f.index and last[2] == f.kind and last[3] == f.may_have_landed:
                last[1] += 1
            else:
                failed.append([f.index, 1, f.kind, f.may_have_landed])
        self.write(line)


class Batches:
    """Random batches with consecutive seqs; thread-safe."""

    def __init__(
        self, sender: str, row_bytes: int, max_batch_bytes: int, seed: int, small_rows: int = 0
    ) -> None:
        self.sender = sender
        self.small_rows = small_rows
        self.row_bytes = row_bytes
        self.max_batch_bytes = max_batch_bytes
        self.rng = random.Random(seed)
        self.next = 0
        self.lock = threading.Lock()

    def make(self) -> tuple[pa.Table, int]:
        with self.lock:
            if self.small_rows > 0:  # 1 to small_rows rows, log-uniform, as the Go sender
                rows = max(
                    1, min(self.small_rows, int(math.exp(self.rng.random() * math.log(self.small_rows + 1))))
                )
            else:
                size = self.rng.choices([s for s, _ in SIZES], [w for _, w in SIZES])[0]
                rows = max(1, min(size, self.max_batch_bytes) // self.row_bytes)
            first = self.next
            self.next += rows
            letter = chr(ord("a") + self.rng.randrange(26))
        table = pa.table(
            {
                "sender": pa.array([self.sender] * rows, pa.string()),
                "seq": pa.array(range(first, first + rows), pa.int64()),
                "payload": pa.array([letter * self.row_bytes] * rows, pa.string()),
            }
        )
        return table, first


def config(args: argparse.Namespace) -> pyzerobus.WrapperConfiguration:
    return pyzerobus.WrapperConfiguration(
        endpoint=args.endpoint,
        unity_catalog_url=args.workspace_url,
        client_id=args.client_id,
        client_secret=os.environ["DATABRICKS_CLIENT_SECRET"],
        table_name=args.table,
        streams=args.streams,
        retry_max_attempts=30,
        retry_max_delay_ms=2000,
        ack_timeout_ms=10_000,
    )


def pause(args: argparse.Namespace, rng: random.Random, rows: int, took: float, workers: int = 1) -> float:
    """Seconds to wait: random below --pause, more when rows (or one send) in took exceed the share
    of --rate (or --send-rate)."""
    d = rng.uniform(0, args.pause)
    budget = 0.0
    if args.rate > 0:
        budget = rows * args.row_bytes / (args.rate / workers)
    if args.send_rate > 0:
        budget = max(budget, workers / args.send_rate)
    if budget > 0:
        d += budget - took
    return max(0.0, d)


def send_sync(w: pyzerobus.ZerobusWrapper, batches: Batches, ledger: Ledger) -> tuple[int, float]:
    """Send one batch and record it; return its rows and how long it took."""
    table, first = batches.make()
    start = time.perf_counter()
    res: Optional[pyzerobus.TransmissionResult]
    kind = error = ""
    try:
        res = w.send_batch(table)
    except ZerobusError as e:
        res, kind, error = e.result, e.kind, str(e)
    took = time.perf_counter() - start
    ledger.result(first, table.num_rows, took * 1000, res, kind, error)
    return table.num_rows, took


def run_sync(args: argparse.Namespace, batches: Batches, ledger: Ledger, stop: threading.Event) -> None:
    # The wrapper opens its streams on the first send; the engine's retries
    # carry them through a restarting server.
    w = pyzerobus.ZerobusWrapper(config(args))
    rng = random.Random(args.seed + 1)
    while not stop.is_set():
        rows, took = send_sync(w, batches, ledger)
        stop.wait(pause(args, rng, rows, took))
    close_error = ""
    try:
        w.shutdown(timeout=120)
    except ZerobusError as e:
        close_error = str(e)
    final(ledger, batches, w.stats(), close_error)


async def run_async(
    args: argparse.Namespace, batches: Batches, ledger: Ledger, stop: threading.Event
) -> None:
    w = pyzerobus.AsyncZerobusWrapper(config(args))

    async def worker(i: int) -> None:
        rng = random.Random(args.seed + 10 + i)
        while not stop.is_set():
            table, first = batches.make()
            start = time.perf_counter()
            res: Optional[pyzerobus.TransmissionResult]
            kind = error = ""
            try:
                res = await w.send_batch(table)
            except ZerobusError as e:
                res, kind, error = e.result, e.kind, str(e)
            took = time.perf_counter() - start
            ledger.result(first, table.num_rows, took * 1000, res, kind, error)
            await asyncio.sleep(pause(args, rng, table.num_rows, took, args.workers))

    await asyncio.gather(*(worker(i) for i in range(args.workers)))
    close_error = ""
    try:
        await w.shutdown(timeout=120)
    except ZerobusError as e:
        close_error = str(e)
    final(ledger, batches, w.stats(), close_error)


def final(ledger: Ledger, batches: Batches, stats: dict[str, int], close_error: str) -> None:
    ledger.write(
        {
            "sender": ledger.sender,
            "final": True,
            "next_seq": batches.next,
            "stats": stats,
            "close_error": close_error,
        }
    )


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--id", required=True, help="sender id, the sender column of every row")
    p.add_argument("--mode", choices=["sync", "asyncio"], default="sync")
    p.add_argument("--ledger", required=True, help="file the ledger is written to")
    p.add_argument("--table", default="main.soak.events")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--workspace-url", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument(
        "--streams",
        type=lambda v: v if v == "auto" else int(v),
        default="auto",
        help="a count, or auto (the default)",
    )
    p.add_argument("--workers", type=int, default=2, help="asyncio: sends in flight at once")
    p.add_argument("--row-bytes", type=int, default=1000)
    p.add_argument("--max-batch-bytes", type=int, default=10_000_000)
    p.add_argument("--pause", type=float, default=0.02, help="longest random pause between sends, seconds")
    p.add_argument(
        "--rate", type=int, default=1_000_000, help="payload bytes per second to stay below (0: no limit)"
    )
    p.add_argument(
        "--send-rate",
        type=float,
        default=0,
        help="sends per second to stay below (0: no limit)",
    )
    p.add_argument(
        "--small-rows",
        type=int,
        default=0,
        help="when positive, every batch has 1 to this many rows (log-uniform) instead of 1 KB to 10 MB",
    )
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not os.environ.get("DATABRICKS_CLIENT_SECRET"):
        p.error("the environment variable DATABRICKS_CLIENT_SECRET is not set")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    batches = Batches(args.id, args.row_bytes, args.max_batch_bytes, args.seed, args.small_rows)
    with open(args.ledger, "w") as out:
        ledger = Ledger(out, args.id)
        if args.mode == "sync":
            run_sync(args, batches, ledger, stop)
        else:
            asyncio.run(run_async(args, batches, ledger, stop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
