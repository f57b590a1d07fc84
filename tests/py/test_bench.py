"""tools/bench/bench.py, the one-table benchmark: a quick run end to end, its workers and its arithmetic."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from conftest import REPO


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench", REPO / "tools" / "bench" / "bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = mod
    spec.loader.exec_module(mod)
    return mod


bench = _load()


def table_rows(text: str) -> list[list[str]]:
    """The cells of the table's lines, one list per contender and size."""
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if re.match(r"^\| (20 B|220 B|1 KB) \|", line)
    ]


def number(cell: str) -> float:
    return float(cell.strip().split()[0].rstrip("x").replace(",", ""))


def test_quick_run_prints_every_contender_at_every_size(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "bench-default.md").read_text()
    assert text in capsys.readouterr().out
    assert "profile default, discard" in text and "Machine: " in text

    rows = table_rows(text)
    assert all(len(r) == 7 for r in rows)
    assert len(rows) == len(bench.SIZES) * len(bench.CONTENDERS)
    for size in ("20 B", "220 B", "1 KB"):
        at = {name: cells for s, name, *cells in rows if s == size}
        assert list(at) == [c.name for c in bench.CONTENDERS]
        ratios = []
        for c in bench.CONTENDERS:
            rate, mbs, ratio, cpu, rss = at[c.name]
            if rate.startswith("skipped"):
                # Only a transport the engine does not have yet may be skipped, with its reason below.
                assert c.kind == "go-engine" and c.transport != "proto", c
                assert re.search(rf"^- {re.escape(c.name)}: skipped: .*transport", text, re.M)
                continue
            assert number(rate) > 0 and number(mbs) > 0 and number(ratio) > 0 and number(cpu) > 0
            assert 1 <= number(rss) < 10_000, (c.name, rss)  # MB
            # MB/s is rows/s times the record size, the same bytes for everyone.
            record = {"20 B": 20, "220 B": 220, "1 KB": 1024}[size]
            assert number(mbs) == pytest.approx(number(rate) * record / 1e6, rel=0.01, abs=0.1)
            if c.databricks:
                ratios.append(number(ratio))
        assert max(ratios) == 1.0  # the fastest of Databricks' SDKs is the reference

    png = (tmp_path / "bench-default.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


@pytest.fixture
def tls_discard(tmp_path: pathlib.Path) -> Iterator[object]:
    from conftest import zerobus_local_bin

    server = bench.start_server(zerobus_local_bin(), tmp_path / "data", ["--discard"])
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("kind", "mode"),
    [("pyzerobus", "c-stream"), ("pyzerobus", "ipc"), ("python-sdk", "proto"), ("python-sdk", "arrow")],
)
def test_python_workers_send_every_row(
    tls_discard: object, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, kind: str, mode: str
) -> None:
    monkeypatch.setenv("ZEROBUS_CLIENT_SECRET", bench.CLIENT_SECRET)
    # The worker points Databricks' SDK at the server's CA through the environment: restore it after.
    monkeypatch.setenv("SSL_CERT_FILE", "")
    monkeypatch.setenv("RUST_LOG", "warn")
    ipc = tmp_path / "rows.arrow"
    bench.write_rows(ipc, 2500, 220)
    table = f"main.bench.{kind.replace('-', '_')}_{mode.replace('-', '_')}"
    spec = {
        "kind": kind,
        "mode": mode,
        "streams": 1,
        "size": 220,
        "ipc": str(ipc),
        "endpoint": tls_discard.endpoint,  # type: ignore[attr-defined]
        "workspace_url": tls_discard.workspace_url,  # type: ignore[attr-defined]
        "ca_file": tls_discard.ca_file,  # type: ignore[attr-defined]
        "client_id": bench.CLIENT_ID,
        "table": table,
    }
    out = bench.worker(spec)
    assert out["rows"] == 2500 and out["seconds"] > 0 and out["cpu_seconds"] >= 0
    assert out["peak_rss_bytes"] > 1 << 20
    assert bench.acked(spec) == 2500 + bench.WARM_ROWS


def test_rows_encode_to_the_named_size(tmp_path: pathlib.Path) -> None:
    msg = bench.message_class()
    for size in (20, 220, 1024, 100):
        path = tmp_path / f"rows-{size}.arrow"
        bench.write_rows(path, 70_000, size)
        warm, rest = bench.load(str(path))
        assert warm.num_rows == bench.WARM_ROWS and rest.num_rows == 70_000
        ids = rest.column("id").to_pylist()
        assert len(set(ids)) == len(ids) and min(ids) > max(warm.column("id").to_pylist())
        for i in (0, 69_999):
            row = rest.slice(i, 1).to_pylist()[0]
            assert len(msg(**row).SerializeToString()) == size
    with pytest.raises(ValueError, match="no payload gives a record of 5 bytes"):
        bench.payload_len(5)
    assert bench.chunk_rows(20) == bench.BATCH_ROWS
    assert bench.chunk_rows(1024) * (12 + bench.payload_len(1024)) <= bench.BATCH_BYTES


