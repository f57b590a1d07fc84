"""Throughput of Spark's ``zerobus`` data source next to one wrapper and Spark's Parquet writer.

    .venv/bin/python tools/bench/sparkbench.py [--rows 2000000] [--repeat 3] [--profile databricks]

One run, one zerobus-local in --discard mode (it acknowledges without
storing), one Spark session in ``local[2]`` (--master), one DataFrame:
--rows generated rows of {id, ts, name, score, tags, payload}, about 220
bytes each once encoded, in --partitions partitions, cached in Spark's
memory before the first round so that no contender pays for generating it.
Contenders:

  zerobus-source  df.write.format("zerobus"): each task sends its partition
                  through its own wrapper (one stream each, --streams)
  one-wrapper     df.toArrow() on the driver, then one ZerobusWrapper
                  sends that table (the time of both; the collect alone
                  is printed too)
  parquet         df.write.parquet() to local disk: Spark's own sink

Contenders take turns for --repeat rounds; each figure is a contender's best
round, as rows/s and MB/s of encoded records (the one-wrapper send's
count of bytes), and as ratios to the one-wrapper and Parquet figures.

--profile databricks runs the server like the real service (about 150 ms to
durability, 100 MB/s and 100,000 records/s per stream); use fewer rows
(--rows 1000000 is plenty).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "py"))

import pyarrow as pa  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402, N812

import pyzerobus  # noqa: E402
from conftest import CLIENT_SECRET, LocalServer, start_server  # noqa: E402
from pyzerobus.spark import ZerobusDataSource  # noqa: E402

TABLE = "main.bench.spark"


def generated(spark: SparkSession, rows: int, partitions: int) -> DataFrame:
    """Rows of about 220 encoded bytes: a 177-character payload and a few small columns."""
    return spark.range(0, rows, numPartitions=partitions).select(
        F.col("id"),
        F.timestamp_seconds(F.lit(1_700_000_000) + F.col("id")).alias("ts"),
        F.concat(F.lit("event-"), F.col("id").cast("string")).alias("name"),
        (F.col("id") * 0.5).alias("score"),
        F.array(F.lit("a"), (F.col("id") % 3).cast("string")).alias("tags"),
        F.concat(F.lpad(F.col("id").cast("string"), 10, "0"), F.lit("x" * 167)).alias("payload"),
    )


def run_source(df: DataFrame, rows: int, options: dict[str, str]) -> tuple[int, float]:
    start = time.perf_counter()
    df.write.format("zerobus").options(**options).mode("append").save()
    return rows, time.perf_counter() - start


def run_one_wrapper(
    df: DataFrame, rows: int, cfg: pyzerobus.WrapperConfiguration, collects: list[float]
) -> tuple[int, float]:
    start = time.perf_counter()
    table: pa.Table = df.toArrow()
    collects.append(time.perf_counter() - start)
    with pyzerobus.ZerobusWrapper(cfg) as w:
        res = w.send_batch(table)
    secs = time.perf_counter() - start
    assert res.success and res.successful_count == rows, res
    run_one_wrapper.encoded_bytes = res.batch_size_bytes  # type: ignore[attr-defined]
    return res.successful_count, secs


def run_parquet(df: DataFrame, rows: int, where: pathlib.Path) -> tuple[int, float]:
    start = time.perf_counter()
    df.write.mode("overwrite").parquet(str(where))
    secs = time.perf_counter() - start
    shutil.rmtree(where, ignore_errors=True)
    return rows, secs


def interleaved(
    rounds: int, contenders: dict[str, tuple[Callable[..., tuple[int, float]], tuple[Any, ...]]]
) -> dict[str, tuple[int, float]]:
    """Run every contender once per round, in turn, and keep each one's fastest run."""
    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in contenders}
    for r in range(rounds):
        for name, (fn, fn_args) in contenders.items():
            out = fn(*fn_args)
            runs[name].append(out)
            print(f"  round {r + 1} {name:<15} {out[0] / out[1]:>12,.0f} rows/s", flush=True)
    return {name: min(out, key=lambda o: o[1]) for name, out in runs.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--repeat", type=int, default=3, help="rounds; each contender's best round counts")
    p.add_argument("--streams", type=int, default=1, help="streams of each wrapper")
    p.add_argument("--profile", choices=["default", "databricks"], default="default", help="server profile")
    args = p.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="sparkbench-"))
    flags = ["--discard"] + (["--profile", "databricks"] if args.profile == "databricks" else [])
    server: LocalServer = start_server(tmp / "data", *flags)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(args.master)
        .appName("pyzerobus-sparkbench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "3g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.executorEnv.DATABRICKS_CLIENT_SECRET", CLIENT_SECRET)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.dataSource.register(ZerobusDataSource)
    try:
        df = generated(spark, args.rows, args.partitions).cache()
        assert df.count() == args.rows
        options = {
            "endpoint": server.endpoint,
            "unity_catalog_url": server.workspace_url,
            "client_id": server.client_id,
            "table_name": TABLE,
            "streams": str(args.streams),
            "log_level": "warning",
        }
        cfg = pyzerobus.WrapperConfiguration(
            endpoint=server.endpoint,
            unity_catalog_url=server.workspace_url,
            client_id=server.client_id,
            client_secret=server.client_secret,
            table_name=TABLE,
            streams=args.streams,
        )
        # Not timed: start Spark's Python workers, compile the schema, open the first connections.
        warm = generated(spark, 10_000, args.partitions)
        run_source(warm, 10_000, options)
        run_one_wrapper(warm, 10_000, cfg, [])
        run_parquet(warm, 10_000, tmp / "parquet")
        collects: list[float] = []
        print(
            f"{args.rows:,} rows, {args.partitions} partitions, {args.master}, server profile {args.profile}"
        )
        r = interleaved(
            args.repeat,
            {
                "zerobus-source": (run_source, (df, args.rows, options)),
                "one-wrapper": (run_one_wrapper, (df, args.rows, cfg, collects)),
                "parquet": (run_parquet, (df, args.rows, tmp / "parquet")),
            },
        )
    finally:
        spark.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    per_row = run_one_wrapper.encoded_bytes / args.rows  # type: ignore[attr-defined]
    report(r, per_row, min(collects), args.rows)
    print(json.dumps({n: {"rows": v[0], "seconds": round(v[1], 4)} for n, v in r.items()}))


def report(r: dict[str, tuple[int, float]], per_row: float, collect: float, rows: int) -> None:
    rate = {k: v[0] / v[1] for k, v in r.items()}
    print(f"\nencoded records of {per_row:.0f} bytes; df.toArrow() alone: {rows / collect:,.0f} rows/s")
    print(f"  {'contender':<15} {'rows/s':>12} {'MB/s':>8} {'vs one-wrapper':>15} {'vs parquet':>11}")
    for name, (n, secs) in r.items():
        print(
            f"  {name:<15} {n / secs:>12,.0f} {n * per_row / secs / 1e6:>8,.0f} "
            f"{rate[name] / rate['one-wrapper']:>14.2f}x {rate[name] / rate['parquet']:>10.2f}x"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
