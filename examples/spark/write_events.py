"""Write a DataFrame, then a stream, to Zerobus with Spark's "zerobus" data source.

    export DATABRICKS_CLIENT_SECRET=SECRET      # read by every executor, not put in the plan
    python examples/spark/write_events.py --endpoint URL --workspace-url URL \
        --client-id ID [--table main.demo.spark_events] [--rows 1000000] [--master local[2]]

Point it at Databricks or at a local server
(`.bin/zerobus-local serve --data-dir ./zb --client ID:SECRET`).

On a cluster: install the pyzerobus wheel on the driver and on every executor
(a cluster library, or `--py-files` does not do: the package has a native
module), set DATABRICKS_CLIENT_SECRET in the executors' environment
(`spark.executorEnv.DATABRICKS_CLIENT_SECRET`, from a secret scope on
Databricks: `{{secrets/scope/key}}`), and run the same code with
`spark-submit`. Each task opens its own wrapper, so a cluster of N cores has
up to N writers at once, each with streams "auto" unless told otherwise: one
stream to the table, more while one stream's quota (100,000 records/s) is the
limit. The batch write below fixes 2 per task.
"""

from __future__ import annotations

import argparse
import logging
import tempfile

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from pyzerobus.spark import ZerobusDataSource


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--endpoint", "--workspace-url", "--client-id"):
        p.add_argument(flag, required=True)
    p.add_argument("--table", default="main.demo.spark_events", help="the stream goes to <table>_stream")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--master", default="local[2]")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    spark = SparkSession.builder.master(args.master).config("spark.ui.enabled", "false").getOrCreate()
    spark.dataSource.register(ZerobusDataSource)
    conn = {
        "endpoint": args.endpoint,
        "unity_catalog_url": args.workspace_url,
        "client_id": args.client_id,
        "table_name": args.table,
    }

    # 1. A batch write: every partition is one task, one wrapper, its Arrow batches streamed.
    events = spark.range(args.rows, numPartitions=8).select(
        "id",
        F.concat(F.lit("event-"), F.col("id").cast("string")).alias("name"),
        F.array(F.lit("a"), (F.col("id") % 3).cast("string")).alias("tags"),
        F.struct((F.col("id") % 7).cast("int").alias("bucket")).alias("device"),
    )
    quarantine = tempfile.mkdtemp(prefix="zerobus-quarantine-")
    (
        events.write.format("zerobus")
        .options(**conn)
        .option("streams", "2")
        .option("on_failed_rows", "quarantine")  # or "fail" (the default): the task fails, Spark retries it
        .option("quarantine_path", quarantine)
        .mode("append")
        .save()
    )
    print(f"{args.rows:,} rows written; rows that failed, if any, are in {quarantine}")

    # 2. A stream: each micro-batch is acknowledged before Spark commits it (at least once).
    stream = spark.readStream.format("rate").option("rowsPerSecond", 1000).load()
    query = (
        stream.select(F.col("value").alias("id"), F.col("timestamp").alias("ts"))
        .writeStream.format("zerobus")
        .options(**{**conn, "table_name": args.table + "_stream"})
        .option("checkpointLocation", tempfile.mkdtemp(prefix="zerobus-checkpoint-"))
        .trigger(processingTime="2 seconds")
        .start()
    )
    query.awaitTermination(10)
    query.stop()
    print(f"stream: {sum(p['numInputRows'] for p in query.recentProgress):,} rows in micro-batches")
    spark.stop()


if __name__ == "__main__":
    main()
