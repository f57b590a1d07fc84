"""Progress display of long sends: tqdm when installed, a plain line otherwise."""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any, Optional, Protocol

__all__ = ["Progress", "make_progress"]


class Progress(Protocol):
    """Shows how many rows of a send are resolved."""

    def update_to(self, rows: int) -> None:
        """Show that `rows` rows are resolved."""

    def close(self) -> None:
        """Finish the display."""


class _Null:
    def update_to(self, rows: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Tqdm:
    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def update_to(self, rows: int) -> None:
        if rows > self._bar.n:
            self._bar.update(rows - self._bar.n)

    def close(self) -> None:
        self._bar.close()


class _Line:
    """A carriage-return line on stderr, at most 4 updates a second."""

    def __init__(self, total: Optional[int], desc: str) -> None:
        self._total = total
        self._desc = desc
        self._start = time.monotonic()
        self._last = 0.0
        self._rows = 0

    def _show(self, end: str = "") -> None:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        of = f"/{self._total:,}" if self._total is not None else ""
        sys.stderr.write(f"\r{self._desc}: {self._rows:,}{of} rows ({self._rows / elapsed:,.0f} rows/s){end}")
        sys.stderr.flush()

    def update_to(self, rows: int) -> None:
        self._rows = rows
        now = time.monotonic()
        if now - self._last >= 0.25:
            self._last = now
            self._show()

    def close(self) -> None:
        self._show("\n")


def make_progress(enabled: bool, total: Optional[int], desc: str = "pyzerobus") -> Progress:
    """A progress display, or one that shows nothing when not enabled."""
    if not enabled:
        return _Null()
    try:
        with warnings.catch_warnings():  # tqdm warns when a notebook lacks ipywidgets, then works
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
    except ImportError:
        return _Line(total, desc)
    return _Tqdm(tqdm(total=total, unit="rows", unit_scale=True, desc=desc))
