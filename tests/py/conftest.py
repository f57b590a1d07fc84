"""Shared fixtures: a real zerobus-local server per test module."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

# pyzerobus.testing's fixtures (zerobus_local, zerobus_config), imported as a user's conftest would;
# its server starter and the OAuth client it registers serve every test here.
from pyzerobus.testing import (  # noqa: F401
    CLIENT_ID,
    CLIENT_SECRET,
    start_local_server,
    zerobus_config,
    zerobus_local,
)

REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class LocalServer:
    """A running zerobus-local process and how to reach it."""

    endpoint: str
    workspace_url: str
    data_dir: pathlib.Path
    proc: subprocess.Popen
    admin_token: str = ""
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def table_dir(self, full_name: str) -> pathlib.Path:
        """Directory of the Delta table for catalog.schema.table."""
        return self.data_dir.joinpath(*full_name.split("."))

    def stop(self, timeout: float = 30.0) -> int:
        """Stop the server gracefully (SIGTERM): it materializes what is durable."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def tool_bin(name: str, env: str) -> str:
    """Path of a command of tools/ (built by `make build`), built here if missing."""
    path = os.environ.get(env) or str(REPO / ".bin" / name)
    if not os.path.exists(path):
        built = subprocess.run(["go", "build", "-o", path, f"./tools/{name}"], cwd=REPO, check=False)
        if built.returncode != 0:
            pytest.fail(f"cannot build {name}; run `make build`")
    return path


def zerobus_local_bin() -> str:
    """Path of the zerobus-local binary."""
    return tool_bin("zerobus-local", "ZEROBUS_LOCAL_BIN")


def start_server(data_dir: pathlib.Path, *extra: str) -> LocalServer:
    """Start zerobus-local (pyzerobus.testing.start_local_server) with the serve flags extra."""
    os.environ["ZEROBUS_LOCAL_BIN"] = zerobus_local_bin()  # built here if missing
    try:
        server = start_local_server(data_dir, args=extra)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    return LocalServer(
        endpoint=server.endpoint,
        workspace_url=server.workspace_url,
        data_dir=data_dir,
        proc=server.process,
        admin_token=server.admin_token,
        client_id=server.client_id,
        client_secret=server.client_secret,
    )


@pytest.fixture
def local_server(tmp_path: pathlib.Path) -> Iterator[LocalServer]:
    """A fresh durable zerobus-local server for one test."""
    server = start_server(tmp_path / "data", "--materialize-interval", "200ms")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


# ---------------------------------------------------------------- pyzerobus


def post_json(url: str, body: object, token: str = "") -> object:
    """POST a JSON body (with "Authorization: Bearer token" if given) and decode the JSON answer."""
    import json
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def admin_post(server: LocalServer, path: str, body: object = None) -> object:
    """POST to an admin endpoint of a running server (such as /admin/tokens/revoke) with its admin token."""
    return post_json(server.workspace_url + path, body, token=server.admin_token)


def arm_fault(server: LocalServer, **fault: object) -> None:
    """Arm a fault on a running server (POST /admin/faults)."""
    admin_post(server, "/admin/faults", fault)


def read_delta(server: LocalServer, table: str) -> pyarrow.Table:  # noqa: F821
    """Stop the server (which materializes every durable record) and read the Delta table."""
    import deltalake

    assert server.stop() == 0
    return deltalake.DeltaTable(str(server.table_dir(table))).to_pyarrow_table()


def wrapper_config(server: LocalServer, table: str, **settings: object) -> pyzerobus.WrapperConfiguration:  # noqa: F821
    """A configuration for the server, with quick retries."""
    import pyzerobus

    base: dict = dict(
        endpoint=server.endpoint,
        unity_catalog_url=server.workspace_url,
        client_id=server.client_id,
        client_secret=server.client_secret,
        table_name=table,
        retry_base_delay_ms=5,
        retry_max_delay_ms=50,
        ack_timeout_ms=5000,
        flush_timeout_ms=30000,
    )
    base.update(settings)
    return pyzerobus.WrapperConfiguration(**base)


TRANSPORTS = {
    "proto": {"transport": "proto"},
    "arrow": {"transport": "arrow"},
    "arrow-zstd": {"transport": "arrow", "arrow_compression": "zstd"},
}


@pytest.fixture(params=list(TRANSPORTS), ids=list(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of each transport, for tests that run on both."""
    return TRANSPORTS[request.param]


@pytest.fixture
def table_name(request: pytest.FixtureRequest) -> str:
    """A table name unique to the test."""
    import re

    return "main.pytest." + re.sub(r"\W+", "_", request.node.name)[:60].lower()


@pytest.fixture
def config(local_server: LocalServer, table_name: str) -> pyzerobus.WrapperConfiguration:  # noqa: F821
    """A configuration pointing at this test's server and table."""
    return wrapper_config(local_server, table_name)


@pytest.fixture
def discard_server(tmp_path: pathlib.Path) -> Iterator[LocalServer]:
    """A zerobus-local that acknowledges without storing (for volume tests)."""
    server = start_server(tmp_path / "discard", "--discard")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_server(tmp_path: pathlib.Path) -> Iterator[LocalServer]:
    """A zerobus-local serving TLS; its CA is data_dir/ca.pem."""
    server = start_server(tmp_path / "tls", "--tls", "--materialize-interval", "200ms")
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- telemetry


@dataclasses.dataclass
class OTLPSink:
    """A running otlp-sink: a real OTLP receiver writing each export as a JSON line."""

    grpc_url: str
    http_url: str
    out: pathlib.Path
    proc: subprocess.Popen

    def exports(self, signal_name: str) -> list[dict]:
        """The OTLP/JSON export requests received so far for "metrics" or "traces"."""
        import json

        lines = self.out.read_text().splitlines() if self.out.exists() else []
        return [d for d in map(json.loads, lines) if d.get("signal") == signal_name]


@pytest.fixture
def otlp_sink(tmp_path: pathlib.Path) -> Iterator[OTLPSink]:
    """An OTLP receiver (gRPC and HTTP) on free loopback ports."""
    import json

    out, ready = tmp_path / "otlp.jsonl", tmp_path / "otlp-ready.json"
    proc = subprocess.Popen(
        [tool_bin("otlp-sink", "OTLP_SINK_BIN"), "-out", str(out), "-ready", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("otlp-sink did not start")
        time.sleep(0.02)
    where = json.loads(ready.read_text())
    try:
        yield OTLPSink(grpc_url=where["grpc_url"], http_url=where["http_url"], out=out, proc=proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def server_stats(server: LocalServer) -> dict:
    """The server's /stats."""
    with urllib.request.urlopen(server.workspace_url + "/stats", timeout=10) as resp:
        return json.loads(resp.read())


def assert_transport(server: LocalServer, transport: dict[str, str]) -> None:
    """Every stream the server saw (it must be running) used the transport."""
    streams = server_stats(server)["streams"]
    assert streams and {s["transport"] for s in streams} == {transport["transport"]}
