"""The outcome of a send: :class:`TransmissionResult`."""

from __future__ import annotations

import bisect
import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union, overload

import pyarrow as pa

from .errors import ZerobusError

__all__ = ["ErrorStats", "FailedRow", "TransmissionResult"]


@dataclass(frozen=True)
class FailedRow:
    """One row that failed.

    Attributes:
        index: the row's number in the data that was sent (0-based, across
            all its batches).
        error: why; rows that failed together share one exception object.
        may_have_landed: True when the row's request reached the network
            before the failure (or was still queued when the wait ended):
            the table may hold it. False means it certainly did not land.

    """

    index: int
    error: ZerobusError
    may_have_landed: bool

    @property
    def kind(self) -> str:
        """The error's kind (``"conversion"``, ``"connection"``...)."""
        return self.error.kind


@dataclass(frozen=True)
class ErrorStats:
    """Counts of the failed rows of a result."""

    failed: int
    by_kind: dict[str, int]
    retryable: int
    may_have_landed: int
    distinct: int


class _Runs:
    """Failed rows stored as runs [start, count, error index, may have landed]."""

    def __init__(self, runs: list[list[int]], errors: list[ZerobusError]) -> None:
        self.runs = runs
        self.errors = errors
        self.starts = [r[0] for r in runs]
        self.ends: list[int] = []  # cumulative row counts: ends[i] = rows in runs[:i+1]
        n = 0
        for r in runs:
            n += r[1]
            self.ends.append(n)


class FailedRows(Sequence[FailedRow]):
    """The failed rows of a result, ascending by index (a lazy sequence)."""

    def __init__(self, runs: _Runs) -> None:
        self._r = runs

    def __len__(self) -> int:
        return self._r.ends[-1] if self._r.ends else 0

    @overload
    def __getitem__(self, i: int) -> FailedRow: ...
    @overload
    def __getitem__(self, i: slice) -> list[FailedRow]: ...
    def __getitem__(self, i: Union[int, slice]) -> Union[FailedRow, list[FailedRow]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("failed row index out of range")
        k = bisect.bisect_right(self._r.ends, i)
        start, _, err, land = self._r.runs[k]
        before = self._r.ends[k - 1] if k else 0
        return FailedRow(start + i - before, self._r.errors[err], bool(land))

    def __iter__(self) -> Iterator[FailedRow]:
        for start, count, err, land in self._r.runs:
            e = self._r.errors[err]
            for j in range(start, start + count):
                yield FailedRow(j, e, bool(land))

    def indices(self) -> list[int]:
        """The failed rows' indexes."""
        out: list[int] = []
        for start, count, _, _ in self._r.runs:
            out.extend(range(start, start + count))
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self) == list(other)

    def __repr__(self) -> str:
        return f"<{len(self)} failed rows>"


class SuccessfulRows(Sequence[int]):
    """The indexes of the acknowledged rows, ascending (a lazy sequence: every row not failed)."""

    def __init__(self, total: int, runs: _Runs) -> None:
        self._total = total
        self._r = runs

    def __len__(self) -> int:
        return self._total - (self._r.ends[-1] if self._r.ends else 0)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> list[int]: ...
    def __getitem__(self, i: Union[int, slice]) -> Union[int, list[int]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("successful row index out of range")
        # The i-th row not inside a failed run: skip the runs that start at
        # or before the candidate, one by one (runs are ascending).
        row = i
        for start, count, _, _ in self._r.runs:
            if start <= row:
                row += count
            else:
                break
        return row

    def __iter__(self) -> Iterator[int]:
        pos = 0
        for start, count, _, _ in self._r.runs:
            yield from range(pos, start)
            pos = start + count
        yield from range(pos, self._total)

    def __contains__(self, row: object) -> bool:
        if not isinstance(row, int) or not 0 <= row < self._total:
            return False
        k = bisect.bisect_right(self._r.starts, row) - 1
        if k < 0:
            return True
        start, count, _, _ = self._r.runs[k]
        return not start <= row < start + count

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self) == list(other)

    def __repr__(self) -> str:
        return f"<{len(self)} successful rows>"


ArrowData = Union[pa.Table, pa.RecordBatch]


