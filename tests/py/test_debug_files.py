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


def test_debug_files_retained_zero_keeps_them_all(tmp_path: pathlib.Path) -> None:
    cfg = debug_config(tmp_path, debug_max_file_size=20_000, debug_max_files_retained=0)
    with pyzerobus.ZerobusWrapper(cfg) as w:
        for k in range(10):
            w.send_batch(events(k * 200, 200))
    arrow_files = sorted((tmp_path / "zerobus" / "arrow").iterdir())
    assert len(arrow_files) > 3, arrow_files  # 10 was the limit once 0 meant "the default"
    ids = read_arrow(str(tmp_path), TABLE).column("id").to_pylist()
    assert len(ids) == 2000 and ids[1:10] == list(range(1, 10)) and ids[-1] == 1999  # nothing removed
    yaml_file = tmp_path / "zerobus.yaml"
    yaml_file.write_text("debug_max_files_retained: 0\n")
    assert pyzerobus.WrapperConfiguration.from_yaml(yaml_file, env=False).debug_max_files_retained == 0


def test_debug_needs_an_output_dir() -> None:
    cfg = pyzerobus.WrapperConfiguration(table_name=TABLE, zerobus_writer_disabled=True, debug_enabled=True)
    with pytest.raises(pyzerobus.ConfigurationError, match="debug_output_dir"):
        cfg.validate()


def test_schema_change_rotates_and_reads_back_promoted(tmp_path: pathlib.Path) -> None:
    with pyzerobus.ZerobusWrapper(debug_config(tmp_path)) as w:
        w.send_batch(pa.table({"id": pa.array([1, 2], pa.int64())}))
        w.send_batch(pa.table({"id": pa.array([3], pa.int64()), "note": ["late"]}))
    batches = read_arrow(str(tmp_path), TABLE)
    assert batches.to_pylist() == [
        {"id": 1, "note": None},
        {"id": 2, "note": None},
        {"id": 3, "note": "late"},
    ]
    # Records written before the change still decode with their own descriptor.
    records = read_protobuf(str(tmp_path), TABLE)
    assert sorted(records.column("id").to_pylist()) == [1, 2, 3]
    assert records.column("note").to_pylist().count("late") == 1


def test_incompatible_schemas_raise_naming_the_files(tmp_path: pathlib.Path) -> None:
    with pyzerobus.ZerobusWrapper(debug_config(tmp_path, debug_protobuf_enabled=False)) as w:
        w.send_batch(pa.table({"id": pa.array([1], pa.int64())}))
        w.send_batch(pa.table({"id": pa.array([b"x"], pa.binary())}))
    with pytest.raises(ValueError, match="incompatible schemas"):
        read_arrow(str(tmp_path), TABLE)


def test_table_names_that_need_hashing_match_the_engine(tmp_path: pathlib.Path) -> None:
    from pyzerobus.debug import file_base

    name = "main.app.events_" + "x" * 230
    cfg = pyzerobus.WrapperConfiguration(
        table_name=name,
        zerobus_writer_disabled=True,
        debug_arrow_enabled=True,
        debug_output_dir=str(tmp_path),
    )
    with pyzerobus.ZerobusWrapper(cfg) as w:
        w.send_batch(pa.table({"id": pa.array([7], pa.int64())}))
    (written,) = (tmp_path / "zerobus" / "arrow").iterdir()
    assert written.name == file_base(name) + ".arrows"
    assert len(written.name) <= 255
    assert read_arrow(str(tmp_path), name).column("id").to_pylist() == [7]
    with pytest.raises(ValueError, match="empty"):
        file_base("")


def test_missing_and_damaged_files_are_clear_errors(tmp_path: pathlib.Path) -> None:
    from pyzerobus.debug import iter_records

    with pytest.raises(FileNotFoundError, match="no Arrow debug file"):
        read_arrow(str(tmp_path), TABLE)
    with pyzerobus.ZerobusWrapper(debug_config(tmp_path)) as w:
        w.send_batch(events(0, 20))
    arrow_file = tmp_path / "zerobus" / "arrow" / f"{TABLE}.arrows"
    arrow_file.write_bytes(arrow_file.read_bytes()[:100])  # cut inside the first batch
    with pytest.raises(ValueError, match="not a readable Arrow IPC stream"):
        read_arrow(str(tmp_path), TABLE)
    # Length prefixes: a truncated record and an endless varint are named by offset.
    assert list(iter_records(b"\x02ab\x01c")) == [b"ab", b"c"]
    with pytest.raises(ValueError, match="record at offset 3 is 5 bytes long"):
        list(iter_records(b"\x02ab\x05c"))
    with pytest.raises(ValueError, match="bad record length at offset 0"):
        list(iter_records(b"\xff" * 11))
