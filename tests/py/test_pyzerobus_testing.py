"""pyzerobus.testing: the zerobus_local fixture, its helpers, finding the binary, the plugin."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

import pyzerobus
from pyzerobus import ZerobusWrapper, testing
from pyzerobus.testing import LocalZerobus


def ids(first: int, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(first, first + n), pa.int64())})


def test_the_fixture_serves_a_table_and_its_helpers(zerobus_local: LocalZerobus) -> None:
    assert zerobus_local.config.endpoint == zerobus_local.endpoint
    assert zerobus_local.table_name.startswith("main.pytest.test_the_fixture")
    assert zerobus_local.client_secret not in repr(zerobus_local)
    other = zerobus_local.config_for("main.pytest.other", batch_rows=7)
    assert other.batch_rows == 7
    assert zerobus_local.admin_post("/admin/tokens/revoke") == {"revoked": 0}
    zerobus_local.arm_fault("fail_create_stream", code="PERMISSION_DENIED", times=1)
    with ZerobusWrapper(other, retry_max_attempts=0) as w:
        with pytest.raises(pyzerobus.ZerobusError):
            w.send_batch(ids(0, 2))
        assert w.send_batch(ids(0, 2)).success
    assert zerobus_local.read_table("main.pytest.other").num_rows == 2
    assert zerobus_local.stop() == 0  # again: nothing to do


def test_zerobus_config_fixture(zerobus_config: pyzerobus.WrapperConfiguration) -> None:
    with ZerobusWrapper(zerobus_config) as w:
        assert w.send_batch(ids(0, 3)).success


def test_finding_the_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    real = testing.find_zerobus_local()
    # A package without its own copy (as a source install has none).
    monkeypatch.setattr(testing, "__file__", str(tmp_path / "pkg" / "testing.py"))
    monkeypatch.setenv("ZEROBUS_LOCAL_BIN", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="ZEROBUS_LOCAL_BIN"):
        testing.find_zerobus_local()
    monkeypatch.delenv("ZEROBUS_LOCAL_BIN")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make build"):
        testing.find_zerobus_local()
    (tmp_path / "zerobus-local").symlink_to(real)
    assert testing.find_zerobus_local() == str(tmp_path / "zerobus-local")
    # The copy inside the package comes before PATH.
    (tmp_path / "pkg" / "_bin").mkdir(parents=True)
    (tmp_path / "pkg" / "_bin" / "zerobus-local").symlink_to(real)
    assert testing.find_zerobus_local() == str(tmp_path / "pkg" / "_bin" / "zerobus-local")


def test_a_server_that_never_gets_ready(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    fake = tmp_path / "zerobus-local"
    fake.write_text("#!/bin/sh\necho starting\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("ZEROBUS_LOCAL_BIN", str(fake))
    with pytest.raises(RuntimeError, match="did not become ready"):
        testing.start_local_server(tmp_path / "data", timeout=10)


def test_the_plugin_loads_with_dash_p(tmp_path: pathlib.Path) -> None:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import pyarrow as pa
            import pyzerobus

            def test_send(zerobus_local):
                with pyzerobus.ZerobusWrapper(zerobus_local.config) as w:
                    assert w.send_batch(pa.table({"id": [1, 2, 3]})).success
                assert zerobus_local.read_table().num_rows == 3
            """
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "pyzerobus.testing",
            "-p",
            "no:cacheprovider",
            "test_user.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
