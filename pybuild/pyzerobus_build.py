"""PEP 517 build backend of pyzerobus: gopy-built native module, plain wheel.

``pip install .`` and ``python -m build`` call this module (pyproject.toml:
``build-backend = "pyzerobus_build"``, ``backend-path = ["pybuild"]``). It
builds the Go facade (``bindings/``) into the private extension module
``pyzerobus._native`` with gopy, for the interpreter running the build, then
packs the Python package and that module into a wheel.

What it needs on the building machine: Go (``go`` on PATH, or ``$GO``) and
PyBindGen (a build requirement, installed by pip). gopy and goimports are
built from the versions pinned in internal/tools/go.mod. The module links no libpython
(``-dynamic-link``): the interpreter provides the Python symbols at import
time, so one wheel works with every build of its CPython minor version.

The generated Go/C sources live under ``build/_gopy/<tag>/`` (the leading
underscore keeps them out of ``go ... ./...``); the module itself is written
into ``pyzerobus/_native/`` so that the source tree imports too.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the py39/py310 builds
    import tomli as tomllib

NATIVE_NAME = "zbnative"  # gopy -name: must not start with "_" (Go would skip NAME.go)
NATIVE_FILES = ("__init__.py", "bindings.py", "go.py")
GO_PACKAGE = "./bindings"
# The module of the build tools (gopy, goimports), apart from the engine's.
TOOLS_MODULE = "internal/tools"

# Go sources an sdist needs to build the facade.
SDIST_GO_TREES = ("bindings", "zbwrap")
SDIST_GO_SKIP = ("zbwrap/zerobustest",)


# ---------------------------------------------------------------- helpers


def _root() -> Path:
    return Path.cwd()


def _project() -> dict[str, Any]:
    with open(_root() / "pyproject.toml", "rb") as f:
        return dict(tomllib.load(f)["project"])


def _log(msg: str) -> None:
    print(f"pyzerobus-build: {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str], cwd: Path, env: Optional[dict[str, str]] = None) -> None:
    _log("$ " + " ".join(cmd))
    proc = subprocess.run(
        cmd, cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"pyzerobus build step failed ({' '.join(cmd)}, exit {proc.returncode}):\n{proc.stdout}"
        )


def _go() -> str:
    go = os.environ.get("GO") or shutil.which("go")
    if not go:
        raise RuntimeError(
            "building pyzerobus from source needs the Go toolchain (go 1.26 or later) on PATH "
            "or in $GO: https://go.dev/dl/ -- or install a pyzerobus wheel, which needs no Go"
        )
    return go


def _tag() -> str:
    """The wheel tag of the running interpreter: cpXY-cpXY<abiflags>-<platform>."""
    impl = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    abi = impl + getattr(sys, "abiflags", "")
    plat = re.sub(r"[-.]", "_", sysconfig.get_platform())
    return f"{impl}-{abi}-{plat}"


def _ext_suffix() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


# ---------------------------------------------------------------- native build


def build_native(python: str = sys.executable) -> Path:
    """Build pyzerobus/_native for `python` (this interpreter by default).

    Returns the directory of the built module. Steps: build gopy and
    goimports (internal/tools/go.mod pins them), ``gopy gen``, strip the build machine's
    library paths from the cgo flags, build the Go header, generate the C
    wrappers with PyBindGen, build the extension with ``-buildmode=c-shared``.
    """
    root = _root()
    go = _go()
    work = root / "build" / "_gopy" / _tag()
    tools = root / "build" / "_gopy" / "tools"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tools.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    env["PATH"] = str(tools) + os.pathsep + env.get("PATH", "")
    env["CGO_ENABLED"] = "1"
    env.pop("GOFLAGS", None)  # -mod=vendor or the like would break the generated main package
    start = time.monotonic()
    _run(
        [
            go,
            "build",
            "-o",
            str(tools) + os.sep,
            "github.com/go-python/gopy",
            "golang.org/x/tools/cmd/goimports",
        ],
        root / TOOLS_MODULE,
        env,
    )
    rel = os.path.relpath(work, root)
    _run(
        [
            str(tools / "gopy"),
            "gen",
            f"-output={rel}",
            f"-name={NATIVE_NAME}",
            f"-vm={python}",
            "-dynamic-link=true",
            "-no-make=true",
            GO_PACKAGE,
        ],
        root,
        env,
    )
    _patch_cgo_flags(work / f"{NATIVE_NAME}.go")
    _run([str(tools / "goimports"), "-w", f"{NATIVE_NAME}.go"], work, env)
    ldflags = "-ldflags=-s -w"
    # The first build only produces the header the generated C code includes.
    _run([go, "build", "-buildmode=c-shared", ldflags, "-o", f"{NATIVE_NAME}_go.so", "."], work, env)
    _run([python, "build.py"], work, env)
    (work / f"{NATIVE_NAME}_go.so").unlink()
    cflags = "-fPIC -O2"  # the Python include directory is in the generated cgo directives
    lib = f"_{NATIVE_NAME}{_python_ext_suffix(python)}"
    benv = dict(env, CGO_CFLAGS=cflags, CGO_LDFLAGS="")
    _run([go, "build", "-buildmode=c-shared", ldflags, "-o", lib, "."], work, benv)

    out = root / "pyzerobus" / "_native"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in NATIVE_FILES:
        text = (work / name).read_text()
        (out / name).write_text(_patch_wrapper(text))
    shutil.copy2(work / lib, out / lib)
    _log(f"built {out / lib} in {time.monotonic() - start:.0f} s")
    return out


def _python_ext_suffix(python: str) -> str:
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return _ext_suffix()
    out = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return out.stdout.strip()


def _patch_cgo_flags(path: Path) -> None:
    """Drop -L and -Wl,-rpath flags of the build machine's Python from the
    generated cgo directives: the module links no libpython, and a wheel
    must not carry a path of the machine that built it."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("#cgo LDFLAGS:"):
            kept = [t for t in line.split()[2:] if not (t.startswith("-L") or t.startswith("-Wl,-rpath"))]
            line = "#cgo LDFLAGS: " + " ".join(kept)
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def _patch_wrapper(text: str) -> str:
    """gopy's Python wrappers chdir to their directory around the import of
    the extension (for a dlopen that a package-relative import does not
    need); a chdir at import time races with other threads, so drop it."""
    text = re.sub(r"(?m)^os\.chdir\((currentdir|cwd)\)$", "pass  # (chdir removed by pyzerobus_build)", text)
    return text


