#!/usr/bin/env python3
"""Statement coverage per file and per package, and a gate that fails below a floor.

    covergate.py go cover.out [--min 90] [--allow tools/cover/allow.txt] [--all]
    covergate.py py coverage.json [--min 90] [--allow tools/cover/allow.txt] [--all]

``go`` reads a Go cover profile (``go test -coverprofile``, any mode). With
``-coverpkg`` a block appears once per test binary that was built with it: it is
counted once, and covered if any binary covered it (what ``make cover`` has
always printed). Files that say ``// Code generated ... DO NOT EDIT.`` (the Go
convention: the protobuf code) are left out of files and packages alike.
Every file and every package (the files of one directory) must reach the floor.

``py`` reads coverage.py's JSON report (``--cov-report=json:PATH``): every file
must reach the floor; paths are shown from the package down (``pyzerobus/x.py``).

The allow-list names a file or a package (as shown in the report) with its own,
lower floor and the reason it cannot reach the common one, one per line::

    tools/bench/goengine  70  a benchmark driver: ...

An entry that is no longer needed (its target reaches the common floor, or no
longer exists) fails the gate too, so the list only shrinks.

The exit status is 0 when everything passes, 1 when something is below its
floor (each named on stderr), 2 for unreadable input.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from dataclasses import dataclass, field

GENERATED = re.compile(r"^// Code generated .* DO NOT EDIT\.$", re.MULTILINE)


@dataclass
class Tally:
    """Statements and covered statements of one file or package."""

    statements: int = 0
    covered: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.statements if self.statements else 100.0


@dataclass
class Allowance:
    """A lower floor for one file or package, and why."""

    floor: float
    reason: str
    used: bool = field(default=False)


class GateError(Exception):
    """Input the gate cannot read: the message names the file and line."""


def read_allow_list(path: pathlib.Path | None) -> dict[str, Allowance]:
    """Parse the allow-list: ``target floor reason``; ``#`` starts a comment line."""
    allow: dict[str, Allowance] = {}
    if path is None or not path.exists():
        return allow
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise GateError(f"{path}:{n}: want 'target floor reason', got {line!r}")
        try:
            floor = float(parts[1].rstrip("%"))
        except ValueError:
            raise GateError(f"{path}:{n}: floor {parts[1]!r} is not a number") from None
        allow[parts[0]] = Allowance(floor, parts[2])
    return allow


def module_path(root: pathlib.Path) -> str:
    """The module path declared in root/go.mod."""
    try:
        text = (root / "go.mod").read_text()
    except OSError as e:
        raise GateError(f"cannot read the module path: {e}") from None
    m = re.search(r"^module\s+(\S+)", text, re.MULTILINE)
    if not m:
        raise GateError(f"{root / 'go.mod'}: no module line")
    return m.group(1)


def is_generated(path: pathlib.Path) -> bool:
    """Whether a Go file carries the generated-code comment before its package clause."""
    try:
        head = path.read_text(errors="replace").split("\npackage ", 1)[0]
    except OSError:
        return False
    return GENERATED.search(head) is not None


def go_files(profile: pathlib.Path, root: pathlib.Path) -> dict[str, Tally]:
    """Per-file tallies of a Go cover profile, paths relative to the module root."""
    mod = module_path(root) + "/"
    seen: dict[str, tuple[str, int]] = {}
    hit: set[str] = set()
    try:
        lines = profile.read_text().splitlines()
    except OSError as e:
        raise GateError(f"cannot read {profile}: {e}") from None
    if not lines or not lines[0].startswith("mode:"):
        raise GateError(f"{profile}: not a Go cover profile (no 'mode:' line)")
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        try:
            block, stmts, count = line.rsplit(" ", 2)
            file = block.rsplit(":", 1)[0]
            seen.setdefault(block, (file, int(stmts)))
            if int(count) > 0:
                hit.add(block)
        except ValueError:
            raise GateError(f"{profile}:{n}: not a profile line: {line!r}") from None
    files: dict[str, Tally] = {}
    generated: dict[str, bool] = {}
    for block, (file, stmts) in seen.items():
        rel = file[len(mod) :] if file.startswith(mod) else file
        if rel not in generated:
            generated[rel] = is_generated(root / rel)
        if generated[rel]:
            continue
        t = files.setdefault(rel, Tally())
        t.statements += stmts
        if block in hit:
            t.covered += stmts
    return files


