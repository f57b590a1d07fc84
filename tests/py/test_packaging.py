"""The installed package: one version number, its license files, and the zerobus-local it carries."""

from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess
import sys

import pytest

import pyzerobus
from pyzerobus import _zerobus_local

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_one_version_number() -> None:
    # pyzerobus/__init__.py's __version__ is the version of the distribution
    # (pyproject.toml: [tool.hatch.version]) and must be the engine's.
    assert importlib.metadata.version("pyzerobus") == pyzerobus.__version__
    assert pyzerobus.engine_version() == pyzerobus.__version__


def test_license_and_third_party_notices_are_in_the_distribution() -> None:
    # Wheels (and the sdist) carry LICENSE and THIRD_PARTY_NOTICES, the licenses
    # of the Go modules linked into the extension and zerobus-local, as the
    # checkout has them (tests/py/test_notices.py checks the notices are current).
    dist = importlib.metadata.distribution("pyzerobus")
    assert dist.metadata.get_all("License-File") == ["LICENSE", "THIRD_PARTY_NOTICES"]
    assert dist.metadata["License-Expression"] == "Apache-2.0"
    shipped = {f.name: f for f in dist.files or [] if "licenses" in f.parts}
    assert sorted(shipped) == ["LICENSE", "THIRD_PARTY_NOTICES"]
    for name, f in shipped.items():
        assert f.read_text() == (ROOT / name).read_text(), name
    assert "github.com/apache/arrow-go/v18" in shipped["THIRD_PARTY_NOTICES"].read_text()


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
