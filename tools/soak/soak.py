"""make soak: senders push unique rows while zerobus-local fails on purpose; then nothing may be lost.

For a set duration, Go senders (tools/soak/sender: SendBatch, SendBatchAsync,
several streams) and Python senders (tools/soak/pysender.py: ZerobusWrapper
and AsyncZerobusWrapper), each in its own process, some with batches of 1 KB
to 10 MB and two with many small batches (1 to 100 rows), send rows keyed
(sender, seq) into one table of a durable zerobus-local. Meanwhile this
driver arms random faults through the admin API (dropped calls, dropped
connections, close signals, retryable and fatal statuses, failed stream
creation, slow and stopped acknowledgements, expired and revoked tokens) and
now and then SIGKILLs the server and restarts it on the same data directory
and ports. Each sender writes a ledger: what the engine reported for every
send.

At the end the senders stop cleanly, the server stops (and writes every
durable record to the Delta table), and the checker compares the ledgers with
the table read by deltalake:

    acknowledged but missing              must be 0
    landed although reported never sent  must be 0
    landed, reported failed but may have landed   allowed, counted
    duplicates, by what explains them (may have landed, replayed send, the
        sender's records_maybe_duplicated)

and prints the success rate (sends that returned success / sends) twice:
over every send, and over the sends not failed by a deliberately injected
non-retryable fault (each armed with its own status message, which the
failed send's error carries into the ledger); and the send latency
(p50/p95/p99) by batch size. The exit status is 1 when a
must-be-0 count is not 0 (2 when the run itself failed).

    python tools/soak/soak.py run --duration 10m --json soak.json
    python tools/soak/soak.py check --ledgers DIR --table DELTA_DIR   # the checker alone
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
TABLE = "main.soak.events"
CLIENT_ID = "soak-client"

#: Latency buckets by batch payload size: (upper bound in bytes, label).
BUCKETS = [
    (16_000, "<=16 KB"),
    (160_000, "<=160 KB"),
    (1_600_000, "<=1.6 MB"),
    (5_000_000, "<=5 MB"),
    (10_000_000, "<=10 MB"),
    (1 << 62, ">10 MB"),
]

#: The status message of the N-th deliberately injected non-retryable fault:
#: the driver arms each fatal fault with its own message, the server ends the
#: call with it, and the engine's error for the rows it failed carries it into
#: the ledger's "error" field. A failed send whose error has this mark was hit
#: by an injected fatal fault; no other failure can carry it.
FATAL_MARK = "soak fatal fault"
FATAL_RE = re.compile(FATAL_MARK + r" (\d+)\b")

#: Status codes the engine does not retry (the faults with them are fatal by design).
FATAL_CODES = {"INVALID_ARGUMENT"}

#: The faults armed at random (after a random number of records).
FAULTS: list[dict[str, Any]] = [
    {"kind": "end_call"},  # the call ends, the triggering request dropped
    {"kind": "drop_connection"},  # TCP reset mid-batch
    {"kind": "end_call", "signal": True, "signal_duration": "1s"},  # close signal
    {"kind": "fail_call", "code": "UNAVAILABLE"},  # retryable status
    {"kind": "fail_call", "code": "INVALID_ARGUMENT"},  # fatal status: the request is rejected
    {"kind": "fail_create_stream", "code": "UNAVAILABLE"},
    {"kind": "delay_acks", "delay": "200ms"},  # slow acknowledgements (until the call ends)
    {"kind": "stop_acks"},  # no acknowledgements: the ack timeout recovers
    {"kind": "expire_tokens"},
    {"kind": "revoke_tokens"},
]


def parse_duration(s: str) -> float:
    """Seconds of a duration such as 90, 60s, 10m, 1h or 1m30s."""
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise argparse.ArgumentTypeError(f"duration {s!r}: use a number of seconds or e.g. 60s, 10m, 1m30s")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


# ---------------------------------------------------------------- the checker


@dataclasses.dataclass
class Sender:
    """What one sender's ledger says, per seq: status codes and the send each row was in."""

    name: str
    status: np.ndarray  # int8 per seq: see the ST_ constants
    send_attempts: np.ndarray  # int32 per seq: attempts of the row's send (-1: not reported)
    final: Optional[dict[str, Any]]


