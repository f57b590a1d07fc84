"""The ``zerobus-local`` command of the wheel: runs the local Zerobus server it carries.

The server is the Go command tools/zerobus-local, built into
``pyzerobus/_bin/`` with the engine (see hatch_build.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional


def binary() -> Path:
    """The path of the zerobus-local binary inside the package."""
    name = "zerobus-local.exe" if sys.platform == "win32" else "zerobus-local"
    return Path(__file__).resolve().parent / "_bin" / name


def main(argv: Optional[list[str]] = None) -> int:
    """Run zerobus-local with `argv` (the command line by default); on POSIX it replaces this process."""
    args = sys.argv[1:] if argv is None else argv
    exe = binary()
    if not exe.is_file():
        print(f"zerobus-local: {exe} is missing (this pyzerobus was installed without it)", file=sys.stderr)
        return 127
    if os.name == "posix" and argv is None:
        os.execv(str(exe), [str(exe), *args])  # pragma: no cover - replaces the process
    return subprocess.call([str(exe), *args])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