def test_unknown_worker_kind(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROBUS_CLIENT_SECRET", "s")
    bench.write_rows(tmp_path / "r.arrow", 10, 20)
    with pytest.raises(ValueError, match="unknown contender kind 'fax'"):
        bench.worker({"kind": "fax", "ipc": str(tmp_path / "r.arrow")})


def test_table_arithmetic() -> None:
    go = bench.Contender("go", "go-engine", "sync")
    sdk = bench.Contender("sdk", "purego", "preencoded", databricks=True)
    arrow = bench.Contender("arrow", "go-engine", "sync", transport="arrow")
    r_go = bench.Row(220, go, [bench.Run(1000, s, 0.5, 50_000_000) for s in (1.0, 2.0, 0.5)])
    r_sdk = bench.Row(220, sdk, [bench.Run(1000, 2.0, 0.22, 80_000_000)])
    skipped = bench.Row(220, arrow, note="skipped: transport")
    assert r_go.rate == 1000.0  # median of 1000, 500 and 2000 rows/s
    assert r_go.spread == pytest.approx((2000 - 500) / 2 / 1000)
    assert r_go.mb_per_s == pytest.approx(0.22)
    assert r_go.cpu_per_gb == pytest.approx(0.5 / (1000 * 220 / 1e9))
    assert r_go.peak_rss_mb == 50.0
    text = bench.markdown([r_go, r_sdk, skipped])
    assert "| 220 B | go | 1,000 ±75% | 0.2 | 2.00x | 2,272.7 | 50 |" in text
    assert "| 220 B | sdk | 500 ±0% | 0.1 | 1.00x | 1,000.0 | 80 |" in text
    assert "| 220 B | arrow | skipped (see below) | | | | |" in text
    # Without any of Databricks' SDKs there is no reference.
    assert "| 220 B | go | 1,000 ±75% | 0.2 | - |" in bench.markdown([r_go])
    assert "| 220 B | arrow | no run |" in bench.markdown([bench.Row(220, arrow)])


def test_run_child_outcomes() -> None:
    py = sys.executable
    out, ru = bench.run_child([py, "-c", "print('noise'); print('{\"rows\": 3}')"], timeout=60)
    assert out == {"rows": 3} and ru.ru_maxrss > 0
    with pytest.raises(bench.SkipError, match="only proto"):
        bench.run_child(
            [py, "-c", "import sys; sys.stderr.write('transport: only proto is supported'); sys.exit(2)"],
            timeout=60,
        )
    # Exit status 2 for another reason is a failure, not a skip.
    with pytest.raises(RuntimeError, match="exited with 2: bad flag"):
        bench.run_child([py, "-c", "import sys; sys.stderr.write('bad flag'); sys.exit(2)"], timeout=60)
    with pytest.raises(RuntimeError, match="no result after 0 s"):
        bench.run_child([py, "-c", "import time; time.sleep(30)"], timeout=0.3)
    with pytest.raises(RuntimeError, match="exited with 1: boom"):
        bench.run_child([py, "-c", "import sys; sys.exit('boom')"], timeout=60)


def test_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, msg in (
        (["--rows", "0"], "--rows must be at least 1, got 0"),
        (["--rounds", "-1"], "--rounds must be at least 1, got -1"),
        (["--sizes", "20,5"], "--sizes: no record of 5 bytes"),
    ):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
        assert msg in capsys.readouterr().err
    args = bench.parse_args(["--quick", "--rows", "9"])
    assert (args.rows, args.rounds, args.sizes) == (3000, 1, [20, 220, 1024])


def test_server_that_never_gets_ready(tmp_path: pathlib.Path) -> None:
    with pytest.raises(RuntimeError, match="exited with 2 before it was ready"):
        bench.start_server(sys.executable, tmp_path, [])  # python cannot open a file named "serve"


def test_table_names_are_per_run() -> None:
    names = {bench.table_name(c, s, r) for c in bench.CONTENDERS for s in bench.SIZES for r in range(3)}
    assert len(names) == len(bench.CONTENDERS) * len(bench.SIZES) * 3
    assert all(re.fullmatch(r"main\.bench\.[a-z0-9_]+", n) for n in names)
    assert bench.table_name(bench.CONTENDERS[0], 20, 1) == "main.bench.go_engine_proto_1_stream_20_r1"


def test_only_picks_contenders_by_name(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A stored run (--durable, the real persistence path) of two contenders at one size.
    argv = ["--durable", "--quick", "--sizes", "220", "--out", str(tmp_path)]
    assert bench.main([*argv, "--only", "pure-go sdk, pre", "--only", "pyzerobus, defaults"]) == 0
    text = (tmp_path / "bench-default-durable.md").read_text()
    assert "profile default, durable" in text
    assert [r[1] for r in table_rows(text)] == [
        "pyzerobus, defaults (streams auto)",
        "pure-Go SDK, pre-encoded",
    ]
    assert capsys.readouterr().out.count("| 220 B |") == 2


def test_ack_latency_only_names_its_world(tmp_path: pathlib.Path) -> None:
    # The service's time to durability without its quotas: the table and its file say so.
    argv = [
        "--profile",
        "databricks",
        "--ack-latency-only",
        "--quick",
        "--sizes",
        "20",
        "--out",
        str(tmp_path),
    ]
    assert bench.main([*argv, "--only", "Go engine, proto, streams auto"]) == 0
    text = (tmp_path / "bench-databricks-latency.md").read_text()
    assert "profile databricks, latency only, discard" in text
    assert [r[1] for r in table_rows(text)] == ["Go engine, proto, streams auto"]
