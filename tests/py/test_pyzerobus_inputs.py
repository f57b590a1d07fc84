"""The inputs users hand over and what they meet on import and in their logs."""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import pyzerobus
from conftest import LocalServer, arm_fault, read_delta, wrapper_config
from pyzerobus import AsyncZerobusWrapper, ConversionError, WrapperConfiguration, ZerobusWrapper


def ids_table(first: int, n: int) -> pa.Table:
    ids = pa.array(range(first, first + n), pa.int64())
    return pa.table({"id": ids, "note": [f"n{i}" for i in range(n)]})


def test_every_new_input_kind_lands_in_the_table(
    local_server: LocalServer, table_name: str, tmp_path: pathlib.Path
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    pq.write_table(ids_table(0, 300), files / "a.parquet", row_group_size=100)
    with pa.OSFile(str(files / "b.arrow"), "wb") as f, pa.ipc.new_file(f, ids_table(300, 100).schema) as w:
        w.write_table(ids_table(300, 100))
    with pa.OSFile(str(files / "c.arrows"), "wb") as f, pa.ipc.new_stream(f, ids_table(400, 100).schema) as w:
        w.write_table(ids_table(400, 100), max_chunksize=30)
    (files / "_SUCCESS").write_text("")  # marker files are not data
    parquet_dir = tmp_path / "dataset"
    parquet_dir.mkdir()
    pq.write_table(ids_table(1500, 100), parquet_dir / "part-0.parquet")

    cfg = wrapper_config(local_server, table_name)
    sent = {}
    with ZerobusWrapper(cfg) as w:
        sent["directory"] = w.send_batch(files).successful_count  # Parquet, IPC file, IPC stream
        sent["paths"] = w.send_batch([str(files / "b.arrow"), files / "a.parquet"]).successful_count
        sent["path"] = w.send_batch(str(files / "c.arrows")).successful_count
        gen = (b for b in ids_table(500, 200).to_batches(max_chunksize=50))
        sent["generator"] = w.send_batch(gen).successful_count
        sent["list"] = w.send_batch([ids_table(700, 100), *ids_table(800, 100).to_batches()]).successful_count
        pf = pq.ParquetFile(files / "a.parquet")
        sent["iter_batches"] = w.send_batch(pf.iter_batches(batch_size=64)).successful_count
        sent["dataset"] = w.send_batch(ds.dataset(parquet_dir)).successful_count
        scanner = ds.dataset(parquet_dir).scanner(filter=ds.field("id") < 1550)
        sent["scanner"] = w.send_batch(scanner).successful_count
        lazy = pl.LazyFrame(ids_table(900, 600)).filter(pl.col("id") % 2 == 0)
        sent["lazyframe"] = w.send_batch(lazy).successful_count
    assert sent == {
        "directory": 500,
        "paths": 400,
        "path": 100,
        "generator": 200,
        "list": 200,
        "iter_batches": 300,
        "dataset": 100,
        "scanner": 50,
        "lazyframe": 300,
    }
    ids = read_delta(local_server, table_name).column("id").to_pylist()
    assert len(ids) == sum(sent.values())
    assert sorted(set(ids)) == sorted(set(range(0, 900)) | set(range(900, 1500, 2)) | set(range(1500, 1600)))


def test_bad_inputs_are_conversion_errors_naming_the_cause(tmp_path: pathlib.Path) -> None:
    (tmp_path / "x.csv").write_text("id\n1\n")
    pq.write_table(pa.table({"other": [1]}), tmp_path / "b.parquet")
    pq.write_table(ids_table(0, 3), tmp_path / "a.parquet")
    with ZerobusWrapper(
        endpoint="http://127.0.0.1:1",
        unity_catalog_url="http://127.0.0.1:1",
        client_id="id",
        client_secret="s",
        table_name="main.pytest.inputs",
        zerobus_writer_disabled=True,
    ) as w:
        with pytest.raises(ConversionError, match=r"x\.csv: not a Parquet or Arrow IPC file"):
            w.send_batch(tmp_path / "x.csv")
        with pytest.raises(ConversionError, match="no such file"):
            w.send_batch(tmp_path / "missing.parquet")
        with pytest.raises(ConversionError, match="yielded no RecordBatch"):
            w.send_batch(iter([]))
        with pytest.raises(ConversionError, match="yielded a int"):
            w.send_batch(iter([1, 2]))
        with pytest.raises(ConversionError, match=r"b\.parquet has another schema than .*a\.parquet") as info:
            w.send_batch([tmp_path / "a.parquet", tmp_path / "b.parquet"])
        assert "Traceback" not in str(info.value)
        assert info.value.result is not None and info.value.result.successful_count == 3  # a.parquet's rows


def test_pandas_named_index_is_a_column_and_unnamed_ones_are_left_out(
    local_server: LocalServer, table_name: str
) -> None:
    named = pd.DataFrame({"note": ["a", "b"]}, index=pd.Index([10, 11], name="id"))
    # An index level becomes the last column; order matters to the table.
    unnamed = pd.DataFrame({"note": ["c", "d"], "id": [12, 13]}, index=pd.Index([7, 9]))  # not a RangeIndex
    with ZerobusWrapper(wrapper_config(local_server, table_name)) as w:
        assert w.send_batch(named).successful_count == 2
        assert w.send_batch(unnamed).successful_count == 2
    table = read_delta(local_server, table_name)
    assert sorted(table.column_names) == ["id", "note"]
    assert sorted(zip(table.column("id").to_pylist(), table.column("note").to_pylist())) == [
        (10, "a"),
        (11, "b"),
        (12, "c"),
        (13, "d"),
    ]


@pytest.mark.skipif(
    sys.version_info < (3, 10),
    reason="the check reads sys.stdlib_module_names (3.10+)",
)
def test_import_needs_no_pandas_and_public_modules_need_only_declared_dependencies() -> None:
    # Every third-party import outside the declared dependencies (and theirs)
    # is refused, as in a clean virtualenv with only `pip install pyzerobus`.
    script = textwrap.dedent(
        """
        import importlib, importlib.metadata as md, re, sys, sysconfig

        def closure(dist, seen):
            if dist in seen:
                return
            seen.add(dist)
            for req in md.requires(dist) or []:
                if "extra ==" in req:
                    continue
                closure(re.split(r"[ ;<>=!~\\[(]", req, maxsplit=1)[0].lower().replace("_", "-"), seen)

        allowed_dists = set()
        closure("pyzerobus", allowed_dists)
        # The top-level names of those distributions, from their files (Python
        # 3.10's packages_distributions reads only top_level.txt, which
        # pyarrow's wheels do not have).
        allowed = {"pyzerobus"}
        for dist in md.distributions():
            if (dist.metadata["Name"] or "").lower().replace("_", "-") not in allowed_dists:
                continue
            allowed.update((dist.read_text("top_level.txt") or "").split())
            for f in dist.files or []:
                top = f.parts[0]
                if top != ".." and not top.endswith((".dist-info", ".data")):
                    allowed.add(top[:-3] if top.endswith(".py") else top)

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in allowed or top in sys.stdlib_module_names or top in sys.builtin_module_names:
                    return None
                if name in sys.modules:
                    return None
                raise ImportError(f"{name} is not a declared dependency")

        sys.meta_path.insert(0, Refuse())
        import pyzerobus
        assert "pandas" not in sys.modules, "import pyzerobus imported pandas"
        for mod in ("debug", "aio", "result", "config", "errors"):
            importlib.import_module("pyzerobus." + mod)
        print(sorted(m for m in ("pandas", "polars", "tqdm", "deltalake") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_engine_records_reach_logging_with_their_attributes(
    local_server: LocalServer, table_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("pyzerobus").handlers)
    cfg: WrapperConfiguration = wrapper_config(local_server, table_name)

    async def main() -> None:
        async with AsyncZerobusWrapper(cfg) as w:
            await w.send_batch(ids_table(0, 10))
            arm_fault(local_server, kind="fail_call", code="Unavailable")  # one recovery: a warning
            res = await w.send_batch(ids_table(10, 10))
            assert res.success

    with caplog.at_level(logging.DEBUG, logger="pyzerobus.engine"):
        asyncio.run(main())
    engine = [r for r in caplog.records if r.name == "pyzerobus.engine"]
    assert engine, "no engine record reached logging on the async path"
    # The recovery's record, its attributes on the record itself.
    reconnect = [r for r in engine if "reconnecting" in r.getMessage()]
    assert reconnect, [r.getMessage() for r in engine]
    rec = reconnect[0]
    assert getattr(rec, "table", None) == table_name
    assert getattr(rec, "attempt", None) == 1
    assert "Unavailable" in str(getattr(rec, "err", ""))


def test_an_explicit_descriptor_and_the_application_name(local_server: LocalServer, table_name: str) -> None:
    from google.protobuf import descriptor_pb2

    def descriptor(id_type: int) -> descriptor_pb2.DescriptorProto:
        d = descriptor_pb2.DescriptorProto(name="Event")
        d.field.add(
            name="id", number=1, type=id_type, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
        )
        d.field.add(
            name="note",
            number=2,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
        return d

    good = descriptor(descriptor_pb2.FieldDescriptorProto.TYPE_INT64)
    bad = descriptor(descriptor_pb2.FieldDescriptorProto.TYPE_STRING)  # an int64 column cannot be a string
    cfg = wrapper_config(local_server, table_name, application_name="billing-etl/2.1")
    with ZerobusWrapper(cfg) as w:
        assert w.send_batch(ids_table(0, 5), descriptor=good).successful_count == 5
        assert w.send_batch(ids_table(5, 5), descriptor=good.SerializeToString()).successful_count == 5
        with pytest.raises(ConversionError):
            w.send_batch(ids_table(10, 5), descriptor=bad)
        assert w.send_batch_nowait(ids_table(15, 5), descriptor=good).result().successful_count == 5

    async def from_asyncio() -> int:
        async with AsyncZerobusWrapper(cfg) as aw:
            return (await aw.send_batch(ids_table(20, 5), descriptor=good)).successful_count

    assert asyncio.run(from_asyncio()) == 5
    import urllib.request

    with urllib.request.urlopen(local_server.workspace_url + "/stats", timeout=10) as resp:
        agents = {s["user_agent"] for s in json.loads(resp.read())["streams"]}
    assert any(a.startswith("pyzerobus/") and "billing-etl/2.1" in a for a in agents), agents
    assert sorted(read_delta(local_server, table_name).column("id").to_pylist()) == list(range(10)) + list(
        range(15, 25)
    )


def read_back(data: object) -> pa.Table:
    """What the engine would read from a source, read here by pyarrow (in this thread)."""
    from pyzerobus._input import to_source

    src = to_source(data)
    return pa.RecordBatchReader._import_from_c_capsule(src.capsule).read_all()


def test_sources_yield_the_rows_in_order(tmp_path: pathlib.Path) -> None:
    pq.write_table(ids_table(0, 30), tmp_path / "a.parquet", row_group_size=10)
    with pa.OSFile(str(tmp_path / "b.arrow"), "wb") as f, pa.ipc.new_file(f, ids_table(30, 10).schema) as w:
        w.write_table(ids_table(30, 10))
    with (
        pa.OSFile(str(tmp_path / "c.arrows"), "wb") as f,
        pa.ipc.new_stream(f, ids_table(40, 10).schema) as w,
    ):
        w.write_table(ids_table(40, 10))
    assert read_back(tmp_path).column("id").to_pylist() == list(range(50))
    gen = iter([ids_table(0, 3), *ids_table(3, 2).to_batches()])
    assert read_back(gen).column("id").to_pylist() == list(range(5))
    lazy = pl.LazyFrame(ids_table(0, 10)).filter(pl.col("id") > 4)
    assert read_back(lazy).column("id").to_pylist() == [5, 6, 7, 8, 9]
    assert read_back(ds.dataset(tmp_path / "a.parquet")).num_rows == 30
    reader = pa.RecordBatchReader.from_batches(ids_table(0, 1).schema, ids_table(0, 4).to_batches())
    assert read_back(reader).num_rows == 4


def test_sources_fail_naming_the_cause(tmp_path: pathlib.Path) -> None:
    pq.write_table(ids_table(0, 3), tmp_path / "a.parquet")
    pq.write_table(pa.table({"other": [1]}), tmp_path / "b.parquet")
    # Raised while the stream is read: the reader (pyarrow here, the engine
    # in a send) gets the error with its message.
    with pytest.raises(pa.ArrowException, match="another schema"):
        read_back([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    with pytest.raises(pa.ArrowException, match="yielded a str"):
        read_back(iter([ids_table(0, 1).to_batches()[0], "x"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="no files"):
        read_back(tmp_path / "empty")
    offs = np.array([0, 5, 10], dtype=np.int32)
    arr = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(offs), pa.py_buffer(b"helloworld")])
    batch = pa.record_batch({"s": arr})
    offs[2] = 50
    reader = pa.RecordBatchReader.from_batches(batch.schema, [batch])
    with pytest.raises(pa.ArrowException, match="batch 0 of the RecordBatchReader"):
        read_back(reader)


def test_python_dash_m_pyzerobus(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    monkeypatch.setattr(sys, "argv", ["pyzerobus", "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("pyzerobus", run_name="__main__")
    assert info.value.code == 0
    assert "send" in capsys.readouterr().out


def fetch_token(server: LocalServer, table: str) -> str:
    """A token for one table from the server's OAuth endpoint, as an enterprise token service would give."""
    import base64
    import urllib.parse
    import urllib.request

    catalog, schema, _ = table.split(".")
    details = [
        {
            "type": "unity_catalog_privileges",
            "privileges": ["USE CATALOG"],
            "object_type": "CATALOG",
            "object_full_path": catalog,
        },
        {
            "type": "unity_catalog_privileges",
            "privileges": ["USE SCHEMA"],
            "object_type": "SCHEMA",
            "object_full_path": f"{catalog}.{schema}",
        },
        {
            "type": "unity_catalog_privileges",
            "privileges": ["SELECT", "MODIFY"],
            "object_type": "TABLE",
            "object_full_path": table,
        },
    ]
    body = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "scope": "all-apis",
            "authorization_details": json.dumps(details),
        }
    ).encode()
    basic = base64.b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
    req = urllib.request.Request(
        server.workspace_url + "/oidc/v1/token", data=body, headers={"Authorization": "Basic " + basic}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.loads(resp.read())["access_token"])


