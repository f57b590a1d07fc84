"""Debug files: written by the engine, read back with pyzerobus.debug and DuckDB.

The queries are the README's.
"""

from __future__ import annotations

import pathlib

import duckdb
import pyarrow as pa
import pytest

import pyzerobus
from pyzerobus.debug import read_arrow, read_protobuf

TABLE = "main.app.events"


def events(start: int, n: int) -> pa.Table:
    """Rows with a nested struct, a list and a map; every 10th row has a
    uint64 id that does not fit BIGINT, so it fails conversion."""
    ids = [i if i % 10 else 2**64 - 1 - i for i in range(start, start + n)]
    return pa.table(
        {
            "id": pa.array(ids, pa.uint64()),
            "kind": [("view", "click", "buy")[i % 3] for i in range(start, start + n)],
            "addr": pa.array(
                [None if i % 4 == 0 else {"city": ("Oslo", "Lima")[i % 2]} for i in range(start, start + n)],
                pa.struct([("city", pa.string())]),
            ),
            "tags": [[f"t{i % 2}"] * (i % 3) for i in range(start, start + n)],
            "attrs": pa.array(
                [[("b", i)] for i in range(start, start + n)], pa.map_(pa.string(), pa.int64())
            ),
        }
    )


def debug_config(out: pathlib.Path, **extra: object) -> pyzerobus.WrapperConfiguration:
    """Writer disabled: no server, no credentials; convert and write debug files."""
    return pyzerobus.WrapperConfiguration(
        table_name=TABLE,
        zerobus_writer_disabled=True,
        debug_enabled=True,
        debug_output_dir=str(out),
        **extra,  # type: ignore[arg-type]
    )


def test_writer_disabled_debug_files_read_back_with_duckdb(tmp_path: pathlib.Path) -> None:
    sent = pa.concat_tables([events(0, 300), events(300, 300)])
    with pyzerobus.ZerobusWrapper(debug_config(tmp_path)) as w:
        first = w.send_batch(events(0, 300))
        second = w.send_batch(events(300, 300))
    assert first.failed_count == second.failed_count == 30
    assert first.successful_count == second.successful_count == 270

    batches = read_arrow(str(tmp_path), TABLE)  # what went in
    records = read_protobuf(str(tmp_path), TABLE)  # what came out
    assert batches.num_rows == 600
    assert batches.column("id").to_pylist() == sent.column("id").to_pylist()
    assert records.num_rows == 540

    kinds = duckdb.sql("SELECT kind, count(*) AS n FROM batches GROUP BY kind ORDER BY kind").fetchall()
    assert kinds == [("buy", 200), ("click", 200), ("view", 200)]
    # Rows that did not become a record (they failed to convert):
    failed = duckdb.sql("SELECT id, tags FROM batches ANTI JOIN records USING (id) ORDER BY id").fetchall()
    assert [row[0] for row in failed] == sorted(2**64 - 1 - i for i in range(0, 600, 10))
    # Nested fields and maps decode to structs and maps:
    cities = duckdb.sql(
        "SELECT addr.city AS city, count(*) AS n, sum(attrs['b']) AS b "
        "FROM records WHERE addr IS NOT NULL GROUP BY city ORDER BY city"
    ).fetchall()
    good = [i for i in range(600) if i % 10 and i % 4]
    assert cities == [
        ("Lima", sum(1 for i in good if i % 2), sum(i for i in good if i % 2)),
        ("Oslo", sum(1 for i in good if not i % 2), sum(i for i in good if not i % 2)),
    ]


def test_debug_files_rotate_and_keep_the_newest(tmp_path: pathlib.Path) -> None:
    cfg = debug_config(tmp_path, debug_max_file_size=20_000, debug_max_files_retained=2)
    with pyzerobus.ZerobusWrapper(cfg) as w:
        for k in range(10):
            w.send_batch(events(k * 200, 200))
    arrow_files = sorted((tmp_path / "zerobus" / "arrow").iterdir())
    proto_files = sorted((tmp_path / "zerobus" / "proto").iterdir())
    # The active file plus the two newest rotated ones.
    assert len(arrow_files) == 3, arrow_files
    assert len(proto_files) == 3, proto_files
    assert all(len(p.name) <= 255 for p in arrow_files + proto_files)
    # What is kept reads back whole, ending with the last batch sent.
    tail = read_arrow(str(tmp_path), TABLE).column("id").to_pylist()
    assert tail[-1] == 1999 and len(tail) % 200 == 0


def test_debug_needs_an_output_dir() -> None:
    cfg = pyzerobus.WrapperConfiguration(table_name=TABLE, zerobus_writer_disabled=True, debug_enabled=True)
    with pytest.raises(pyzerobus.ConfigurationError, match="debug_output_dir"):
        cfg.validate()