ST_UNREPORTED, ST_ACKED, ST_FAILED, ST_MAYBE = 0, 1, 2, 3


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values; 0 for none."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(np.ceil(q / 100 * len(s))) - 1))
    return s[k]


def bucket(nbytes: int) -> str:
    for bound, label in BUCKETS:
        if nbytes <= bound:
            return label
    raise AssertionError("unreachable: the last bucket is unbounded")


def read_ledgers(paths: Iterable[pathlib.Path], row_bytes: int) -> tuple[dict[str, Sender], dict[str, Any]]:
    """Read the ledgers: per sender its rows' statuses, and the send counts and latencies."""
    lines: dict[str, list[dict[str, Any]]] = {}
    finals: dict[str, dict[str, Any]] = {}
    for path in paths:
        with open(path) as f:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not JSON ({e})") from e
                if line.get("final"):
                    finals[line["sender"]] = line
                else:
                    lines.setdefault(line["sender"], []).append(line)
    sends: dict[str, Any] = {"sends": 0, "succeeded": 0, "rows": 0, "acked": 0, "failed_by_kind": {}}
    sends["may_have_landed"] = 0
    sends["failed_sends_by_kind"] = {}
    sends["fatal_fault_sends"] = 0  # failed sends whose error is an injected fatal fault's
    sends["fatal_fault_ids"] = set()
    latency: dict[str, list[float]] = {}
    first_call: dict[str, list[float]] = {}  # sends written on one call: no fault touched them
    senders: dict[str, Sender] = {}
    for name in sorted(set(lines) | set(finals)):
        ls = lines.get(name, [])
        size = max([ln["first"] + ln["rows"] for ln in ls] + [finals.get(name, {}).get("next_seq", 0)])
        status = np.zeros(size, np.int8)
        attempts = np.full(size, -1, np.int32)
        for ln in ls:
            first, rows = ln["first"], ln["rows"]
            sends["sends"] += 1
            sends["succeeded"] += bool(ln["success"])
            if not ln["success"]:
                kind = ln["failed"][0][2] if ln["failed"] else "none"
                sends["failed_sends_by_kind"][kind] = sends["failed_sends_by_kind"].get(kind, 0) + 1
                if m := FATAL_RE.search(ln.get("error") or ""):
                    sends["fatal_fault_sends"] += 1
                    sends["fatal_fault_ids"].add(int(m[1]))
            sends["rows"] += rows
            latency.setdefault(bucket(rows * row_bytes), []).append(ln["latency_ms"])
            if ln["success"] and ln["attempts"] == 1:
                first_call.setdefault(bucket(rows * row_bytes), []).append(ln["latency_ms"])
            attempts[first : first + rows] = ln["attempts"]
            covered = 0
            for start, count in ln["acked"]:
                status[first + start : first + start + count] = ST_ACKED
                sends["acked"] += count
                covered += count
            for start, count, kind, maybe in ln["failed"]:
                status[first + start : first + start + count] = ST_MAYBE if maybe else ST_FAILED
                sends["failed_by_kind"][kind] = sends["failed_by_kind"].get(kind, 0) + count
                sends["may_have_landed"] += count if maybe else 0
                covered += count
            if covered != rows:
                raise ValueError(
                    f"{name}: the send of seq {first}..{first + rows - 1} accounts for {covered} rows"
                )
        senders[name] = Sender(name, status, attempts, finals.get(name))
    sends["latency"] = latency
    sends["latency_first_call"] = first_call
    return senders, sends


def read_landed(table_dir: pathlib.Path) -> dict[str, np.ndarray]:
    """The (sender, seq) keys in the Delta table: per sender its seqs, sorted, repeats kept."""
    import deltalake

    t = deltalake.DeltaTable(str(table_dir)).to_pyarrow_table(columns=["sender", "seq"])
    out: dict[str, np.ndarray] = {}
    senders = t.column("sender").to_numpy(zero_copy_only=False)
    seqs = t.column("seq").to_numpy()
    for name in np.unique(senders):
        out[str(name)] = np.sort(seqs[senders == name])
    return out