@dataclass(frozen=True, eq=False)
class TransmissionResult:
    """The outcome of one send: which rows are durable in the table and which failed.

    Every row is in exactly one of ``successful_rows`` and ``failed_rows``:
    ``total_rows == successful_count + failed_count``. Row indexes count
    from 0 across all the batches of the data sent.

    Attributes:
        success: every row was acknowledged (with the writer disabled:
            converted).
        error: the failure of the first failed row (None on success).
        attempts: how many stream calls the rows were written on at most
            (1 without reconnection; 0 when nothing reached the network).
        latency_ms: from the call to the last row's resolution.
        batch_size_bytes: size of the encoded records.
        total_rows, successful_count, failed_count: row counts.
        failed_rows: the failed rows (:class:`FailedRow`), ascending.
        successful_rows: indexes of the acknowledged rows, ascending.
        offset: the offset of an async send (None for send_batch).
        batches: how many batches the rows were sent in.
        cancelled: the send was cancelled (Ctrl-C, task cancellation,
            timeout) before it completed.
        input_error: reading the input failed part way (corrupted IPC, a
            failing producer); the rows read before are accounted for.

    """

    success: bool
    total_rows: int
    successful_count: int
    failed_count: int
    attempts: int
    latency_ms: float
    batch_size_bytes: int
    error: Optional[ZerobusError] = None
    failed_rows: FailedRows = field(default_factory=lambda: FailedRows(_Runs([], [])), repr=False)
    successful_rows: SuccessfulRows = field(
        default_factory=lambda: SuccessfulRows(0, _Runs([], [])), repr=False
    )
    offset: Optional[int] = None
    batches: int = 0
    cancelled: bool = False
    input_error: Optional[ZerobusError] = None

    # ------------------------------------------------------------ helpers

    def is_partial_success(self) -> bool:
        """Whether some rows succeeded and some failed."""
        return self.successful_count > 0 and self.failed_count > 0

    def failed_indices(self) -> list[int]:
        """The indexes of the failed rows, ascending."""
        return self.failed_rows.indices()

    def successful_indices(self) -> list[int]:
        """The indexes of the acknowledged rows, ascending."""
        return list(self.successful_rows)

    def errors_by_kind(self) -> dict[str, list[FailedRow]]:
        """The failed rows grouped by error kind."""
        out: dict[str, list[FailedRow]] = {}
        for row in self.failed_rows:
            out.setdefault(row.kind, []).append(row)
        return out

    def error_stats(self) -> ErrorStats:
        """Count the failed rows by kind, retryability and whether they may have landed."""
        by_kind: dict[str, int] = {}
        retryable = landed = 0
        seen: set[int] = set()
        for _, count, err, land in self.failed_rows._r.runs:
            e = self.failed_rows._r.errors[err]
            by_kind[e.kind] = by_kind.get(e.kind, 0) + count
            if e.retryable:
                retryable += count
            if land:
                landed += count
            seen.add(err)
        return ErrorStats(self.failed_count, by_kind, retryable, landed, len(seen))

    def extract_failed_batch(self, data: Any) -> ArrowData:
        """The failed rows of ``data`` (what was sent), to inspect or send again.

        ``data`` is the data this result is for: a pyarrow Table or
        RecordBatch (the same type is returned), or anything
        :func:`pyarrow.table` accepts (a pandas or polars DataFrame, an
        object with ``__arrow_c_stream__``), returned as a Table.
        """
        return _take(data, self.failed_indices(), self.total_rows)

    def extract_successful_batch(self, data: Any) -> ArrowData:
        """The acknowledged rows of ``data`` (see :meth:`extract_failed_batch`)."""
        return _take(data, self.successful_indices(), self.total_rows)

    # ------------------------------------------------------------ display

    def __repr__(self) -> str:
        """Return a one-line summary."""
        parts = [
            f"success={self.success}",
            f"total_rows={self.total_rows}",
            f"successful={self.successful_count}",
            f"failed={self.failed_count}",
            f"attempts={self.attempts}",
            f"latency_ms={self.latency_ms:.1f}",
            f"batch_size_bytes={self.batch_size_bytes}",
        ]
        if self.offset is not None:
            parts.append(f"offset={self.offset}")
        if self.cancelled:
            parts.append("cancelled=True")
        if self.error is not None:
            parts.append(f"error={self.error!r}")
        if self.input_error is not None:
            parts.append(f"input_error={self.input_error!r}")
        return f"TransmissionResult({', '.join(parts)})"

    def _repr_html_(self) -> str:
        """Return an HTML table for notebooks: counts, then the errors by kind."""
        status = (
            "✅ success"
            if self.success
            else ("⚠️ partial success" if self.is_partial_success() else "❌ failed")
        )
        rows = [
            ("status", status),
            (
                "rows",
                f"{self.total_rows:,} ({self.successful_count:,} acknowledged, {self.failed_count:,} failed)",
            ),
            ("batches", f"{self.batches:,}"),
            ("attempts", str(self.attempts)),
            ("latency", f"{self.latency_ms:,.1f} ms"),
            ("encoded size", f"{self.batch_size_bytes:,} bytes"),
        ]
        if self.offset is not None:
            rows.append(("offset", str(self.offset)))
        if self.cancelled:
            rows.append(("cancelled", "yes"))
        if self.input_error is not None:
            rows.append(("input error", str(self.input_error)))
        left = "style='text-align:left'"
        body = "".join(
            f"<tr><th {left}>{html.escape(k)}</th><td {left}>{html.escape(v)}</td></tr>" for k, v in rows
        )
        out = f"<table><caption style='text-align:left'><b>TransmissionResult</b></caption>{body}</table>"
        if self.failed_count:
            st = self.error_stats()
            first: dict[str, str] = {}
            for start, _, err, _ in self.failed_rows._r.runs:
                e = self.failed_rows._r.errors[err]
                first.setdefault(e.kind, f"row {start}: {e}")
            erows = "".join(
                f"<tr><td>{html.escape(kind)}</td><td>{n:,}</td><td style='text-align:left'>"
                f"{html.escape(first[kind][:300])}</td></tr>"
                for kind, n in sorted(st.by_kind.items())
            )
            out += (
                "<table><tr><th>error kind</th><th>rows</th><th style='text-align:left'>first error</th></tr>"
                f"{erows}</table>"
            )
        return out


def _take(data: Any, indices: list[int], total: int) -> ArrowData:
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        table = data
    elif isinstance(data, pa.RecordBatchReader):
        raise TypeError(
            "a RecordBatchReader was consumed by the send: pass the data itself (a Table or batch)"
        )
    else:
        table = pa.table(data)
    if table.num_rows != total:
        raise ValueError(f"the data has {table.num_rows} rows, the result is for {total}")
    return table.take(pa.array(indices, type=pa.int64()))
