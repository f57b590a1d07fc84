"""Quick start: send a DataFrame, handle rows that fail, send many frames with asyncio.

    python examples/python/quickstart.py --endpoint URL --workspace-url URL \
        --client-id ID --client-secret SECRET [--table main.demo.quickstart]

Point it at Databricks (the Zerobus endpoint and the workspace URL) or at a
local server: `.bin/zerobus-local serve --data-dir ./zb --client ID:SECRET`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import pandas as pd
import pyarrow as pa

import pyzerobus


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--endpoint", "--workspace-url", "--client-id", "--client-secret"):
        p.add_argument(flag, required=True)
    p.add_argument("--table", default="main.demo.quickstart")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg = pyzerobus.WrapperConfiguration(
        endpoint=args.endpoint,
        unity_catalog_url=args.workspace_url,
        client_id=args.client_id,
        client_secret=args.client_secret,
        table_name=args.table,
    )

    # 1. Any Arrow-shaped data: here a pandas DataFrame.
    frame = pd.DataFrame({"id": range(10_000), "city": ["Paris", "Lima", "Oslo", "Pune"] * 2_500})
    frame["temp"] = frame["id"] % 40 - 5.5
    with pyzerobus.ZerobusWrapper(cfg) as w:
        result = w.send_batch(frame)
        print(result)

        # 2. Rows that cannot be converted fail alone; the others land.
        #    (A uint64 id above 2^63-1 does not fit the table's BIGINT.)
        odd = pa.table(
            {"id": pa.array([10_000, 2**64 - 1], pa.uint64()), "city": ["Rome", "Nice"], "temp": [21.0, 19.5]}
        )
        result = w.send_batch(odd)
        print(f"partial send: {result.successful_count} ok, {result.failed_count} failed")
        for row in result.failed_rows:
            print(f"  row {row.index}: {row.error}")
        print("rows to fix and resend:", result.extract_failed_batch(odd).to_pylist())

        # 3. Many sends in flight from one thread: each returns a future at once.
        futures = [w.send_batch_nowait(frame.assign(id=frame["id"] + 20_000 * (k + 1))) for k in range(3)]
        done = [f.result() for f in futures]
        print(f"async: {sum(r.successful_count for r in done):,} rows in {len(done)} sends")

    # 4. asyncio: many sends in flight from one event loop.
    async def many() -> int:
        async with pyzerobus.AsyncZerobusWrapper(cfg) as aw:
            frames = [frame.assign(id=frame["id"] + 100_000 * (k + 1)) for k in range(8)]
            results = await asyncio.gather(*(aw.send_batch(f) for f in frames))
            return sum(r.successful_count for r in results)

    print(f"asyncio: {asyncio.run(many()):,} rows")

    # 5. Errors are exceptions of one tree, with the server's details.
    try:
        with pyzerobus.ZerobusWrapper(cfg.replace(client_secret="wrong")) as w:
            w.send_batch(frame.head(1))
    except pyzerobus.AuthenticationError as e:
        print(f"as expected: {type(e).__name__} retryable={e.retryable}")


if __name__ == "__main__":
    main()