def check(senders: dict[str, Sender], sends: dict[str, Any], landed: dict[str, np.ndarray]) -> dict[str, Any]:
    """Compare the ledgers with the table; the summary (a JSON-able dict)."""
    c = {
        "landed_rows": 0,
        "acked_missing": 0,
        "landed_never_sent": 0,
        "landed_may_have_landed": 0,
        "unreported_rows": 0,
        "duplicate_keys": 0,
        "duplicate_rows": 0,
        "duplicates_may_have_landed": 0,
        "duplicates_replayed_send": 0,
        "duplicates_replayed_stats": 0,
        "duplicates_unexplained": 0,
    }
    examples: dict[str, list[str]] = {
        "acked_missing": [],
        "landed_never_sent": [],
        "duplicates_unexplained": [],
    }

    def note(what: str, name: str, seqs: np.ndarray) -> None:
        examples[what].extend(f"{name}/{int(s)}" for s in seqs[: 10 - len(examples[what])])

    for name in sorted(set(senders) | set(landed)):
        seqs = landed.get(name, np.zeros(0, np.int64))
        c["landed_rows"] += len(seqs)
        s = senders.get(name)
        status = s.status if s else np.zeros(0, np.int8)
        n = len(status)
        beyond = seqs[(seqs < 0) | (seqs >= n)]  # keys no ledger knows
        c["landed_never_sent"] += len(beyond)
        note("landed_never_sent", name, beyond)
        inside = seqs[(seqs >= 0) & (seqs < n)]
        counts = np.bincount(inside, minlength=n) if n else np.zeros(0, np.int64)
        missing = np.flatnonzero((status == ST_ACKED) & (counts == 0))
        c["acked_missing"] += len(missing)
        note("acked_missing", name, missing)
        never = np.flatnonzero(((status == ST_FAILED) | (status == ST_UNREPORTED)) & (counts > 0))
        c["landed_never_sent"] += len(never)
        note("landed_never_sent", name, never)
        c["landed_may_have_landed"] += int(np.count_nonzero((status == ST_MAYBE) & (counts > 0)))
        c["unreported_rows"] += int(np.count_nonzero(status == ST_UNREPORTED))
        dup = np.flatnonzero(counts > 1)
        c["duplicate_keys"] += len(dup)
        c["duplicate_rows"] += int((counts[dup] - 1).sum())
        maybe = dup[status[dup] == ST_MAYBE]
        c["duplicates_may_have_landed"] += len(maybe)
        acked = dup[status[dup] != ST_MAYBE]
        replayed = acked[s.send_attempts[acked] > 1] if s else acked[:0]
        c["duplicates_replayed_send"] += len(replayed)
        rest = np.setdiff1d(acked, replayed)
        if s:
            # Async sends report no attempts when they succeed: their
            # duplicates are explained by the wrapper's count of
            # acknowledged records written on more than one call.
            unknown = rest[s.send_attempts[rest] < 0]
            allowed = int((s.final or {}).get("stats", {}).get("records_maybe_duplicated", 0))
            explained = unknown[: max(0, allowed - len(replayed))]
            c["duplicates_replayed_stats"] += len(explained)
            rest = np.setdiff1d(rest, explained)
        c["duplicates_unexplained"] += len(rest)
        note("duplicates_unexplained", name, rest)

    succeeded, total = sends["succeeded"], sends["sends"]
    fatal = sends["fatal_fault_sends"]
    close_errors = {
        n: s.final["close_error"] for n, s in senders.items() if s.final and s.final.get("close_error")
    }
    return {
        "senders": sorted(senders),
        "sends": total,
        "sends_succeeded": succeeded,
        "success_rate": succeeded / total if total else 0.0,
        "sends_hit_by_fatal_fault": fatal,
        "fatal_faults_that_failed_sends": sorted(sends["fatal_fault_ids"]),
        "success_rate_without_fatal_faults": succeeded / (total - fatal) if total > fatal else 0.0,
        "sends_failed_by_kind": dict(sorted(sends["failed_sends_by_kind"].items())),
        "rows_sent": sends["rows"],
        "rows_acked": sends["acked"],
        "rows_failed_by_kind": dict(sorted(sends["failed_by_kind"].items())),
        "rows_failed_may_have_landed": sends["may_have_landed"],
        **c,
        "examples": {k: v for k, v in examples.items() if v},
        "latency_by_batch_size": latency_table(sends["latency"]),
        "latency_by_batch_size_first_call": latency_table(sends["latency_first_call"]),
        "senders_without_final_line": sorted(n for n, s in senders.items() if s.final is None),
        "close_errors": close_errors,
        "stats": {n: s.final["stats"] for n, s in senders.items() if s.final},
    }


