"""Check pyzerobus/debug.py and the README's DuckDB queries against files the Go tests wrote.

Usage: check_readers.py <path of debug.py> <output dir> <table> <expected.json>

debug.py is loaded by its path, so the compiled engine (which the pyzerobus
package imports) is not needed. Prints the file stem; exits non-zero with a
message on the first mismatch.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import duckdb
import pyarrow as pa


def load(path: str) -> Any:
    """Import debug.py from its path."""
    spec = importlib.util.spec_from_file_location("pyzerobus_debug", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(what: str, got: Any, want: Any) -> None:
    """Exit with the first difference between got and want."""
    if got != want:
        for i, (g, w) in enumerate(zip(got, want) if isinstance(got, list) else []):
            if g != w:
                sys.exit(f"{what}: first difference at {i}: got {g!r}, want {w!r}")
        sys.exit(f"{what}: got {got!r}, want {want!r}")


def normalize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Maps come back as lists of tuples; JSON has lists of lists."""
    for r in rows:
        if r.get("attrs") is not None:
            r["attrs"] = [list(kv) for kv in r["attrs"]]
    return rows


def main() -> None:
    """Run the readers and the README's queries, and compare."""
    debug_py, directory, table, expected_path = sys.argv[1:5]
    with open(expected_path) as f:
        expected = json.load(f)
    debug = load(debug_py)
    print(debug.file_base(table))

    # --- the README's example, as it is there ---
    batches = debug.read_arrow(directory, table)  # what went in
    records = debug.read_protobuf(directory, table)  # what came out

    kinds = duckdb.sql("SELECT kind, count(*) AS n FROM batches GROUP BY kind ORDER BY kind").fetchall()
    # Rows that did not become a record (they failed to convert):
    failed = duckdb.sql("SELECT id, tags FROM batches ANTI JOIN records USING (id) ORDER BY id").fetchall()
    # Nested fields and maps decode to structs and maps:
    cities = duckdb.sql(
        "SELECT addr.city AS city, count(*) AS n, sum(attrs['b']) AS b "
        "FROM records WHERE addr IS NOT NULL GROUP BY city ORDER BY city"
    ).fetchall()
    # --- end of the README's example ---

    check("Arrow rows", normalize(batches.to_pylist()), expected["rows"])
    want_records = [r for r in expected["rows"] if r["id"] in set(expected["record_ids"])]
    check("protobuf rows", normalize(records.to_pylist()), want_records)
    for name, typ in {
        "id": pa.int64(),
        "tags": pa.list_(pa.string()),
        "attrs": pa.map_(pa.string(), pa.int64()),
        "extra": pa.string(),
    }.items():
        check(f"protobuf column {name}", records.schema.field(name).type, typ)
    check("protobuf addr", pa.types.is_struct(records.schema.field("addr").type), True)

    check("kinds", [list(k) for k in kinds], expected["kinds"])
    check("failed rows", [[i, t] for i, t in failed], expected["failed"])
    check("cities", [list(c) for c in cities], expected["cities"])
    print(f"ok: {batches.num_rows} rows, {records.num_rows} records, {len(failed)} failed")


if __name__ == "__main__":
    main()
