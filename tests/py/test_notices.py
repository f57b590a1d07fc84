"""tools/notices/notices.py: THIRD_PARTY_NOTICES is up to date and lists what the wheel links."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "notices"))

import notices  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="needs the go command")


def test_the_committed_file_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    # A changed go.mod (a module added, removed or upgraded) makes this fail
    # until `make notices` is run and the file committed.
    assert notices.main(["--root", str(ROOT), "--check"]) == 0, capsys.readouterr().err
    text = (ROOT / "THIRD_PARTY_NOTICES").read_text()
    # The modules the engine and the server link, with their versions and licenses.
    for module in (
        "github.com/apache/arrow-go/v18 ",
        "google.golang.org/grpc ",
        "github.com/go-python/gopy ",
    ):
        assert f"\n{module}v" in text, module
    assert "Go standard library and runtime" in text
    assert "Apache License" in text and "Copyright (c) 2009 The Go Authors" in text
    # Test-only modules are not linked into anything shipped.
    assert "go.uber.org/goleak" not in text


def test_stale_and_missing_files_fail(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "NOTICES"
    stale.write_text((ROOT / "THIRD_PARTY_NOTICES").read_text().replace("v18.8.0", "v18.0.0", 1))
    assert notices.main(["--root", str(ROOT), "--output", str(stale), "--check"]) == 1
    assert "NOTICES is stale: run make notices" in capsys.readouterr().err
    assert notices.main(["--root", str(ROOT), "--output", str(tmp_path / "none"), "--check"]) == 1

    # Writing makes it current.
    assert notices.main(["--root", str(ROOT), "--output", str(stale)]) == 0
    assert stale.read_text() == (ROOT / "THIRD_PARTY_NOTICES").read_text()


def test_a_module_without_a_license_is_named(tmp_path: pathlib.Path) -> None:
    (tmp_path / "README").write_text("no license here\n")
    (tmp_path / "LICENSE.md").mkdir()
    with pytest.raises(notices.NoticeError, match=r"module example.com/x@v1.0.0: no LICENSE"):
        notices.license_texts("example.com/x@v1.0.0", tmp_path)
    (tmp_path / "COPYING").write_text("  the terms  \n\n")
    (tmp_path / "NOTICE.txt").write_text("a notice")
    assert notices.license_texts("example.com/x", tmp_path) == [
        ("COPYING", "the terms\n"),
        ("NOTICE.txt", "a notice\n"),
    ]


def test_go_failures_are_reported(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Not a module: go list fails and the message says which command on which platform.
    assert notices.main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "notices: go list -deps" in err and "GOOS=linux" in err
    assert not (tmp_path / "THIRD_PARTY_NOTICES").exists()


def test_a_module_not_downloaded_is_named(tmp_path: pathlib.Path) -> None:
    # A module required but neither in go.sum nor in the cache: go list fails naming it.
    (tmp_path / "go.mod").write_text(
        "module example.com/m\n\ngo 1.22\n\nrequire example.com/missing v1.0.0\n"
    )
    (tmp_path / "m.go").write_text('package m\n\nimport _ "example.com/missing/p"\n')
    with pytest.raises(notices.NoticeError) as e:
        notices.modules(tmp_path, ["."])
    assert "example.com/missing" in str(e.value)


def test_no_go_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(notices.NoticeError, match="cannot run go"):
        notices.go(ROOT, "version")


def test_command_line() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notices" / "notices.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "is up to date" in out.stdout
