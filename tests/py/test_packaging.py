"""The installed package: one version number, and the zerobus-local it carries."""

from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess
import sys

import pytest

import pyzerobus
from pyzerobus import _zerobus_local


def test_one_version_number() -> None:
    # pyzerobus/__init__.py's __version__ is the version of the distribution
    # (pyproject.toml: [tool.hatch.version]) and must be the engine's.
    assert importlib.metadata.version("pyzerobus") == pyzerobus.__version__
    assert pyzerobus.engine_version() == pyzerobus.__version__


def test_zerobus_local_is_in_the_package() -> None:
    exe = _zerobus_local.binary()
    assert exe.is_file(), exe
    assert _zerobus_local.main(["help"]) == 0


def test_zerobus_local_console_script() -> None:
    script = pathlib.Path(sys.executable).parent / "zerobus-local"
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    out = subprocess.run([str(script), "help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "zerobus-local serve" in out.stdout + out.stderr


def test_zerobus_local_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(_zerobus_local, "binary", lambda: pathlib.Path("/nonexistent/zerobus-local"))
    assert _zerobus_local.main([]) == 127
    assert "is missing" in capsys.readouterr().err
