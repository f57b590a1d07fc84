"""Process-level behaviour: bounded memory on 5 million rows, Ctrl-C during a send."""

from __future__ import annotations

import _thread
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow as pa
import pytest

from conftest import LocalServer
from pyzerobus import ZerobusWrapper

# A child process: connects to the server given in argv, prints JSON lines.
CHILD_PRELUDE = textwrap.dedent(
    """
    import json, logging, resource, sys, time
    import pyarrow as pa
    import pyzerobus
    logging.basicConfig(level=logging.WARNING)  # the warnings a user would see

    endpoint, workspace, client_id, secret, table = sys.argv[1:6]
    cfg = pyzerobus.WrapperConfiguration(
        endpoint=endpoint, unity_catalog_url=workspace, client_id=client_id,
        client_secret=secret, table_name=table)

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def say(**kw):
        print(json.dumps(kw), flush=True)

    # One 50,000-row template batch of about 200-byte rows; batches differ by id.
    BATCH = 50_000
    n = BATCH
    template = pa.record_batch({
        "user": pa.array([f"user-{i % 9973:05d}" for i in range(n)]),
        "payload": pa.array([("event payload " * 12)[: 120 + i % 40] for i in range(n)]),
        "score": pa.array([i * 0.25 for i in range(n)]),
    })

    def batch(start):
        ids = pa.array(range(start, start + BATCH), pa.int64())
        return pa.record_batch([ids, *template.columns], names=["id", *template.column_names])

    schema = batch(0).schema
    """
)

RSS_CHILD = CHILD_PRELUDE + textwrap.dedent(
    """
    mode = sys.argv[6]
    total = 5_000_000
    with pyzerobus.ZerobusWrapper(cfg) as w:
        w.send_batch(batch(0))  # warm up: stream open, schema compiled
        before = peak_mb()
        if mode == "reader":
            data = pa.RecordBatchReader.from_batches(schema, (batch(s) for s in range(0, total, BATCH)))
        else:
            data = pa.Table.from_batches([batch(s) for s in range(0, total, BATCH)])
        start = time.monotonic()
        res = w.send_batch(data)
        secs = time.monotonic() - start
        say(rows=res.successful_count, failed=res.failed_count, bytes=res.batch_size_bytes,
            before_mb=before, peak_mb=peak_mb(), seconds=secs)
    """
)

SIGINT_CHILD = CHILD_PRELUDE + textwrap.dedent(
    """
    w = pyzerobus.ZerobusWrapper(cfg)
    def endless():
        start = 0
        while True:
            yield batch(start)
            start += BATCH
            time.sleep(0.02)
    say(state="ready")
    try:
        w.send_batch(pa.RecordBatchReader.from_batches(schema, endless()))
        say(state="finished")
    except KeyboardInterrupt:
        say(state="interrupted")
    res = w.send_batch(batch(10**9))
    say(state="after", success=res.success, rows=res.successful_count)
    w.close()
    say(state="closed")
    """
)


def run_child(script: str, server: LocalServer, table: str, *args: str, timeout: float = 300) -> list[dict]:
    cmd = [
        sys.executable,
        "-c",
        script,
        server.endpoint,
        server.workspace_url,
        server.client_id,
        server.client_secret,
        table,
        *args,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("mode", ["reader", "table"])
def test_five_million_rows_with_bounded_memory(discard_server: LocalServer, mode: str) -> None:
    (got,) = run_child(RSS_CHILD, discard_server, "main.pytest.volume", mode)
    assert got["rows"] == 5_000_000 and got["failed"] == 0
    encoded_mb = got["bytes"] / 2**20
    growth = got["peak_mb"] - got["before_mb"]
    print(
        f"\n{mode}: 5M rows, {encoded_mb:.0f} MiB encoded in {got['seconds']:.1f} s; "
        f"peak RSS {got['before_mb']:.0f} -> {got['peak_mb']:.0f} MiB (+{growth:.0f})"
    )
    assert encoded_mb > 750  # 5M rows of about 168 bytes
    # The in-flight window (64 MiB) and a few chunks in conversion bound the
    # memory, not the data: far less than the encoded size.
    assert growth < 200, got


def test_sigint_during_a_send_leaves_the_wrapper_usable(local_server: LocalServer, table_name: str) -> None:
    cmd = [
        sys.executable,
        "-c",
        SIGINT_CHILD,
        local_server.endpoint,
        local_server.workspace_url,
        local_server.client_id,
        local_server.client_secret,
        table_name,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline()) == {"state": "ready"}
    time.sleep(2.0)  # the endless send is well under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    states = [json.loads(line) for line in out.splitlines()]
    assert states[0] == {"state": "interrupted"}
    assert states[1] == {"state": "after", "success": True, "rows": 50_000}
    assert states[2] == {"state": "closed"}
    assert "send cancelled" in err  # logged with the counts of what landed


def test_interrupt_main_during_a_send(config: object) -> None:
    schema = pa.schema([("id", pa.int64())])

    def slow():
        for i in range(10_000):
            yield pa.record_batch([pa.array(range(i * 100, i * 100 + 100), pa.int64())], schema=schema)
            time.sleep(0.01)

    with ZerobusWrapper(config) as w:  # type: ignore[arg-type]
        timer = threading.Timer(0.5, _thread.interrupt_main)
        timer.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            w.send_batch(pa.RecordBatchReader.from_batches(schema, slow()))
        assert time.monotonic() - start < 5  # seen within a wait slice, not after 100 s
        res = w.send_batch(pa.table({"id": [1, 2, 3]}))
        assert res.success and res.successful_count == 3


EXIT_CHILD = CHILD_PRELUDE + textwrap.dedent(
    """
    w = pyzerobus.ZerobusWrapper(cfg)
    w.send_batch_nowait(batch(0))
    say(state="leaving")  # no close: the exit handler flushes and closes
    """
)


def test_wrappers_left_open_are_closed_at_exit(local_server: LocalServer, table_name: str) -> None:
    from conftest import read_delta

    assert run_child(EXIT_CHILD, local_server, table_name) == [{"state": "leaving"}]
    assert read_delta(local_server, table_name).num_rows == 50_000