def latency_table(latency: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Sends and p50/p95/p99 latency per batch-size bucket."""
    return {
        label: {
            "sends": len(v),
            "p50_ms": round(percentile(v, 50), 2),
            "p95_ms": round(percentile(v, 95), 2),
            "p99_ms": round(percentile(v, 99), 2),
        }
        for _, label in BUCKETS
        if (v := latency.get(label))
    }


def must_be_zero(summary: dict[str, Any]) -> list[str]:
    """The names of the must-be-0 counts that are not 0."""
    return [k for k in ("acked_missing", "landed_never_sent") if summary[k]]


def render(summary: dict[str, Any]) -> str:
    """The summary as text."""
    s = summary
    fatal, others = s["sends_hit_by_fatal_fault"], s["sends"] - s["sends_hit_by_fatal_fault"]
    out = [
        f"senders: {', '.join(s['senders'])}",
        f"sends: {s['sends']:,}, returned success: {s['sends_succeeded']:,}; failed sends by the kind of "
        "their first failed row: "
        + (", ".join(f"{k} {v:,}" for k, v in s["sends_failed_by_kind"].items()) or "none"),
        f"success rate, all sends: {s['success_rate'] * 100:.4f}% "
        f"({s['sends_succeeded']:,} of {s['sends']:,})",
        f"success rate, sends not hit by an injected fatal fault: "
        f"{s['success_rate_without_fatal_faults'] * 100:.4f}% ({s['sends_succeeded']:,} of {others:,}; "
        f"{fatal:,} failed sends carry the status message of {len(s['fatal_faults_that_failed_sends'])} "
        f"injected fatal faults)",
        f"rows sent: {s['rows_sent']:,}  acknowledged: {s['rows_acked']:,}  landed: {s['landed_rows']:,}",
        "rows reported failed: "
        + (", ".join(f"{k} {v:,}" for k, v in s["rows_failed_by_kind"].items()) or "none")
        + f" (may have landed: {s['rows_failed_may_have_landed']:,}, of which landed: "
        f"{s['landed_may_have_landed']:,})",
        f"acknowledged but missing: {s['acked_missing']:,}   (must be 0)",
        f"landed although reported never sent: {s['landed_never_sent']:,}   (must be 0)",
        f"duplicates: {s['duplicate_keys']:,} keys, {s['duplicate_rows']:,} extra rows; "
        f"flagged may-have-landed {s['duplicates_may_have_landed']:,}, "
        f"in a replayed send {s['duplicates_replayed_send']:,}, "
        f"counted by records_maybe_duplicated {s['duplicates_replayed_stats']:,}, "
        f"unexplained {s['duplicates_unexplained']:,}",
    ]
    if s["unreported_rows"]:
        out.append(f"rows with no report (a sender did not finish): {s['unreported_rows']:,}")
    for what, keys in s["examples"].items():
        out.append(f"  {what}, e.g.: {' '.join(keys)}")
    if s["senders_without_final_line"]:
        out.append(f"senders that did not stop cleanly: {', '.join(s['senders_without_final_line'])}")
    for name, err in s["close_errors"].items():
        out.append(f"close error of {name}: {err}")
    for key, title in (
        ("latency_by_batch_size", "send latency by batch payload size, every send:"),
        (
            "latency_by_batch_size_first_call",
            "send latency of the sends that succeeded with attempts 1 (async Go batches report none):",
        ),
    ):
        out.append(title)
        out.append(f"  {'size':<10}{'sends':>9}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
        for label, v in s[key].items():
            out.append(
                f"  {label:<10}{v['sends']:>9,}{v['p50_ms']:>10.1f}{v['p95_ms']:>10.1f}{v['p99_ms']:>10.1f}"
            )
    if "run" in s:
        r = s["run"]
        if r["no_faults"]:
            out.append(f"run: {r['duration_s']:.0f} s, no faults, no server kills")
        else:
            out.append(
                f"run: {r['duration_s']:.0f} s, {r['faults_armed']} faults armed "
                f"({len(r.get('fatal_faults_armed', []))} fatal) "
                f"({', '.join(f'{k} {v}' for k, v in sorted(r['faults_by_kind'].items()))}), "
                f"{r['faults_fired']} fired (the others were cleared by a kill or never reached), "
                f"{r['server_kills']} server kills"
            )
    bad = must_be_zero(s)
    out.append(
        "RESULT: " + ("FAIL (" + ", ".join(bad) + " not 0)" if bad else "ok: nothing acknowledged was lost")
    )
    return "\n".join(out)


def check_dirs(ledgers: pathlib.Path, table_dir: pathlib.Path, row_bytes: int) -> dict[str, Any]:
    """Check the ledgers (*.jsonl) of a directory against a Delta table."""
    senders, sends = read_ledgers(sorted(ledgers.glob("*.jsonl")), row_bytes)
    return check(senders, sends, read_landed(table_dir))


# ---------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A zerobus-local process, restartable on the same data directory, ports and admin token."""

    def __init__(self, binary: str, data_dir: pathlib.Path, secret: str, log: pathlib.Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.secret = secret
        self.grpc_port, self.http_port = free_port(), free_port()
        self.admin_token = secrets.token_hex(16)
        self.endpoint = f"http://127.0.0.1:{self.grpc_port}"
        self.workspace_url = f"http://127.0.0.1:{self.http_port}"
        self.log = open(log, "ab")  # noqa: SIM115 - closed by close()
        self.proc: Optional[subprocess.Popen[str]] = None

    def start(self) -> None:
        cmd = [
            self.binary,
            "serve",
            "--listen",
            f"127.0.0.1:{self.grpc_port}",
            "--http-listen",
            f"127.0.0.1:{self.http_port}",
            "--data-dir",
            str(self.data_dir),
            "--client",
            f"{CLIENT_ID}:{self.secret}",
            "--materialize-interval",
            "2s",
        ]
        env = {**os.environ, "ZEROBUS_LOCAL_ADMIN_TOKEN": self.admin_token}
        deadline = time.monotonic() + 60
        while True:  # the ports may take a moment to free after a kill
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.startswith("zerobus-local ready"):
                return
            self.proc.wait()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"zerobus-local did not start (exit {self.proc.returncode}); see {self.log.name}"
                )
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("zerobus-local did not stop within 300 s of SIGTERM") from None

    def admin(self, method: str, path: str, body: Any = None) -> None:
        req = urllib.request.Request(
            self.workspace_url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": "Bearer " + self.admin_token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def faults_fired(self) -> int:
        """Faults fired since this process started (GET /stats); 0 if the server does not answer."""
        try:
            with urllib.request.urlopen(self.workspace_url + "/stats", timeout=10) as resp:
                return int(json.loads(resp.read())["faults_fired"])
        except OSError:
            return 0

    def table_dir(self) -> pathlib.Path:
        return self.data_dir.joinpath(*TABLE.split("."))

    def close(self) -> None:
        self.log.close()


@dataclasses.dataclass
class SenderProc:
    name: str
    cmd: list[str]
    proc: Optional[subprocess.Popen[bytes]] = None


def sender_procs(
    server: Server, ledger_dir: pathlib.Path, args: argparse.Namespace, go_bin: str
) -> list[SenderProc]:
    common = [
        "--endpoint",
        server.endpoint,
        "--workspace-url",
        server.workspace_url,
        "--client-id",
        CLIENT_ID,
        "--table",
        TABLE,
        "--row-bytes",
        str(args.row_bytes),
        "--max-batch-bytes",
        str(args.max_batch_bytes),
        "--rate",
        str(args.rate),
    ]
    py = [sys.executable, str(pathlib.Path(__file__).with_name("pysender.py"))]
    # The small senders send 1 to --small-rows rows per batch as fast as
    # --small-send-rate lets them: they make most of the sends.
    small = ["--small-rows", str(args.small_rows), "--rate", "0", "--pause", "0"]
    specs: list[tuple[str, list[str], list[str]]] = [
        ("go-sync", [go_bin, "--mode", "sync", "--streams", "1", "--workers", "1"], []),
        ("go-sync-3streams", [go_bin, "--mode", "sync", "--streams", "3", "--workers", "3"], []),
        ("go-async-2streams", [go_bin, "--mode", "async", "--streams", "2", "--async-depth", "4"], []),
        ("py-sync", [*py, "--mode", "sync"], []),
        ("py-asyncio-2streams", [*py, "--mode", "asyncio", "--streams", "2", "--workers", "3"], []),
    ]
    if args.small_send_rate > 0:
        specs += [
            (
                "go-small-16workers",
                [go_bin, "--mode", "sync", "--streams", "2", "--workers", "16"],
                [*small, "--send-rate", str(args.small_send_rate)],
            ),
            (
                "py-asyncio-small-32",
                [*py, "--mode", "asyncio", "--streams", "2", "--workers", "32"],
                [*small, "--send-rate", str(args.small_send_rate * 0.6)],
            ),
        ]
    return [
        SenderProc(
            name,
            [
                *cmd,
                "--id",
                name,
                "--ledger",
                str(ledger_dir / f"{name}.jsonl"),
                "--seed",
                str(args.seed + i),
                *common,
                *extra,
            ],
        )
        for i, (name, cmd, extra) in enumerate(specs)
    ]


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="soak-"))
    if work.exists() and any(work.iterdir()):
        shutil.rmtree(work)
    ledger_dir, data_dir = work / "ledgers", work / "data"
    ledger_dir.mkdir(parents=True)
    data_dir.mkdir()
    secret = secrets.token_hex(16)
    server = Server(args.zerobus_local, data_dir, secret, work / "zerobus-local.log")
    server.start()
    env = {**os.environ, "DATABRICKS_CLIENT_SECRET": secret}
    procs = sender_procs(server, ledger_dir, args, args.sender)
    logs = []
    for p in procs:
        log = open(work / f"{p.name}.log", "wb")  # noqa: SIM115 - closed below
        logs.append(log)
        p.proc = subprocess.Popen(p.cmd, stdout=log, stderr=log, env=env)
    print(f"soak: {len(procs)} senders, {args.duration:.0f} s, work directory {work}", flush=True)
    began = time.monotonic()
    end = began + args.duration
    faults: dict[str, int] = {}
    fatal_armed: list[int] = []  # the numbers of the fatal faults, as their messages carry them
    kills = fired = 0
    next_fault = began + rng.uniform(0.5, 2) * args.fault_every
    next_kill = began + rng.uniform(0.5, 1.5) * args.kill_every if args.kill_every > 0 else end + 1
    if args.no_faults:
        next_fault = next_kill = end + 1
    failed_run = ""
    try:
        while (now := time.monotonic()) < end:
            dead = [p.name for p in procs if p.proc is not None and p.proc.poll() is not None]
            if dead:
                failed_run = f"senders exited early: {', '.join(dead)} (see their logs in {work})"
                break
            if now >= next_kill:
                fired += server.faults_fired()
                server.kill()
                kills += 1
                time.sleep(rng.uniform(0.2, 3))
                server.start()
                print(f"soak: {now - began:.0f} s: server killed and restarted", flush=True)
                next_kill = now + rng.uniform(0.5, 1.5) * args.kill_every
            elif now >= next_fault:
                fault = dict(rng.choice(FAULTS), after_records=rng.randrange(0, 20_000), table=TABLE)
                fatal_id = len(fatal_armed) + 1
                if fault.get("code") in FATAL_CODES:
                    fault["message"] = f"{FATAL_MARK} {fatal_id}"
                try:
                    server.admin("POST", "/admin/faults", fault)
                    if "message" in fault:
                        fatal_armed.append(fatal_id)
                    name = fault["kind"] + (f":{fault['code']}" if "code" in fault else "")
                    name += ":signal" if fault.get("signal") else ""
                    faults[name] = faults.get(name, 0) + 1
                except OSError as e:
                    print(f"soak: arming {fault['kind']}: {e}", flush=True)
                next_fault = now + rng.uniform(0.5, 1.5) * args.fault_every
            time.sleep(0.1)
        # Quiet down, then stop the senders: they finish their sends and close.
        server.admin("DELETE", "/admin/faults")
        fired += server.faults_fired()
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.proc is not None
            try:
                rc = p.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
                rc = -9
            if rc != 0 and not failed_run:
                failed_run = f"sender {p.name} exited with {rc} (see {work / (p.name + '.log')})"
    finally:
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
        for log in logs:
            log.close()
        server.stop()
        server.close()
    duration = time.monotonic() - began
    summary = check_dirs(ledger_dir, server.table_dir(), args.row_bytes)
    summary["run"] = {
        "duration_s": round(duration, 1),
        "faults_armed": sum(faults.values()),
        "faults_fired": fired,
        "faults_by_kind": faults,
        "fatal_faults_armed": fatal_armed,
        "server_kills": kills,
        "seed": args.seed,
        "no_faults": args.no_faults,
        "rate_per_sender_bytes": args.rate,
        "error": failed_run,
    }
    return report(summary, args.json, failed_run)