# ---------------------------------------------------------------- metadata


def _metadata() -> str:
    p = _project()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {p['name']}",
        f"Version: {p['version']}",
    ]
    if "description" in p:
        lines.append(f"Summary: {p['description']}")
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    lic = p.get("license")
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    elif isinstance(lic, str):
        lines.append(f"License: {lic}")
    for c in p.get("classifiers", []):
        lines.append(f"Classifier: {c}")
    for k, v in p.get("urls", {}).items():
        lines.append(f"Project-URL: {k}, {v}")
    for d in p.get("dependencies", []):
        lines.append(f"Requires-Dist: {d}")
    for extra, deps in p.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for d in deps:
            marker = f"extra == '{extra}'"
            if ";" in d:
                req, m = d.split(";", 1)
                lines.append(f"Requires-Dist: {req.strip()} ; ({m.strip()}) and {marker}")
            else:
                lines.append(f"Requires-Dist: {d} ; {marker}")
    body = ""
    readme = p.get("readme")
    if isinstance(readme, str) and (_root() / readme).exists():
        lines.append("Description-Content-Type: text/markdown")
        body = "\n" + (_root() / readme).read_text()
    return "\n".join(lines) + "\n" + body


def _dist_name() -> str:
    p = _project()
    return f"{re.sub(r'[-.]+', '_', p['name'])}-{p['version']}"


# ---------------------------------------------------------------- wheel


def _package_files(root: Path) -> Iterable[tuple[Path, str]]:
    pkg = root / "pyzerobus"
    for path in sorted(pkg.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root).as_posix()
        if rel.startswith("pyzerobus/_native/"):
            name = path.name
            if name not in NATIVE_FILES and not (
                name.startswith(f"_{NATIVE_NAME}") and name.endswith(_ext_suffix())
            ):
                continue
        elif path.suffix not in (".py", ".pyi", ".typed"):
            continue
        yield path, rel


