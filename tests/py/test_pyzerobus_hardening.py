"""Cases an adversarial run found: malformed Arrow input, interrupts while closing, fork,
secrets in errors, one async wrapper on two event loops, a reader sent twice."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import pyzerobus
from conftest import LocalServer, arm_fault, read_delta, wrapper_config
from pyzerobus import AsyncZerobusWrapper, ConfigurationError, ConversionError, ZerobusError, ZerobusWrapper

DRY = dict(
    endpoint="http://127.0.0.1:1",
    unity_catalog_url="http://127.0.0.1:1",
    client_id="id",
    client_secret="secret",
    table_name="main.pytest.dry",
    zerobus_writer_disabled=True,
)


def overrun_strings(last_offset: int) -> tuple[pa.Array, np.ndarray]:
    """A 2-value string array over a 10-byte buffer, its last offset then set to last_offset.

    The offsets live in a numpy array that pyarrow shares, so the array is
    malformed after it was built, as memory shared with a buggy producer is.
    """
    offs = np.array([0, 5, 10], dtype=np.int32)
    arr = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(offs), pa.py_buffer(b"helloworld")])
    offs[2] = last_offset
    return arr, offs


# A child that sends a malformed string column in dry-run mode and prints
# what happened: the bug this guards against killed the interpreter.
OVERRUN_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pyarrow as pa, pyzerobus
    kind, last = sys.argv[1], int(sys.argv[2])
    offs = np.array([0, 5, 10], dtype=np.int32)
    arr = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(offs), pa.py_buffer(b"helloworld")])
    t = pa.table({"s": arr}); offs[2] = last
    data = {"table": t, "batch": t.to_batches()[0],
            "reader": pa.RecordBatchReader.from_batches(t.schema, t.to_batches())}[kind]
    with pyzerobus.ZerobusWrapper(endpoint="http://127.0.0.1:1", unity_catalog_url="http://127.0.0.1:1",
            client_id="id", client_secret="s", table_name="a.b.c", zerobus_writer_disabled=True) as w:
        try:
            res = w.send_batch(data)
            print(json.dumps({"sent": res.successful_count}))
        except pyzerobus.ZerobusError as exc:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    """
)


