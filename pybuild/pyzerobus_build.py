"""The native build step of pyzerobus: the gopy-built engine module and zerobus-local.

``hatch_build.py`` (the hatchling build hook named in pyproject.toml) calls
:func:`build_native` and :func:`build_zerobus_local` before hatchling packs
the wheel; ``python pybuild/pyzerobus_build.py [python]`` runs the first in
place. :func:`build_native` builds the Go facade (``bindings/``) into the
private extension module ``pyzerobus._native`` with gopy, for one interpreter;
:func:`build_zerobus_local` builds the local Zerobus server into
``pyzerobus/_bin/``.

What it needs on the building machine: Go (``go`` on PATH, or ``$GO``) and
PyBindGen importable by the target interpreter (a build requirement,
installed by pip). gopy and goimports are built from the versions pinned in
internal/tools/go.mod. The module links no libpython (``-dynamic-link``): the
interpreter provides the Python symbols at import time, so one wheel works
with every build of its CPython minor version.

Every Go build runs with ``-trimpath -buildvcs=false`` followed by the
user's ``GOFLAGS`` (theirs win). With ``PYZEROBUS_ZIG=1`` (or a zig target
in ``PYZEROBUS_ZIG``, e.g. ``aarch64-linux-gnu.2.28``) cgo compiles and links
with ``zig cc`` (PyPI ``ziglang``) against glibc 2.28, so that the wheel is
``manylinux_2_28``; a target of another architecture cross-compiles
(``GOARCH`` from the target).

The generated Go/C sources live under ``build/_gopy/<tag>/`` (the leading
underscore keeps them out of ``go ... ./...``); the module itself is written
into ``pyzerobus/_native/`` so that the source tree imports too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Optional

NATIVE_NAME = "zbnative"  # gopy -name: must not start with "_" (Go would skip NAME.go)
NATIVE_FILES = ("__init__.py", "bindings.py", "go.py")
GO_PACKAGE = "./bindings"
LOCAL_PACKAGE = "./tools/zerobus-local"
# The module of the build tools (gopy, goimports), apart from the engine's.
TOOLS_MODULE = "internal/tools"
# The Go flags of every build; the user's GOFLAGS come after them.
GOFLAGS = "-trimpath -buildvcs=false"
# The zig target of PYZEROBUS_ZIG=1: the oldest glibc the wheel supports.
ZIG_DEFAULT_TARGET = "x86_64-linux-gnu.2.28"
ZIG_ARCH = {"x86_64": ("amd64", "x86_64"), "aarch64": ("arm64", "aarch64")}


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


def zig_target() -> Optional[str]:
    """The zig target asked for by PYZEROBUS_ZIG, or None (the system C compiler)."""
    value = os.environ.get("PYZEROBUS_ZIG", "").strip()
    if value.lower() in ("", "0", "false", "no"):
        return None
    if value.lower() in ("1", "true", "yes"):
        return ZIG_DEFAULT_TARGET
    return value


def _target_arch() -> Optional[tuple[str, str]]:
    """(GOARCH, wheel platform arch) of a zig cross target, None for the host."""
    target = zig_target()
    if target is None:
        return None
    arch = target.split("-", 1)[0]
    if arch not in ZIG_ARCH:
        raise RuntimeError(f"PYZEROBUS_ZIG: unsupported target {target!r} (x86_64 or aarch64 linux-gnu)")
    return ZIG_ARCH[arch]


def wheel_tag(python: str = sys.executable) -> str:
    """The wheel tag of `python` and the target: cpXY-cpXY<abiflags>-<platform>."""
    ver, abiflags, plat = _python_query(
        python,
        "import sys, sysconfig; print('%d%d' % sys.version_info[:2]); "
        "print(getattr(sys, 'abiflags', '')); print(sysconfig.get_platform())",
    ).splitlines()
    plat = re.sub(r"[-.]", "_", plat)
    arch = _target_arch()
    if arch is not None:
        plat = f"linux_{arch[1]}"
    return f"cp{ver}-cp{ver}{abiflags}-{plat}"


def _python_query(python: str, code: str) -> str:
    out = subprocess.run([python, "-c", code], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip()


def go_env() -> dict[str, str]:
    """The environment of host Go builds: our GOFLAGS, then the user's."""
    env = dict(os.environ)
    user = env.get("GOFLAGS", "").strip()
    env["GOFLAGS"] = f"{GOFLAGS} {user}".strip()
    return env


