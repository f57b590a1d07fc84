"""The soak tool (tools/soak): its checker, its Python sender, and a short soak against zerobus-local."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
from types import ModuleType
from typing import Any

import deltalake
import pyarrow as pa
import pytest

from conftest import REPO, LocalServer, arm_fault

SOAK_DIR = REPO / "tools" / "soak"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"soak_{name}", SOAK_DIR / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


soak = load("soak")
pysender = load("pysender")


def send_line(
    sender: str, first: int, rows: int, acked: list, failed: list, attempts: int = 1, ms: float = 5.0
):
    return {
        "sender": sender,
        "first": first,
        "rows": rows,
        "latency_ms": ms,
        "success": not failed,
        "attempts": attempts,
        "acked": acked,
        "failed": failed,
    }


def final_line(sender: str, next_seq: int, maybe_duplicated: int = 0) -> dict:
    return {
        "sender": sender,
        "final": True,
        "next_seq": next_seq,
        "stats": {"records_maybe_duplicated": maybe_duplicated},
        "close_error": "",
    }


def write_case(tmp: pathlib.Path, ledgers: dict[str, list[dict]], rows: list[tuple[str, int]]) -> tuple:
    """Ledgers as *.jsonl files and the rows as a real Delta table."""
    ldir, tdir = tmp / "ledgers", tmp / "table"
    ldir.mkdir()
    for name, lines in ledgers.items():
        (ldir / f"{name}.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    deltalake.write_deltalake(
        str(tdir),
        pa.table(
            {
                "sender": pa.array([s for s, _ in rows], pa.string()),
                "seq": pa.array([q for _, q in rows], pa.int64()),
                "payload": pa.array(["x"] * len(rows), pa.string()),
            }
        ),
    )
    return ldir, tdir


def test_checker_clean(tmp_path: pathlib.Path) -> None:
    # a: 0..9 acknowledged in two sends, 5 twice (its send was replayed).
    # b: an async sender (attempts unknown): 0..3 acknowledged, 2 twice,
    # explained by its records_maybe_duplicated; 4..5 failed, 4 may have
    # landed and did, 5 certainly not sent and is absent.
    ledgers = {
        "a": [
            send_line("a", 0, 4, [[0, 4]], [], ms=3),
            send_line("a", 4, 6, [[0, 6]], [], attempts=2, ms=900),
            final_line("a", 10),
        ],
        "b": [
            send_line("b", 0, 4, [[0, 4]], [], attempts=-1),
            send_line("b", 4, 2, [], [[0, 1, "connection", True], [1, 1, "transmission", False]], attempts=1),
            final_line("b", 6, maybe_duplicated=1),
        ],
    }
    rows = [("a", i) for i in range(10)] + [("a", 5)] + [("b", i) for i in range(5)] + [("b", 2)]
    ldir, tdir = write_case(tmp_path, ledgers, rows)
    out = tmp_path / "s.json"
    assert soak.main(["check", "--ledgers", str(ldir), "--table", str(tdir), "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert (s["acked_missing"], s["landed_never_sent"]) == (0, 0)
    assert s["sends"] == 4 and s["sends_succeeded"] == 3 and s["success_rate"] == 0.75
    assert s["sends_failed_by_kind"] == {"connection": 1}
    assert (s["rows_sent"], s["rows_acked"], s["landed_rows"]) == (16, 14, 17)
    assert s["rows_failed_by_kind"] == {"connection": 1, "transmission": 1}
    assert s["rows_failed_may_have_landed"] == 1 and s["landed_may_have_landed"] == 1
    assert (s["duplicate_keys"], s["duplicate_rows"]) == (2, 2)
    assert s["duplicates_replayed_send"] == 1 and s["duplicates_replayed_stats"] == 1
    assert s["duplicates_unexplained"] == 0 and s["unreported_rows"] == 0
    # Latency buckets by payload (1000 bytes a row): 4 and 6 rows are <=16 KB.
    assert s["latency_by_batch_size"] == {
        "<=16 KB": {"sends": 4, "p50_ms": 5.0, "p95_ms": 900.0, "p99_ms": 900.0}
    }
    assert s["latency_by_batch_size_first_call"]["<=16 KB"]["sends"] == 1


def test_checker_fails_on_a_lost_or_unexpected_row(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture
) -> None:
    # seq 3 of a is acknowledged but missing; b's seq 1 was reported
    # certainly not sent but landed, and b/7 and c/0 are keys no ledger
    # reported; a's seq 0 landed twice from a send written on one call.
    ledgers = {
        "a": [send_line("a", 0, 4, [[0, 4]], []), final_line("a", 4)],
        "b": [send_line("b", 0, 2, [[0, 1]], [[1, 1, "retry_exhausted", False]]), final_line("b", 2)],
    }
    rows = [("a", 0), ("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 7), ("c", 0)]
    ldir, tdir = write_case(tmp_path, ledgers, rows)
    out = tmp_path / "s.json"
    cmd = [sys.executable, str(SOAK_DIR / "soak.py"), "check", "--ledgers", str(ldir), "--table", str(tdir)]
    proc = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    s = json.loads(out.read_text())
    assert s["acked_missing"] == 1 and s["examples"]["acked_missing"] == ["a/3"]
    assert s["landed_never_sent"] == 3
    assert sorted(s["examples"]["landed_never_sent"]) == ["b/1", "b/7", "c/0"]
    assert s["duplicates_unexplained"] == 1 and s["examples"]["duplicates_unexplained"] == ["a/0"]
    assert "acknowledged but missing: 1" in proc.stdout
    assert "RESULT: FAIL (acked_missing, landed_never_sent not 0)" in proc.stdout


def test_checker_success_rates(tmp_path: pathlib.Path) -> None:
    """Both success rates: every send, and every send not failed by an injected fatal fault.

    A failed send counts as hit by a fatal fault only when its error carries an
    injected fatal fault's status message ("soak fatal fault N"); a fatal
    status of the same kind without it, or a transient failure, still counts
    against the second rate.
    """
    fatal_msg = "zbwrap: transmission error: send: rpc error: code = InvalidArgument desc = soak fatal fault "
    fail = [[0, 2, "transmission", False]]
    ledgers = {
        "a": [
            send_line("a", 0, 2, [[0, 2]], []),
            {**send_line("a", 2, 2, [], fail), "error": fatal_msg + "1"},
            {**send_line("a", 4, 2, [], fail), "error": fatal_msg + "12"},
            {**send_line("a", 6, 2, [], fail), "error": fatal_msg + "12"},  # one fault, two sends
            final_line("a", 8),
        ],
        "b": [
            send_line("b", 0, 2, [[0, 2]], []),
            send_line("b", 2, 2, [[0, 2]], []),
            send_line("b", 4, 2, [[0, 2]], []),
            # the same code, but not an injected fault's message: not excused
            {**send_line("b", 6, 2, [], fail), "error": "code = InvalidArgument desc = bad row"},
            # a transient failure (retries exhausted): not excused
            {**send_line("b", 8, 2, [], [[0, 2, "retry_exhausted", False]]), "error": "retry exhausted"},
            # no error field (an old ledger): not excused
            send_line("b", 10, 2, [], fail),
            # "soak fatal fault 1x" is not the mark of fault 1
            {**send_line("b", 12, 2, [], fail), "error": "soak fatal fault 1x"},
            final_line("b", 14),
        ],
    }
    rows = [("a", 0), ("a", 1)] + [("b", i) for i in range(6)]
    ldir, tdir = write_case(tmp_path, ledgers, rows)
    out = tmp_path / "s.json"
    assert soak.main(["check", "--ledgers", str(ldir), "--table", str(tdir), "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert (s["sends"], s["sends_succeeded"]) == (11, 4)
    assert s["success_rate"] == 4 / 11
    assert s["sends_hit_by_fatal_fault"] == 3 and s["fatal_faults_that_failed_sends"] == [1, 12]
    assert s["success_rate_without_fatal_faults"] == 4 / 8
    text = soak.render(s)
    assert "success rate, all sends: 36.3636% (4 of 11)" in text
    assert "success rate, sends not hit by an injected fatal fault: 50.0000% (4 of 8; 3 failed sends" in text
    # Nothing but fatal-fault failures: the second rate is 100%; no sends at all: 0.
    senders, sends = soak.read_ledgers(sorted(ldir.glob("a.jsonl")), 1000)
    s = soak.check(senders, sends, {"a": soak.np.array([0, 1])})
    assert s["success_rate"] == 0.25 and s["success_rate_without_fatal_faults"] == 1.0
    s = soak.check({}, soak.read_ledgers([], 1000)[1], {})
    assert s["success_rate"] == 0.0 and s["success_rate_without_fatal_faults"] == 0.0


def test_checker_rejects_a_bad_ledger(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sender": "a"\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not JSON"):
        soak.read_ledgers([bad], 1000)
    bad.write_text(json.dumps(send_line("a", 0, 3, [[0, 1]], [])) + "\n")
    with pytest.raises(ValueError, match=r"a: the send of seq 0..2 accounts for 1 rows"):
        soak.read_ledgers([bad], 1000)
    # A sender that never wrote its final line is named; its silent seqs are unreported.
    bad.write_text(json.dumps(send_line("a", 2, 1, [[0, 1]], [])) + "\n")
    senders, sends = soak.read_ledgers([bad], 1000)
    s = soak.check(senders, sends, {"a": soak.np.array([2])})
    assert s["senders_without_final_line"] == ["a"] and s["unreported_rows"] == 2
    assert "did not stop cleanly: a" in soak.render(s)


def test_parse_duration() -> None:
    assert soak.parse_duration("90") == 90
    assert soak.parse_duration("1m30s") == 90
    assert soak.parse_duration("10m") == 600
    assert soak.parse_duration("250ms") == 0.25
    with pytest.raises(argparse.ArgumentTypeError, match="'ten'"):
        soak.parse_duration("ten")
    assert soak.bucket(10_000_000) == "<=10 MB" and soak.bucket(10_000_001) == ">10 MB"
    assert soak.percentile([], 95) == 0.0
    assert soak.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
def test_pysender_ledger_matches_table(
    mode: str, local_server: LocalServer, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python sender's ledger agrees with the table through a dropped connection and a fatal status."""
    table = "main.soak.py_" + mode
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", local_server.client_secret)
    arm_fault(local_server, kind="drop_connection", after_records=300)
    arm_fault(
        local_server,
        kind="fail_call",
        code="INVALID_ARGUMENT",
        after_records=1200,
        message="soak fatal fault 4",
    )
    args = argparse.Namespace(
        endpoint=local_server.endpoint,
        workspace_url=local_server.workspace_url,
        client_id=local_server.client_id,
        table=table,
        streams=2,
        workers=2,
        row_bytes=100,
        max_batch_bytes=20_000,
        rate=2_000_000,
        pause=0.001,
        send_rate=0,
        seed=3,
    )
    ledger_path = tmp_path / f"{mode}.jsonl"
    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)
    timer.start()
    with open(ledger_path, "w") as out:
        ledger = pysender.Ledger(out, mode)
        batches = pysender.Batches(mode, args.row_bytes, args.max_batch_bytes, args.seed)
        if mode == "sync":
            pysender.run_sync(args, batches, ledger, stop)
        else:
            asyncio.run(pysender.run_async(args, batches, ledger, stop))
    timer.join()
    assert local_server.stop() == 0
    senders, sends = soak.read_ledgers([ledger_path], args.row_bytes)
    s = soak.check(senders, sends, soak.read_landed(local_server.table_dir(table)))
    assert s["senders_without_final_line"] == [] and s["close_errors"] == {}
    assert s["sends"] > 3 and s["unreported_rows"] == 0
    assert (s["acked_missing"], s["landed_never_sent"]) == (0, 0), s["examples"]
    assert s["rows_failed_by_kind"].get("transmission", 0) > 0, s
    # The failed sends carry the injected fault's message: none failed otherwise.
    assert s["fatal_faults_that_failed_sends"] == [4], s
    assert s["sends_succeeded"] == s["sends"] - s["sends_hit_by_fatal_fault"]
    assert s["rows_acked"] > 0 and s["landed_rows"] >= s["rows_acked"]
    assert s["stats"][mode]["calls_opened"] >= 2