@pytest.mark.parametrize("kind", ["table", "batch", "reader"])
@pytest.mark.parametrize("last", [50_000_000, 12])
def test_string_offsets_past_the_buffer_are_refused(kind: str, last: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", OVERRUN_CHILD, kind, str(last)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, f"the interpreter died ({out.returncode}): {out.stderr[-2000:]}"
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # A small overrun used to encode and send 2 bytes of neighbouring memory.
    assert got.get("error") == "ConversionError", got
    assert "larger than values array" in got["message"], got
    assert "Column 0" in got["message"] or "column" in got["message"].lower(), got


def test_valid_input_still_goes_through_validation_unchanged() -> None:
    arr, _ = overrun_strings(10)  # well formed
    with ZerobusWrapper(**DRY) as w:
        assert w.send_batch(pa.table({"s": arr})).successful_count == 2
        reader = pa.RecordBatchReader.from_batches(
            pa.schema([("s", pa.string())]), [pa.record_batch({"s": arr})] * 3
        )
        assert w.send_batch(reader).successful_count == 6


def test_a_reader_sent_twice_is_refused_as_exhausted() -> None:
    schema = pa.schema([("id", pa.int64())])
    reader = pa.RecordBatchReader.from_batches(schema, [pa.record_batch({"id": [1, 2, 3]})])
    with ZerobusWrapper(**DRY) as w:
        assert w.send_batch(reader).successful_count == 3
        with pytest.raises(ConversionError, match="already sent and is exhausted"):
            w.send_batch(reader)


# ---------------------------------------------------------------- closing


def test_close_timeout_bounds_the_whole_shutdown(local_server: LocalServer, table_name: str) -> None:
    cfg = wrapper_config(local_server, table_name, ack_timeout_ms=300_000, flush_timeout_ms=300_000)
    w = ZerobusWrapper(cfg)
    w.send_batch(pa.table({"id": [0]}))  # the stream is open
    arm_fault(local_server, kind="stop_acks", times=-1)
    with pytest.warns(DeprecationWarning):  # the offset API: its failures are the shutdown's
        for i in range(3):
            w.send_batch_async(pa.table({"id": [i + 1]}))
    start = time.monotonic()
    with pytest.raises(ZerobusError) as info:
        w.close(timeout=2)
    elapsed = time.monotonic() - start
    # Three steps (waiting for the sends, flushing, closing) each took the
    # whole timeout: 3x. One deadline is 1x plus the cancellation.
    assert elapsed < 3.5, elapsed
    assert w.closed
    res = info.value.result
    assert res is not None and res.successful_count == 0 and res.failed_count == 1
    assert all(f.may_have_landed for f in res.failed_rows)


# A child that stops at a flush (mode "flush") or an explicit close (mode
# "close") of a wrapper whose server no longer acknowledges, until Ctrl-C.
STALLED_CHILD = textwrap.dedent(
    """
    import json, logging, sys, time, warnings
    import pyarrow as pa, pyzerobus
    logging.basicConfig(level=logging.WARNING)  # the warnings a user would see
    warnings.simplefilter("ignore", DeprecationWarning)  # send_batch_async: the shutdown reports its failure
    endpoint, workspace, cid, secret, table, mode = sys.argv[1:7]
    cfg = pyzerobus.WrapperConfiguration(endpoint=endpoint, unity_catalog_url=workspace,
        client_id=cid, client_secret=secret, table_name=table)  # flush_timeout_ms: 300 s
    def say(**kw): print(json.dumps(kw), flush=True)
    start = 0.0
    try:
        with pyzerobus.ZerobusWrapper(cfg) as w:
            w.send_batch(pa.table({"id": [0]}))
            say(state="open")
            sys.stdin.readline()  # the parent armed stop_acks
            w.send_batch_async(pa.table({"id": [1, 2, 3]}))
            say(state="waiting")
            if mode == "flush":
                w.flush()
            else:
                w.close()
    except KeyboardInterrupt:
        say(state="interrupted")
    """
)


@pytest.mark.parametrize("mode", ["flush", "close"])
def test_ctrl_c_ends_a_program_whose_server_stopped_acknowledging(
    local_server: LocalServer, table_name: str, mode: str
) -> None:
    cmd = [
        sys.executable,
        "-c",
        STALLED_CHILD,
        local_server.endpoint,
        local_server.workspace_url,
        local_server.client_id,
        local_server.client_secret,
        table_name,
        mode,
    ]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(cmd, stdin=pipe, stdout=pipe, stderr=pipe, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert json.loads(proc.stdout.readline()) == {"state": "open"}
        arm_fault(local_server, kind="stop_acks", times=-1)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"state": "waiting"}
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, err = proc.communicate(timeout=60)  # it used to stay for the 300 s flush timeout, twice
        elapsed = time.monotonic() - start
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == json.dumps({"state": "interrupted"})
    assert elapsed < 20, elapsed
    # Interrupted in the flush: __exit__ closes within its short bound and
    # says what failed. Interrupted in the close: the close is cut short.
    expected = "3 of 3 rows failed" if mode == "flush" else "shutdown interrupted: closing within"
    assert expected in err, err
    assert read_delta(local_server, table_name).num_rows >= 1


# ---------------------------------------------------------------- fork


def _send_in_child(queue: Any) -> None:
    try:
        with ZerobusWrapper(**DRY) as w:
            w.send_batch(pa.table({"id": [1]}), timeout=5)
        queue.put(("sent", ""))
    except ZerobusError as exc:
        queue.put((type(exc).__name__, str(exc)))


def _run_child(method: str) -> tuple[str, str]:
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    proc = ctx.Process(target=_send_in_child, args=(queue,))
    proc.start()
    proc.join(60)
    if proc.is_alive():
        proc.kill()
        pytest.fail(f"the {method} child hangs")
    return queue.get(timeout=5)


def test_a_forked_child_gets_a_clear_error_instead_of_hanging() -> None:
    with ZerobusWrapper(**DRY) as w:  # the engine is loaded in this process
        assert w.send_batch(pa.table({"id": [1]})).success
    kind, message = _run_child("fork")
    assert kind == "ZerobusError", (kind, message)
    assert "fork" in message and "spawn" in message and "forkserver" in message
    assert _run_child("spawn") == ("sent", "")


def test_a_forked_child_does_not_hang_at_exit_on_inherited_wrappers() -> None:
    w = ZerobusWrapper(**DRY)  # left open: the exit handler closes it in this process
    try:
        script = textwrap.dedent(
            """
            import os, sys
            import pyarrow as pa, pyzerobus
            w = pyzerobus.ZerobusWrapper(endpoint="http://127.0.0.1:1", unity_catalog_url="http://127.0.0.1:1",
                client_id="id", client_secret="s", table_name="a.b.c", zerobus_writer_disabled=True)
            w.send_batch(pa.table({"id": [1]}))
            pid = os.fork()
            if pid == 0:
                try:
                    w.send_batch(pa.table({"id": [2]}))
                except pyzerobus.ZerobusError as exc:
                    print("child:", exc.op, flush=True)
                sys.exit(0)  # atexit runs here: it must not touch the parent's engine
            _, status = os.waitpid(pid, 0)
            print("parent: child exited", os.waitstatus_to_exitcode(status), flush=True)
            """
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == ["child: fork", "parent: child exited 0"]
    finally:
        w.close()


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize("secret", [b"my-real-secret", 12345678901234, ["my-real-secret"]])
def test_a_secret_of_the_wrong_type_is_never_echoed(secret: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        ZerobusWrapper(**{**DRY, "client_secret": secret})
    exc = info.value
    text = " ".join([str(exc), repr(exc), *map(str, exc.problems)])
    assert "client_secret: must be str" in text
    for shown in ("my-real-secret", "12345678901234"):
        assert shown not in text


# ---------------------------------------------------------------- event loops


def test_an_async_wrapper_belongs_to_one_running_loop(config: pyzerobus.WrapperConfiguration) -> None:
    w = AsyncZerobusWrapper(config)
    first_running = threading.Event()
    stop = threading.Event()

    async def hold_first_loop() -> None:
        assert (await w.send_batch(pa.table({"id": [1]}))).success
        first_running.set()
        while not stop.is_set():
            await asyncio.sleep(0.01)

    t = threading.Thread(target=asyncio.run, args=(hold_first_loop(),))
    t.start()
    try:
        assert first_running.wait(30)

        async def from_second_loop() -> None:
            await w.send_batch(pa.table({"id": [2]}))

        with pytest.raises(ZerobusError, match="another event loop"):
            asyncio.run(from_second_loop())
    finally:
        stop.set()
        t.join(30)

    # The first loop has ended: the next asyncio.run may take the wrapper over.
    async def afterwards() -> int:
        res = await w.send_batch(pa.table({"id": [3]}))
        await w.close()
        return res.successful_count

    assert asyncio.run(afterwards()) == 1
