"""Smoke test of an installed pyzerobus wheel (make wheels, cibuildwheel's test-command).

Run with the interpreter of a clean virtualenv that has the wheel and nothing
else (no Go on PATH, no source tree on sys.path): it imports the package,
starts the zerobus-local the wheel carries, sends a small table, stops the
server (which writes the Delta table) and counts the rows with
``zerobus-local show``.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pyarrow as pa

import pyzerobus
from pyzerobus import _zerobus_local

ROWS = 100
TABLE = "main.smoke.events"
SECRET = "smoke-secret"


def main() -> int:
    here = pathlib.Path(pyzerobus.__file__).resolve()
    print(f"pyzerobus {pyzerobus.__version__} (engine {pyzerobus.engine_version()}) from {here.parent}")
    if "site-packages" not in here.parts:
        print("not an installed wheel: run from outside the source tree", file=sys.stderr)
        return 1
    if pyzerobus.engine_version() != pyzerobus.__version__:
        print("engine and package versions differ", file=sys.stderr)
        return 1
    exe = str(_zerobus_local.binary())
    with tempfile.TemporaryDirectory(prefix="pyzerobus-smoke-") as tmp:
        data = pathlib.Path(tmp) / "data"
        log = open(pathlib.Path(tmp) / "zerobus-local.log", "w")  # noqa: SIM115 - closed with the directory
        proc = subprocess.Popen(
            [exe, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data), "--client", f"smoke:{SECRET}"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("zerobus-local ready"):
            proc.kill()
            print(f"zerobus-local did not start: {line!r}", file=sys.stderr)
            return 1
        fields = dict(kv.split("=", 1) for kv in line.split()[2:])
        cfg = pyzerobus.WrapperConfiguration(
            endpoint=fields["endpoint"],
            unity_catalog_url=fields["workspace_url"],
            client_id="smoke",
            client_secret=SECRET,
            table_name=TABLE,
        )
        table = pa.table({"id": pa.array(range(ROWS), pa.int64()), "name": [f"row-{i}" for i in range(ROWS)]})
        start = time.monotonic()
        with pyzerobus.ZerobusWrapper(cfg) as w:
            res = w.send_batch(table)
        print(f"sent {res.successful_count}/{res.total_rows} rows in {time.monotonic() - start:.2f} s")
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        if rc != 0 or res.successful_count != ROWS:
            print(f"zerobus-local exit {rc}, result {res}", file=sys.stderr)
            print((pathlib.Path(tmp) / "zerobus-local.log").read_text(), file=sys.stderr)
            return 1
        shown = subprocess.run([exe, "show", "--data-dir", str(data), TABLE], capture_output=True, text=True)
        rows = [json.loads(x) for x in shown.stdout.splitlines() if x.strip()]
        print(f"zerobus-local show: {len(rows)} rows in {TABLE}")
        if len(rows) != ROWS or sorted(r["id"] for r in rows) != list(range(ROWS)):
            print(shown.stderr, file=sys.stderr)
            return 1
        log.close()
    if os.environ.get("PYZEROBUS_SMOKE_NO_GO") and shutil.which("go"):
        print("PYZEROBUS_SMOKE_NO_GO is set but go is on PATH", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