def target_env(cgo: bool) -> dict[str, str]:
    """The environment of builds for the target: go_env, and zig cc as CC when asked."""
    env = go_env()
    env["CGO_ENABLED"] = "1" if cgo else "0"
    target = zig_target()
    if target is not None:
        goarch, _ = _target_arch() or ("", "")
        env["GOOS"] = "linux"
        env["GOARCH"] = goarch
        if cgo:
            zig = f"{sys.executable} -m ziglang"
            env["CC"] = f"{zig} cc -target {target}"
            env["CXX"] = f"{zig} c++ -target {target}"
    return env


def _build_tools(root: Path, go: str) -> Path:
    """gopy and goimports (pinned in internal/tools/go.mod) for this machine."""
    tools = root / "build" / "_gopy" / "tools"
    tools.mkdir(parents=True, exist_ok=True)
    env = go_env()
    for k in ("GOOS", "GOARCH", "CC", "CXX"):
        env.pop(k, None)
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
    return tools


def build_native(python: str = sys.executable, root: Optional[Path] = None) -> list[Path]:
    """Build pyzerobus/_native for `python` (this interpreter by default).

    Returns the files of the module. Steps: build gopy and goimports
    (internal/tools/go.mod pins them), ``gopy gen``, strip the build machine's
    library paths from the cgo flags, build the Go header, generate the C
    wrappers with PyBindGen, build the extension with ``-buildmode=c-shared``.
    """
    root = Path.cwd() if root is None else root
    go = _go()
    start = time.monotonic()
    tools = _build_tools(root, go)
    work = root / "build" / "_gopy" / wheel_tag(python)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    env = target_env(cgo=True)
    env["PATH"] = str(tools) + os.pathsep + env.get("PATH", "")  # gopy runs goimports
    # The interpreter's LDSHARED flags end up in the generated cgo directives.
    env.setdefault("CGO_LDFLAGS_ALLOW", ".*")
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
    lib = f"_{NATIVE_NAME}{_ext_suffix(python)}"
    benv = dict(env, CGO_CFLAGS=cflags, CGO_LDFLAGS="")
    _run([go, "build", "-buildmode=c-shared", ldflags, "-o", lib, "."], work, benv)

    out = root / "pyzerobus" / "_native"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files = []
    for name in NATIVE_FILES:
        text = (work / name).read_text()
        (out / name).write_text(_patch_wrapper(text))
        files.append(out / name)
    shutil.copy2(work / lib, out / lib)
    files.append(out / lib)
    _log(f"built {out / lib} in {time.monotonic() - start:.0f} s")
    return files


def build_zerobus_local(root: Optional[Path] = None) -> Path:
    """Build the local Zerobus server into pyzerobus/_bin/ (no cgo: a static binary)."""
    root = Path.cwd() if root is None else root
    env = target_env(cgo=False)
    name = "zerobus-local.exe" if env.get("GOOS", sys.platform) in ("windows", "win32") else "zerobus-local"
    out = root / "pyzerobus" / "_bin" / name
    _run([_go(), "build", "-ldflags=-s -w", "-o", str(out), LOCAL_PACKAGE], root, env)
    return out


def _ext_suffix(python: str) -> str:
    """EXT_SUFFIX of `python`, with the target's architecture when cross-compiling."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        suffix = str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")
    else:
        suffix = _python_query(python, "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
    arch = _target_arch()
    if arch is not None:
        suffix = re.sub(r"-(x86_64|aarch64)-linux-gnu", f"-{arch[1]}-linux-gnu", suffix)
    return suffix


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


if __name__ == "__main__":  # python pybuild/pyzerobus_build.py: build the native module in place
    build_native(sys.argv[1] if len(sys.argv) > 1 else sys.executable)
