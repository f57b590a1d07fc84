"""The pyzerobus command: send files to zerobus-local, quarantine, dry run, interrupts, exit codes, help."""

from __future__ import annotations

import _thread
import io
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.csv
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

from conftest import LocalServer, arm_fault, read_delta, start_server
from pyzerobus import cli

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])


def rows(first: int, n: int) -> pa.Table:
    ids = list(range(first, first + n))
    return pa.table({"id": pa.array(ids, pa.int64()), "name": [f"row-{i}" for i in ids]}, schema=SCHEMA)


def mixed_dir(root: pathlib.Path) -> int:
    """A directory of Parquet, Arrow IPC (file and stream), CSV and JSON lines files; its row count."""
    (root / "sub").mkdir(parents=True)
    pq.write_table(rows(0, 300), root / "a.parquet", row_group_size=100)
    with pa.ipc.new_file(root / "b.arrow", SCHEMA) as w:
        w.write_table(rows(300, 200), max_chunksize=64)
    with pa.ipc.new_stream(root / "sub" / "c.arrows", SCHEMA) as w:
        w.write_table(rows(500, 100))
    pyarrow.csv.write_csv(rows(600, 150), root / "d.csv")
    with open(root / "sub" / "e.jsonl", "w") as f:
        for r in rows(750, 50).to_pylist():
            f.write(json.dumps(r) + "\n")
    (root / "_SUCCESS").write_text("")
    (root / ".hidden.parquet").write_text("not data")
    (root / "notes.txt").write_text("not data either")
    return 800


def server_env(server: LocalServer, **more: str) -> dict[str, str]:
    return {
        "ZEROBUS_ENDPOINT": server.endpoint,
        "DATABRICKS_HOST": server.workspace_url,
        "DATABRICKS_CLIENT_ID": server.client_id,
        "DATABRICKS_CLIENT_SECRET": server.client_secret,
        "ZEROBUS_RETRY_BASE_DELAY_MS": "5",
        "ZEROBUS_RETRY_MAX_DELAY_MS": "50",
        **more,
    }


def clean_env(**more: str) -> dict[str, str]:
    """The environment without settings of the engine, plus ``more``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZEROBUS_", "DATABRICKS_"))}
    if "ZEROBUS_LOCAL_BIN" in os.environ:
        env["ZEROBUS_LOCAL_BIN"] = os.environ["ZEROBUS_LOCAL_BIN"]
    env.update(more)
    return env


def run(*args: str, env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "pyzerobus", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() in this process sees no engine settings of the environment running the tests."""
    for k in list(os.environ):
        if k.startswith(("ZEROBUS_", "DATABRICKS_")) and k != "ZEROBUS_LOCAL_BIN":
            monkeypatch.delenv(k)