def report(summary: dict[str, Any], json_path: Optional[str], failed_run: str = "") -> int:
    print(render(summary), flush=True)
    if json_path:
        pathlib.Path(json_path).write_text(json.dumps(summary, indent=2) + "\n")
    if failed_run:
        print(f"soak: the run failed: {failed_run}", file=sys.stderr)
        return 2
    return 1 if must_be_zero(summary) else 0


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the soak, then check it")
    r.add_argument(
        "--duration", type=parse_duration, default=parse_duration(os.environ.get("SOAK_DURATION", "10m"))
    )
    r.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "1")))
    r.add_argument("--fault-every", type=parse_duration, default=3.0, help="mean seconds between faults")
    r.add_argument(
        "--kill-every", type=parse_duration, default=90.0, help="mean seconds between server kills"
    )
    r.add_argument("--no-faults", action="store_true", help="no faults, no kills: a baseline")
    r.add_argument("--rate", type=int, default=2_000_000, help="payload bytes per second per sender")
    r.add_argument("--row-bytes", type=int, default=1000)
    r.add_argument("--max-batch-bytes", type=int, default=10_000_000)
    r.add_argument(
        "--small-send-rate",
        type=float,
        default=250,
        help="sends per second of the Go small-batch sender (the Python one: 0.6 of it); 0: no small senders",
    )
    r.add_argument(
        "--small-rows", type=int, default=100, help="rows of the small senders' batches: 1 to this"
    )
    r.add_argument(
        "--work-dir", help="where the data, ledgers and logs go (default: a new temporary directory)"
    )
    r.add_argument(
        "--zerobus-local", default=os.environ.get("ZEROBUS_LOCAL_BIN", str(REPO / ".bin/zerobus-local"))
    )
    r.add_argument("--sender", default=os.environ.get("SOAK_SENDER_BIN", str(REPO / ".bin/soak-sender")))
    r.add_argument("--json", help="also write the summary to this JSON file")
    c = sub.add_parser("check", help="check ledgers against a Delta table")
    c.add_argument("--ledgers", type=pathlib.Path, required=True, help="directory of *.jsonl ledgers")
    c.add_argument("--table", type=pathlib.Path, required=True, help="the Delta table's directory")
    c.add_argument("--row-bytes", type=int, default=1000)
    c.add_argument("--json", help="also write the summary to this JSON file")
    args = p.parse_args(argv)
    if args.cmd == "run":
        return run(args)
    return report(check_dirs(args.ledgers, args.table, args.row_bytes), args.json)


if __name__ == "__main__":
    sys.exit(main())