def packages(files: dict[str, Tally]) -> dict[str, Tally]:
    """Per-package (per-directory) tallies of per-file ones."""
    pkgs: dict[str, Tally] = {}
    for rel, t in files.items():
        p = pkgs.setdefault(rel.rsplit("/", 1)[0] if "/" in rel else ".", Tally())
        p.statements += t.statements
        p.covered += t.covered
    return pkgs


def py_files(report: pathlib.Path) -> dict[str, Tally]:
    """Per-file tallies of coverage.py's JSON report."""
    try:
        data = json.loads(report.read_text())
        entries = data["files"].items()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise GateError(f"{report}: not a coverage.py JSON report ({e})") from None
    files: dict[str, Tally] = {}
    for path, entry in entries:
        parts = pathlib.PurePath(path).parts
        rel = "/".join(parts[parts.index("site-packages") + 1 :]) if "site-packages" in parts else path
        s = entry["summary"]
        files[rel] = Tally(int(s["num_statements"]), int(s["covered_lines"]))
    return files


def check(
    kind: str, tallies: dict[str, Tally], floor: float, allow: dict[str, Allowance], show_all: bool
) -> list[str]:
    """Print the report rows and return the failures, one message each."""
    failures = []
    for name in sorted(tallies):
        t = tallies[name]
        want, note = floor, ""
        if name in allow:
            a = allow[name]
            a.used = True
            want, note = a.floor, f"   (allowed {a.floor:g}%: {a.reason})"
            if t.percent >= floor:
                failures.append(
                    f"{kind} {name}: {t.percent:.1f}% reaches {floor:g}%: drop it from the allow-list"
                )
        below = t.percent < want
        if below:
            failures.append(
                f"{kind} {name}: {t.percent:.1f}% of {t.statements} statements is below {want:g}%"
            )
        if show_all or below or note:
            mark = "   BELOW" if below else ""
            print(f"{t.percent:6.1f}%  {kind:7} {name}{mark}{note}")
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("lang", choices=["go", "py"])
    ap.add_argument("report", type=pathlib.Path, help="Go cover profile or coverage.py JSON report")
    ap.add_argument("--min", type=float, default=90.0, help="the floor, in percent (default 90)")
    ap.add_argument("--allow", type=pathlib.Path, help="allow-list of lower floors, with reasons")
    ap.add_argument("--root", type=pathlib.Path, default=pathlib.Path("."), help="module root (go)")
    ap.add_argument("--all", action="store_true", help="print every file and package, not only failures")
    args = ap.parse_args(argv)
    try:
        allow = read_allow_list(args.allow)
        files = go_files(args.report, args.root) if args.lang == "go" else py_files(args.report)
        failures = check("file", files, args.min, allow, args.all)
        if args.lang == "go":
            failures += check("package", packages(files), args.min, allow, args.all)
    except GateError as e:
        print(f"covergate: {e}", file=sys.stderr)
        return 2
    if not files:
        print(f"covergate: {args.report}: no files", file=sys.stderr)
        return 2
    total = Tally(sum(t.statements for t in files.values()), sum(t.covered for t in files.values()))
    failures += [
        f"allow-list entry {name}: no such {args.lang} file or package in {args.report}"
        for name, a in allow.items()
        if not a.used and _applies(name, args.lang)
    ]
    print(
        f"{args.lang} coverage: {total.percent:.1f}% of {total.statements} statements in {len(files)} files; "
        f"floor {args.min:g}% per file{' and package' if args.lang == 'go' else ''}"
    )
    for f in failures:
        print(f"covergate: {f}", file=sys.stderr)
    return 1 if failures else 0


def _applies(name: str, lang: str) -> bool:
    """Whether an allow-list entry is about this language's report (Python entries end in .py)."""
    return name.endswith(".py") == (lang == "py")


if __name__ == "__main__":
    sys.exit(main())