def test_pysender_main(
    local_server: LocalServer, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command stops cleanly on SIGTERM and leaves a complete ledger."""
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", local_server.client_secret)
    ledger_path = tmp_path / "l.jsonl"
    argv = ["--id", "m", "--ledger", str(ledger_path), "--endpoint", local_server.endpoint]
    argv += ["--workspace-url", local_server.workspace_url, "--client-id", local_server.client_id]
    argv += ["--max-batch-bytes", "5000", "--pause", "0.01"]
    saved = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        assert pysender.main(argv) == 0
    finally:
        timer.join()
        signal.signal(signal.SIGTERM, saved[0])
        signal.signal(signal.SIGINT, saved[1])
    lines = [json.loads(ln) for ln in ledger_path.read_text().splitlines()]
    assert lines[-1]["final"] and lines[-1]["close_error"] == ""
    assert len(lines) > 2 and all(ln["success"] for ln in lines[:-1])
    assert lines[-1]["next_seq"] == sum(ln["rows"] for ln in lines[:-1])


def test_pysender_ledger_without_result() -> None:
    """A send the engine never took: every row failed, certainly not sent, with the error's kind."""
    out = io.StringIO()
    pysender.Ledger(out, "s").result(7, 3, 1.5, None, "conversion", "bad column x")
    want = send_line("s", 7, 3, [], [[0, 3, "conversion", False]], 0, 1.5)
    assert json.loads(out.getvalue()) == {**want, "error": "bad column x"}


def test_pysender_small_batches_and_send_rate() -> None:
    """--small-rows N: 1 to N rows a batch, mostly few; --send-rate spaces sends across the workers."""
    b = pysender.Batches("s", 10, 10_000_000, 5, small_rows=100)
    sizes = [b.make()[0].num_rows for _ in range(400)]
    assert min(sizes) == 1 and max(sizes) <= 100 and max(sizes) > 50
    assert sorted(sizes)[200] < 30  # log-uniform: the median is about 10 rows
    assert b.next == sum(sizes)
    args = argparse.Namespace(pause=0.0, rate=0, send_rate=50.0, row_bytes=10)
    rng = pysender.random.Random(1)
    assert pysender.pause(args, rng, 5, 0.0) == pytest.approx(0.02)
    assert pysender.pause(args, rng, 5, 0.005, workers=4) == pytest.approx(0.075)
    assert pysender.pause(args, rng, 5, 1.0) == 0.0
    # Both limits: the larger wait wins.
    args.rate = 100
    assert pysender.pause(args, rng, 5, 0.0) == pytest.approx(0.5)
    args.rate, args.send_rate = 0, 0.0
    assert pysender.pause(args, rng, 5, 0.0) == 0.0


def test_pysender_without_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("DATABRICKS_CLIENT_SECRET", raising=False)
    argv = ["--id", "x", "--ledger", "l", "--endpoint", "e", "--workspace-url", "u", "--client-id", "c"]
    with pytest.raises(SystemExit):
        pysender.main(argv)
    assert "DATABRICKS_CLIENT_SECRET is not set" in capsys.readouterr().err


def soak_sender_bin() -> str:
    path = os.environ.get("SOAK_SENDER_BIN") or str(REPO / ".bin" / "soak-sender")
    if not os.path.exists(path):
        built = subprocess.run(["go", "build", "-o", path, "./tools/soak/sender"], cwd=REPO, check=False)
        if built.returncode != 0:
            pytest.fail("cannot build tools/soak/sender; run `make build`")
    return path


def test_soak_short(tmp_path: pathlib.Path) -> None:
    """make soak for SOAK_SHORT_DURATION (60 s): faults and a server kill, nothing acknowledged lost."""
    duration = os.environ.get("SOAK_SHORT_DURATION", "60s")
    out = tmp_path / "soak.json"
    rc = soak.main(
        [
            "run",
            "--duration",
            duration,
            "--kill-every",
            str(soak.parse_duration(duration) / 2),
            "--fault-every",
            "2",
            "--rate",
            "1000000",
            "--work-dir",
            str(tmp_path / "work"),
            "--sender",
            soak_sender_bin(),
            "--json",
            str(out),
        ]
    )
    s: dict[str, Any] = json.loads(out.read_text())
    assert rc == 0, s
    assert (s["acked_missing"], s["landed_never_sent"]) == (0, 0)
    assert s["run"]["error"] == "" and s["run"]["server_kills"] >= 1 and s["run"]["faults_armed"] >= 5
    assert 1 <= s["run"]["faults_fired"] <= s["run"]["faults_armed"]
    assert len(s["senders"]) == 7 and s["senders_without_final_line"] == []
    assert {"go-small-16workers", "py-asyncio-small-32"} <= set(s["senders"])
    # Every send a fatal fault failed carries the message of one the driver armed.
    assert set(s["fatal_faults_that_failed_sends"]) <= set(s["run"]["fatal_faults_armed"])
    assert len(s["fatal_faults_that_failed_sends"]) <= s["sends_hit_by_fatal_fault"]
    assert s["unreported_rows"] == 0 and s["rows_acked"] > 0
    assert s["rows_sent"] == s["rows_acked"] + sum(s["rows_failed_by_kind"].values())
