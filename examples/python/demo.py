"""The demo behind `make demo`: send the sample event table, then read it back.

    python examples/python/demo.py send --endpoint URL --workspace-url URL \
        --client-id ID --client-secret SECRET --table main.demo.events --rows 1000000
    python examples/python/demo.py show --data-dir DIR --table main.demo.events

`send` streams the generated rows (batch by batch, with a progress bar) and
prints the result; `show` reads the Delta table the server wrote, with
deltalake, and prints the row count and a few rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyzerobus
from events import event_batches


def send(args: argparse.Namespace) -> None:
    cfg = pyzerobus.WrapperConfiguration(
        endpoint=args.endpoint,
        unity_catalog_url=args.workspace_url,
        client_id=args.client_id,
        client_secret=args.client_secret,
        table_name=args.table,
    )
    print(f"sending {args.rows:,} events to {args.table} with {cfg!r}")
    start = time.monotonic()
    with pyzerobus.ZerobusWrapper(cfg) as w:
        result = w.send_batch(event_batches(args.rows), progress=True)
    secs = time.monotonic() - start
    print(result)
    print(
        f"{result.successful_count:,} rows acknowledged in {secs:.1f} s "
        f"({result.successful_count / secs:,.0f} rows/s, {result.batch_size_bytes / secs / 1e6:,.0f} MB/s)"
    )
    if not result.success:
        sys.exit(1)


def show(args: argparse.Namespace) -> None:
    import deltalake

    path = os.path.join(args.data_dir, *args.table.split("."))
    table = deltalake.DeltaTable(path).to_pyarrow_table()
    print(f"rows in the Delta table {args.table}: {table.num_rows:,}")
    print("first rows:")
    first = table.sort_by("event_id").slice(0, 3)
    for row in first.to_pylist():
        print(" ", row)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    for flag in ("--endpoint", "--workspace-url", "--client-id", "--client-secret", "--table"):
        s.add_argument(flag, required=True)
    s.add_argument("--rows", type=int, default=1_000_000)
    r = sub.add_parser("show")
    r.add_argument("--data-dir", required=True)
    r.add_argument("--table", required=True)
    args = p.parse_args()
    send(args) if args.cmd == "send" else show(args)


if __name__ == "__main__":
    main()
