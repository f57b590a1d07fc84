"""Test against a local Zerobus server: the ``zerobus-local`` command and a pytest plugin.

``zerobus-local`` speaks the Zerobus wire protocol and the OAuth and Unity
Catalog endpoints a wrapper uses, and writes what it acknowledges to Delta
tables in a directory, so tests need no Databricks workspace. This module
starts it (:func:`start_local_server`, or the ``zerobus_local`` fixture) on
free loopback ports in a directory of its own, and stops it after.

Enable the fixtures with ``pytest -p pyzerobus.testing``, with
``pytest_plugins = ["pyzerobus.testing"]`` in your top-level ``conftest.py``,
or by importing them into a test module or conftest::

    from pyzerobus.testing import zerobus_config, zerobus_local  # noqa: F401

    def test_send(zerobus_local):
        with pyzerobus.ZerobusWrapper(zerobus_local.config) as w:
            assert w.send_batch(pa.table({"id": [1, 2, 3]})).success
        assert zerobus_local.read_table().num_rows == 3

The binary is looked for in this order: the ``ZEROBUS_LOCAL_BIN``
environment variable, a copy shipped inside the package
(``pyzerobus/_bin/zerobus-local``), then ``zerobus-local`` on ``PATH``.
Reading tables back needs the ``deltalake`` package.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import pytest

from .config import WrapperConfiguration

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = [
    "LocalZerobus",
    "find_zerobus_local",
    "start_local_server",
    "zerobus_config",
    "zerobus_local",
]

#: The OAuth client every server started here accepts.
CLIENT_ID = "pyzerobus-test"
CLIENT_SECRET = "pyzerobus-test-secret"

_READY = "zerobus-local ready"


def find_zerobus_local() -> str:
    """The path of the ``zerobus-local`` binary.

    Looks at ``$ZEROBUS_LOCAL_BIN``, then ``pyzerobus/_bin/zerobus-local``
    inside the installed package, then ``PATH``. Raises
    :class:`FileNotFoundError` saying how to get it otherwise.
    """
    env = os.environ.get("ZEROBUS_LOCAL_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise FileNotFoundError(f"ZEROBUS_LOCAL_BIN={env} is not an executable file")
        return env
    shipped = pathlib.Path(__file__).resolve().parent / "_bin" / "zerobus-local"
    if os.access(shipped, os.X_OK):
        return str(shipped)
    found = shutil.which("zerobus-local")
    if found:
        return found
    raise FileNotFoundError(
        "zerobus-local, the local Zerobus server, was not found: it was neither in "
        "$ZEROBUS_LOCAL_BIN, nor shipped in this pyzerobus package (pyzerobus/_bin), nor on PATH. "
        "Install a pyzerobus wheel that ships it, build it from a source checkout "
        "(`make build` puts it in .bin/; or `go build ./tools/zerobus-local`), "
        "and set ZEROBUS_LOCAL_BIN to its path"
    )


@dataclass
class LocalZerobus:
    """A running zerobus-local server and how to reach it.

    Attributes:
        endpoint: the Zerobus (gRPC) endpoint.
        workspace_url: the workspace URL (OAuth, Unity Catalog, admin endpoints).
        admin_token: the token of the admin endpoints (faults, token revocation).
        data_dir: where the server keeps its Delta tables.
        config: a ready configuration for ``table_name`` on this server
            (quick retries; change it with ``config.replace(...)``).
        client_id, client_secret: the OAuth client the server accepts.
        process: the server process.

    """

    endpoint: str
    workspace_url: str
    admin_token: str
    data_dir: pathlib.Path
    config: WrapperConfiguration
    process: subprocess.Popen[str] = field(repr=False)
    client_id: str = CLIENT_ID
    client_secret: str = field(default=CLIENT_SECRET, repr=False)

    @property
    def table_name(self) -> str:
        """The table of :attr:`config`."""
        return self.config.table_name

    def config_for(self, table_name: str, **settings: Any) -> WrapperConfiguration:
        """A configuration for another table of this server (``settings`` override)."""
        return self.config.replace(table_name=table_name, **settings)

    def table_dir(self, table_name: Optional[str] = None) -> pathlib.Path:
        """The directory of a table's Delta log and files (by default :attr:`table_name`)."""
        return self.data_dir.joinpath(*(table_name or self.table_name).split("."))

    def admin_post(self, path: str, body: object = None) -> Any:
        """POST a JSON body to an admin endpoint (such as ``/admin/tokens/revoke``); the decoded answer."""
        req = urllib.request.Request(
            self.workspace_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + self.admin_token},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def arm_fault(self, kind: str, **fault: object) -> Any:
        """Arm a fault (``zerobus-local serve --help`` lists them).

        Example: ``arm_fault("delay_acks", delay="2s")``,
        ``arm_fault("fail_create_stream", code="PERMISSION_DENIED", times=-1)``.
        """
        return self.admin_post("/admin/faults", {"kind": kind, **fault})

    def read_table(self, table_name: Optional[str] = None) -> pa.Table:
        """Stop the server (which writes every durable record to its table) and read the Delta table.

        Needs the ``deltalake`` package.
        """
        try:
            import deltalake
        except ImportError as exc:  # pragma: no cover - deltalake is installed where tests run
            raise ImportError("reading the Delta table needs deltalake: pip install deltalake") from exc
        code = self.stop()
        if code != 0:
            raise RuntimeError(f"zerobus-local exited with status {code}")
        return deltalake.DeltaTable(str(self.table_dir(table_name))).to_pyarrow_table()

    def stop(self, timeout: float = 30.0) -> int:
        """Stop the server gracefully (SIGTERM) and return its exit status; again does nothing."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover - a server that hangs
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_local_server(
    data_dir: pathlib.Path,
    table_name: str = "main.default.events",
    *,
    args: Sequence[str] = ("--materialize-interval", "200ms"),
    timeout: float = 30.0,
    **settings: Any,
) -> LocalZerobus:
    """Start zerobus-local on free loopback ports and wait until it is ready.

    Args:
        data_dir: where the server keeps its tables (created if missing).
        table_name: the table of the returned :attr:`LocalZerobus.config`.
        args: more ``zerobus-local serve`` flags (the default writes
            acknowledged records to the table within 200 ms).
        timeout: seconds to wait for the server to be ready.
        **settings: settings of the configuration (:class:`WrapperConfiguration`).

    Returns:
        The running server; stop it with :meth:`LocalZerobus.stop`.

    """
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        find_zerobus_local(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(data_dir),
        "--client",
        f"{CLIENT_ID}:{CLIENT_SECRET}",
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready: list[str] = []
    seen = threading.Event()

    def read() -> None:  # until the server ends: a full pipe would block it
        assert proc.stdout is not None
        for line in proc.stdout:
            if not seen.is_set() and line.startswith(_READY):
                ready.append(line)
                seen.set()
        seen.set()

    threading.Thread(target=read, name="zerobus-local-stdout", daemon=True).start()
    if not seen.wait(timeout) or not ready:
        proc.kill()
        proc.wait()
        raise RuntimeError(
            f"zerobus-local did not become ready within {timeout} s (exit status {proc.returncode})"
        )
    fields = dict(kv.split("=", 1) for kv in ready[0].split()[2:])
    base: dict[str, Any] = {
        "endpoint": fields["endpoint"],
        "unity_catalog_url": fields["workspace_url"],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "table_name": table_name,
        "retry_base_delay_ms": 5,
        "retry_max_delay_ms": 50,
    }
    base.update(settings)
    return LocalZerobus(
        endpoint=fields["endpoint"],
        workspace_url=fields["workspace_url"],
        admin_token=fields.get("admin_token", ""),
        data_dir=data_dir,
        config=WrapperConfiguration(**base),
        process=proc,
    )


def _table_for(request: pytest.FixtureRequest) -> str:
    """A table name unique to the test: main.pytest.<test name>."""
    return "main.pytest." + re.sub(r"\W+", "_", request.node.name)[:60].lower()


@pytest.fixture
def zerobus_local(request: pytest.FixtureRequest) -> Iterator[LocalZerobus]:
    """A zerobus-local server of its own for one test, in a temporary directory removed after.

    Its ``config`` points at a table named after the test.
    """
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="zerobus-local-"))
    try:
        server = start_local_server(data_dir, _table_for(request))
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def zerobus_config(zerobus_local: LocalZerobus) -> WrapperConfiguration:
    """A ready configuration for a table named after the test, on its own zerobus-local."""
    return zerobus_local.config
