"""The hatchling build hook of pyzerobus (pyproject.toml: [tool.hatch.build.targets.wheel.hooks.custom]).

Before hatchling packs a wheel (``pip install .``, ``python -m build``) or an
editable wheel (``pip install -e .``), it builds the Go engine into
``pyzerobus/_native`` with gopy for the interpreter running the build and the
local server into ``pyzerobus/_bin`` (pybuild/pyzerobus_build.py), then marks
the wheel as specific to that CPython and platform. Both directories are
gitignored and added to the wheel explicitly; an editable install imports them
from the source tree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _build_module() -> Any:
    here = str(Path(__file__).resolve().parent / "pybuild")
    if here not in sys.path:
        sys.path.insert(0, here)
    import pyzerobus_build

    return pyzerobus_build


class PyzerobusBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def dependencies(self) -> list[str]:
        # zig cc (PYZEROBUS_ZIG) comes from PyPI's ziglang in an isolated build.
        if self.target_name == "wheel" and _build_module().zig_target() is not None:
            return ["ziglang==0.17.1"]
        return []

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        pb = _build_module()
        root = Path(self.root)
        files = pb.build_native(sys.executable, root)
        files.append(pb.build_zerobus_local(root))
        build_data["pure_python"] = False
        build_data["tag"] = pb.wheel_tag(sys.executable)
        if version != "editable":
            for path in files:
                build_data["force_include"][str(path)] = path.relative_to(root).as_posix()