def use_server(monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> None:
    for k, v in server_env(server).items():
        monkeypatch.setenv(k, v)


# ---------------------------------------------------------------- the real command


def test_help_reads_well() -> None:
    top = run("--help", env=clean_env())
    assert top.returncode == 0
    assert "send" in top.stdout and "local" in top.stdout and "python -m pyzerobus" in top.stdout
    send = run("send", "--help", env=clean_env())
    assert send.returncode == 0
    for text in (
        "--table",
        "--config",
        "--streams",
        "--transport",
        "--arrow-compression",
        "--set KEY=VALUE",
        "--quarantine",
        "--dry-run",
        "--debug-dir",
        "exit status",
        "130",
        "ZEROBUS_",
        "max_inflight_bytes",
        "defaults < --config FILE < ZEROBUS_* and DATABRICKS_* variables < flags",
    ):
        assert text in send.stdout, text
    local = run("local", "--help", env=clean_env())
    assert local.returncode == 0 and "zerobus-local" in local.stdout
    none = run(env=clean_env())
    assert none.returncode == 2 and "COMMAND" in none.stderr


def test_mixed_directory_lands_every_row(
    local_server: LocalServer, table_name: str, tmp_path: pathlib.Path
) -> None:
    n = mixed_dir(tmp_path / "in")
    res = run(
        "send",
        str(tmp_path / "in"),
        "--table",
        table_name,
        "--streams",
        "auto",
        env=clean_env(**server_env(local_server)),
    )
    assert res.returncode == 0, res.stderr
    assert "5 of 5 files sent" in res.stdout
    assert f"rows: {n:,} read, {n:,} acknowledged, 0 failed" in res.stdout
    assert "skipped" in res.stderr and "notes.txt" in res.stderr
    table = read_delta(local_server, table_name)
    assert sorted(table.column("id").to_pylist()) == list(range(n))
    assert sorted(table.column("name").to_pylist()) == sorted(f"row-{i}" for i in range(n))


def test_bad_setting_is_named_with_exit_2(tmp_path: pathlib.Path) -> None:
    pq.write_table(rows(0, 3), tmp_path / "a.parquet")
    res = run(
        "send",
        str(tmp_path / "a.parquet"),
        "-t",
        "main.a.b",
        "--dry-run",
        "--set",
        "stream=2",
        env=clean_env(),
    )
    assert res.returncode == 2
    assert "unknown setting 'stream' (did you mean streams?)" in res.stderr


def test_interrupted_run_reports_acknowledged_rows(
    local_server: LocalServer, table_name: str, tmp_path: pathlib.Path
) -> None:
    n = 200_000
    pq.write_table(rows(0, n), tmp_path / "big.parquet", row_group_size=20_000)
    # Each chunk of 5,000 rows waits 1 s for its acknowledgement, two at a time: 20 s for all.
    arm_fault(local_server, kind="delay_acks", delay="1s", times=-1)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyzerobus",
            "send",
            str(tmp_path / "big.parquet"),
            "-t",
            table_name,
            "--batch-rows",
            "5000",
            "--max-concurrent-batches",
            "2",
        ],
        env=clean_env(**server_env(local_server)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job would ignore SIGINT; the command must see it as Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(4.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "0 of 1 files sent" in out
    m = re.search(r"interrupted after 0 of 1 files: ([\d,]+) rows certainly acknowledged", err)
    assert m, err
    acked = int(m.group(1).replace(",", ""))
    assert 0 < acked < n
    landed = read_delta(local_server, table_name).num_rows
    assert acked <= landed < n


def test_local_runs_the_server_until_ctrl_c(tmp_path: pathlib.Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyzerobus",
            "local",
            "--data-dir",
            str(tmp_path / "data"),
            "--",
            "--materialize-interval",
            "200ms",
        ],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line.startswith("zerobus-local ready endpoint=")
    # The command prints how to reach the server once it is ready: wait for
    # it before the interrupt (the server's own log lines come first).
    seen = []
    while not any("export ZEROBUS_ENDPOINT=" in x for x in seen):
        text = proc.stderr.readline()
        assert text, f"stderr ended before the export lines: {seen}"
        seen.append(text)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = "".join(seen) + err
    assert proc.returncode == 0, err
    assert "export ZEROBUS_ENDPOINT=http://127.0.0.1:" in err
    assert "DATABRICKS_CLIENT_ID=pyzerobus-local" in err


# ---------------------------------------------------------------- main() in this process


def test_bad_rows_go_to_quarantine(
    env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    local_server: LocalServer,
    table_name: str,
    tmp_path: pathlib.Path,
) -> None:
    use_server(monkeypatch, local_server)
    n, bad = 3000, [5, 1200, 1201, 2999]
    ids = [2**63 + i if i in bad else i for i in range(n)]
    data = pa.table({"id": pa.array(ids, pa.uint64()), "name": [f"row-{i}" for i in range(n)]})
    pq.write_table(data, tmp_path / "bad.parquet", row_group_size=500)
    pq.write_table(rows(0, 10), tmp_path / "good.parquet")
    qdir = tmp_path / "q"
    status = cli.main(
        [
            "send",
            str(tmp_path / "bad.parquet"),
            str(tmp_path / "good.parquet"),
            "-t",
            table_name,
            "--quarantine",
            str(qdir),
            "--batch-rows",
            "700",
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert (
        f"rows: {n + 10:,} read, {n + 10 - len(bad):,} acknowledged, {len(bad)} failed (conversion: 4)" in out
    )
    q = pq.read_table(qdir / "bad.parquet.failed.parquet")
    assert q.column_names == ["id", "name", *cli.QUARANTINE_COLUMNS]
    assert q.column("_zerobus_source_row").to_pylist() == bad
    assert q.column("id").to_pylist() == [2**63 + i for i in bad]
    assert q.column("name").to_pylist() == [f"row-{i}" for i in bad]
    assert set(q.column("_zerobus_error_kind").to_pylist()) == {"conversion"}
    assert all("above 2^63-1" in m for m in q.column("_zerobus_error_message").to_pylist())
    assert q.column("_zerobus_may_have_landed").to_pylist() == [False] * len(bad)
    assert not (qdir / "good.parquet.failed.parquet").exists()
    assert read_delta(local_server, table_name).num_rows == n + 10 - len(bad)


def test_interrupt_in_process(
    env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    local_server: LocalServer,
    table_name: str,
    tmp_path: pathlib.Path,
) -> None:
    use_server(monkeypatch, local_server)
    pq.write_table(rows(0, 100_000), tmp_path / "big.parquet", row_group_size=20_000)
    pq.write_table(rows(0, 10), tmp_path / "next.parquet")
    arm_fault(local_server, kind="delay_acks", delay="2s", times=-1)
    timer = threading.Timer(1.5, _thread.interrupt_main)
    timer.start()
    try:
        status = cli.main(
            [
                "send",
                str(tmp_path / "big.parquet"),
                str(tmp_path / "next.parquet"),
                "-t",
                table_name,
                "--batch-rows",
                "5000",
                "--max-concurrent-batches",
                "2",
            ]
        )
    finally:
        timer.cancel()
    captured = capsys.readouterr()
    assert status == 130
    assert "interrupted after 0 of 2 files" in captured.err
    assert "rows certainly acknowledged" in captured.err
    assert "0 of 2 files sent" in captured.out


def test_dry_run_needs_no_server(
    env: None, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    n = mixed_dir(tmp_path / "in")
    status = cli.main(
        ["send", str(tmp_path / "in"), "--dry-run", "--debug-dir", str(tmp_path / "debug"), "--no-progress"]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "dry run" in out and f"rows: {n:,} read, {n:,} converted, 0 failed" in out
    assert any(p.is_file() for p in (tmp_path / "debug").rglob("*"))

    bad = pa.table({"id": pa.array([1, 2**64 - 1], pa.uint64())})
    pq.write_table(bad, tmp_path / "bad.parquet")
    status = cli.main(
        ["send", str(tmp_path / "bad.parquet"), "--dry-run", "-q", "--quarantine", str(tmp_path / "q")]
    )
    assert status == 1
    assert "1 converted, 1 failed (conversion: 1)" in capsys.readouterr().out
    assert pq.read_table(tmp_path / "q" / "bad.parquet.failed.parquet").num_rows == 1


def test_unreadable_files_fail_the_run(
    env: None, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 but not really")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA) as w:
        for i in range(10):
            w.write_table(rows(i * 100, 100))
    whole = sink.getvalue().to_pybytes()
    (tmp_path / "cut.arrows").write_bytes(whole[: len(whole) // 2])
    pq.write_table(rows(0, 5), tmp_path / "ok.parquet")
    status = cli.main(["send", str(tmp_path), "--dry-run"])
    captured = capsys.readouterr()
    assert status == 1
    assert "junk.parquet: cannot read" in captured.err
    assert re.search(r"unreadable: .*cut\.arrows: .*\(after [\d,]+ rows\)", captured.out)
    assert "unreadable: " + str(tmp_path / "junk.parquet") in captured.out


def test_authentication_failure_exits_3(
    env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    local_server: LocalServer,
    table_name: str,
    tmp_path: pathlib.Path,
) -> None:
    use_server(monkeypatch, local_server)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "wrong")
    pq.write_table(rows(0, 5), tmp_path / "a.parquet")
    pq.write_table(rows(5, 5), tmp_path / "b.parquet")
    status = cli.main(["send", str(tmp_path), "-t", table_name, "--set", "retry_max_attempts=1"])
    out = capsys.readouterr().out
    assert status == 3
    assert "1 of 2 files sent" in out and "stopped: " in out and "authentication" in out


def test_unknown_table_exits_2(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    server = start_server(tmp_path / "data", "--no-auto-create")
    try:
        use_server(monkeypatch, server)
        pq.write_table(rows(0, 5), tmp_path / "a.parquet")
        status = cli.main(["send", str(tmp_path / "a.parquet"), "-t", "main.nope.missing"])
    finally:
        server.stop()
    assert status == 2
    assert "stopped: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--streams", "-1"], "streams (--streams): must be"),
        (["--transport", "avro"], "transport (--transport): must be proto or arrow"),
        (
            ["--arrow-compression", "gzip"],
            "arrow_compression (--arrow-compression): must be none, lz4 or zstd",
        ),
        (["-t", "nodots"], "table_name (--table): must be catalog.schema.table"),
        (["--set", "streams=x"], "streams (--streams): must be a whole number or auto"),
        (["--set", "retry_max_attempts=x"], "setting retry_max_attempts: 'x' is not an integer"),
        (["--streams", "lots"], "--streams: must be a number or auto"),
        (["--set", "recovery_disabled=maybe"], "setting recovery_disabled: 'maybe' is not a boolean"),
        (["--set", "streams"], "--set 'streams': expected KEY=VALUE"),
        (["--set", "zzz=1"], "unknown setting 'zzz'"),
        (["--config", "/nonexistent/zerobus.yaml"], "--config /nonexistent/zerobus.yaml"),
        (["--quarantine", "FILE"], "not a directory"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(
    env: None, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, args: list[str], message: str
) -> None:
    pq.write_table(rows(0, 3), tmp_path / "a.parquet")
    args = [str(tmp_path / "a.parquet") if a == "FILE" else a for a in args]
    assert cli.main(["send", str(tmp_path / "a.parquet"), "--dry-run", *args]) == 2
    assert message in capsys.readouterr().err


def test_settings_precedence(env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    yaml = tmp_path / "zerobus.yaml"
    yaml.write_text("table_name: main.file.t\nstreams: 2\nbatch_rows: 100\nretry_max_attempts: 7\n")
    monkeypatch.setenv("ZEROBUS_STREAMS", "3")
    monkeypatch.setenv("ZEROBUS_BATCH_ROWS", "200")
    args = cli.build_parser().parse_args(
        [
            "send",
            "x",
            "-c",
            str(yaml),
            "--batch-rows",
            "300",
            "--set",
            "recovery_disabled=yes",
            "--set",
            "zerobus-endpoint=http://127.0.0.1:1",
            "--set",
            "max_inflight_bytes=0x100000",
        ]
    )
    cfg = cli.build_config(args)
    assert cfg.table_name == "main.file.t"  # the file
    assert cfg.retry_max_attempts == 7  # the file
    assert cfg.streams == 3  # the environment over the file
    assert cfg.batch_rows == 300  # the flag over both
    assert cfg.recovery_disabled is True
    assert cfg.endpoint == "http://127.0.0.1:1"
    assert cfg.max_inflight_bytes == 1 << 20


def test_inputs(tmp_path: pathlib.Path) -> None:
    pq.write_table(rows(0, 3), tmp_path / "a.parquet")
    pq.write_table(rows(0, 4), tmp_path / "data.bin")  # Parquet by its content
    pyarrow.csv.write_csv(rows(0, 2), pa.CompressedOutputStream(str(tmp_path / "c.csv.gz"), "gzip"))
    (tmp_path / "x.tar.gz").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    pq.write_table(rows(0, 5), tmp_path / "sub" / "d.parquet")

    files, skipped = cli.collect_inputs([str(tmp_path / "**" / "*.parquet"), str(tmp_path / "a.parquet")])
    assert [os.path.basename(f.path) for f in files] == ["a.parquet", "d.parquet"]
    assert [f.rows for f in files] == [3, 5] and not skipped
    files, skipped = cli.collect_inputs([str(tmp_path)])
    assert [(os.path.basename(f.path), f.format) for f in files] == [
        ("a.parquet", "parquet"),
        ("c.csv.gz", "csv"),
        ("data.bin", "parquet"),
        ("d.parquet", "parquet"),
    ]
    assert skipped == [str(tmp_path / "x.tar.gz")]
    assert cli.open_reader(files[1]).read_all().num_rows == 2
    assert cli.detect_format("anything.txt", "json") == "json"
    with pytest.raises(cli.UsageError, match="no file matches"):
        cli.collect_inputs([str(tmp_path / "*.nothing")])
    with pytest.raises(cli.UsageError, match="no such file"):
        cli.collect_inputs([str(tmp_path / "missing.parquet")])
    with pytest.raises(cli.UsageError, match="unknown format"):
        cli.collect_inputs([str(tmp_path / "x.tar.gz")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(cli.UsageError, match="no file to send"):
        cli.collect_inputs([str(tmp_path / "empty")])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_display() -> None:
    files = [cli.InputFile("a.parquet", "parquet", 1000, 100), cli.InputFile("b.arrow", "arrow", 1000, 100)]
    term = _Terminal()
    bar = cli.ProgressDisplay(files, term, interval=0)
    counter = cli._Counter()
    bar.file_started(counter)
    counter.rows, counter.nbytes = 100, 2_000_000
    bar.update_to(50)
    assert "[#####...............]  25%" in term.getvalue() and "50/200 rows" in term.getvalue()
    assert "1.0 MB" in term.getvalue()
    bar.file_finished(files[0], 100, 2_000_000)
    assert "files 1/2" in term.getvalue() and "ETA 0:00:" in term.getvalue()
    bar.close()
    assert term.getvalue().endswith("\n")

    plain = io.StringIO()
    files.append(cli.InputFile("c.csv", "csv", 2000))  # rows unknown: the ETA comes from sizes
    lines = cli.ProgressDisplay(files, plain, interval=0)
    assert "ETA ?" in lines.line()
    lines.file_finished(files[0], 100, 1000)
    lines.close()
    text = plain.getvalue()
    assert text.startswith("pyzerobus: 100 rows, ") and "files 1/3, ETA 0:00:" in text
    assert text.count("\n") == 1

    quiet = io.StringIO()
    off = cli.ProgressDisplay(files, quiet, enabled=False, interval=0)
    off.update_to(10)
    off.close()
    assert quiet.getvalue() == ""


def test_local_without_the_server(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("ZEROBUS_LOCAL_BIN", str(tmp_path / "missing"))
    assert cli.main(["local"]) == 2
    assert "is not an executable file" in capsys.readouterr().err


def test_local_relays_the_ready_line(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    fake = tmp_path / "zerobus-local"
    fake.write_text(
        '#!/bin/sh\necho "args: $*"\n'
        "echo 'zerobus-local ready endpoint=https://127.0.0.1:1 workspace_url=https://127.0.0.1:2 "
        "ca_file=/tmp/ca.pem admin_token=T'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("ZEROBUS_LOCAL_BIN", str(fake))
    assert cli.main(["local", "--data-dir", "d", "--client", "me:pw", "--", "--tls"]) == 0
    captured = capsys.readouterr()
    assert "args: serve --data-dir d --client me:pw --tls" in captured.out
    assert "zerobus-local ready" in captured.out
    assert "ZEROBUS_ENDPOINT=https://127.0.0.1:1 DATABRICKS_HOST=https://127.0.0.1:2" in captured.err
    assert "DATABRICKS_CLIENT_ID=me DATABRICKS_CLIENT_SECRET=pw" in captured.err
    assert "ZEROBUS_TLS_CA_FILE=/tmp/ca.pem" in captured.err


def test_main_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert "pyzerobus 0." in capsys.readouterr().out
    assert cli.main(["send", "--help"]) == 0
    assert "exit status" in capsys.readouterr().out
    assert cli.main([]) == 2