def _record_line(arcname: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [arcname, f"sha256={digest}", str(len(data))]


def _write_wheel(wheel_directory: str) -> str:
    root = _root()
    dist = _dist_name()
    tag = _tag()
    name = f"{dist}-{tag}.whl"
    info = f"{dist}.dist-info"
    records: list[list[str]] = []
    path = Path(wheel_directory) / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def add(arcname: str, data: bytes, mode: int = 0o644) -> None:
            zi = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
            records.append(_record_line(arcname, data))

        for src, rel in _package_files(root):
            mode = 0o755 if src.suffix == ".so" else 0o644
            add(rel, src.read_bytes(), mode)
        add(f"{info}/METADATA", _metadata().encode())
        wheel = f"Wheel-Version: 1.0\nGenerator: pyzerobus_build\nRoot-Is-Purelib: false\nTag: {tag}\n"
        add(f"{info}/WHEEL", wheel.encode())
        add(f"{info}/top_level.txt", b"pyzerobus\n")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerows(records)
        writer.writerow([f"{info}/RECORD", "", ""])
        zi = zipfile.ZipInfo(f"{info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0))
        zi.external_attr = (0o100000 | 0o644) << 16
        zf.writestr(zi, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    _log(f"wrote {path}")
    return name


# ---------------------------------------------------------------- PEP 517 hooks


def get_requires_for_build_wheel(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    """Nothing beyond build-system.requires."""
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    """Nothing beyond build-system.requires."""
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Optional[dict[str, Any]] = None
) -> str:
    """Write the .dist-info directory without building the native module."""
    info = Path(metadata_directory) / f"{_dist_name()}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(_metadata())
    (info / "WHEEL").write_text(
        f"Wheel-Version: 1.0\nGenerator: pyzerobus_build\nRoot-Is-Purelib: false\nTag: {_tag()}\n"
    )
    return info.name


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[dict[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    """Build the native module for this interpreter and pack the wheel."""
    build_native(sys.executable)
    return _write_wheel(wheel_directory)


def _sdist_files(root: Path) -> Iterable[str]:
    for name in ("pyproject.toml", "README.md", "go.mod", "go.sum", "tox.ini",
                 f"{TOOLS_MODULE}/go.mod", f"{TOOLS_MODULE}/go.sum"):
        if (root / name).exists():
            yield name
    for tree in SDIST_GO_TREES:
        for path in sorted((root / tree).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if not path.is_file() or rel.startswith(SDIST_GO_SKIP) or path.name.endswith("_test.go"):
                continue
            if "testdata" in path.parts:
                continue
            yield rel
    for tree in ("pyzerobus", "pybuild"):
        for path in sorted((root / tree).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and not rel.startswith("pyzerobus/_native/")
            ):
                yield rel


def build_sdist(sdist_directory: str, config_settings: Optional[dict[str, Any]] = None) -> str:
    """Pack the Python sources, the backend and the Go sources the facade needs."""
    root = _root()
    dist = _dist_name()
    name = f"{dist}.tar.gz"
    with tempfile.TemporaryDirectory() as tmp:
        pkg_info = Path(tmp) / "PKG-INFO"
        pkg_info.write_text(_metadata())
        with tarfile.open(Path(sdist_directory) / name, "w:gz", format=tarfile.PAX_FORMAT) as tf:

            def norm(ti: tarfile.TarInfo) -> tarfile.TarInfo:
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mtime = 1577836800
                return ti

            tf.add(str(pkg_info), arcname=f"{dist}/PKG-INFO", filter=norm)
            for rel in _sdist_files(root):
                tf.add(str(root / rel), arcname=f"{dist}/{rel}", filter=norm)
    _log(f"wrote {Path(sdist_directory) / name}")
    return name


if __name__ == "__main__":  # python pybuild/pyzerobus_build.py: build the native module in place
    build_native(sys.argv[1] if len(sys.argv) > 1 else sys.executable)
