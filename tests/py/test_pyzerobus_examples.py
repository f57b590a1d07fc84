"""The examples run: the notebook end to end (nbclient), the scripts, the demo."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile

import nbclient
import nbformat
import pytest

from conftest import REPO, LocalServer, start_server, zerobus_local_bin

EXAMPLES = REPO / "examples"


def test_quickstart_notebook_runs_end_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEROBUS_LOCAL_BIN", zerobus_local_bin())  # the kernel inherits it
    before = set(pathlib.Path(tempfile.gettempdir()).glob("zerobus-notebook-*"))
    nb = nbformat.read(EXAMPLES / "notebooks" / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES / "notebooks")}}
    )
    client.execute()  # raises CellExecutionError on any failing cell (its last cell checks the row count)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("TransmissionResult" in h and "success" in h for h in html)
    text = "".join(o.get("text", "") for o in outputs)
    assert "AuthenticationError" in text and "1,000,002 rows" in text
    assert set(pathlib.Path(tempfile.gettempdir()).glob("zerobus-notebook-*")) <= before  # cleaned up


def run(*args: str) -> str:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_quickstart_script(local_server: LocalServer) -> None:
    out = run(
        str(EXAMPLES / "python" / "quickstart.py"),
        "--endpoint",
        local_server.endpoint,
        "--workspace-url",
        local_server.workspace_url,
        "--client-id",
        local_server.client_id,
        "--client-secret",
        local_server.client_secret,
    )
    assert "partial send: 1 ok, 1 failed" in out
    assert "async: 30,000 rows in 3 sends" in out
    assert "asyncio: 80,000 rows" in out
    assert "as expected: AuthenticationError" in out


def test_demo_sends_and_shows(tmp_path: pathlib.Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        out = run(
            str(EXAMPLES / "python" / "demo.py"),
            "send",
            "--endpoint",
            server.endpoint,
            "--workspace-url",
            server.workspace_url,
            "--client-id",
            server.client_id,
            "--client-secret",
            server.client_secret,
            "--table",
            "main.demo.events",
            "--rows",
            "120000",
        )
        assert "120,000 rows acknowledged" in out
    finally:
        assert server.stop() == 0
    out = run(
        str(EXAMPLES / "python" / "demo.py"),
        "show",
        "--data-dir",
        str(server.data_dir),
        "--table",
        "main.demo.events",
    )
    assert "rows in the Delta table main.demo.events: 120,000" in out
    assert "'session': {'id': 's-" in out and "'device': {'os':" in out


def test_demo_script_is_wired(tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, DEMO_ROWS="20000", PYZEROBUS_PYTHON=sys.executable)
    env.setdefault("ZEROBUS_LOCAL_BIN", str(REPO / ".bin" / "zerobus-local"))
    out = subprocess.run(
        ["bash", str(EXAMPLES / "demo.sh")], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "rows in the Delta table main.demo.events: 20,000" in out.stdout