def test_a_headers_provider_replaces_oauth(local_server: LocalServer, table_name: str) -> None:
    calls = []

    def provider() -> dict[str, str]:
        calls.append(1)
        return {"authorization": "Bearer " + fetch_token(local_server, table_name)}

    # No client id, secret or workspace URL: the provider's headers authenticate.
    cfg = WrapperConfiguration(endpoint=local_server.endpoint, table_name=table_name)
    with pytest.raises(pyzerobus.ConfigurationError, match="client_id"):
        ZerobusWrapper(cfg)
    with ZerobusWrapper(cfg, headers_provider=provider) as w:
        assert w.send_batch(ids_table(0, 10)).successful_count == 10
        assert w.send_batch(ids_table(10, 10)).successful_count == 10

    async def from_asyncio() -> int:
        async with AsyncZerobusWrapper(cfg, headers_provider=provider) as aw:
            return (await aw.send_batch(ids_table(20, 5))).successful_count

    assert asyncio.run(from_asyncio()) == 5
    assert len(calls) == 2  # once per stream opened, not per send

    def broken() -> dict[str, str]:
        raise RuntimeError("vault unreachable")

    with ZerobusWrapper(cfg, headers_provider=broken) as w:
        with pytest.raises(pyzerobus.ZerobusError, match="vault unreachable") as info:
            w.send_batch(ids_table(100, 3))
        assert info.value.result is not None and info.value.result.failed_count == 3
    assert sorted(read_delta(local_server, table_name).column("id").to_pylist()) == list(range(25))
