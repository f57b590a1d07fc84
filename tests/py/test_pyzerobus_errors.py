"""Every exception class, raised by a real failure of the server or of the input."""

from __future__ import annotations

import builtins
import http.server
import io
import pathlib
import pickle
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pytest

import pyzerobus
from conftest import LocalServer, arm_fault, start_server, wrapper_config
from pyzerobus import (
    AuthenticationError,
    ConfigurationError,
    ConversionError,
    RetryExhausted,
    TokenRefreshError,
    TransmissionError,
    ZerobusError,
    ZerobusWrapper,
)


def ids(first: int, n: int) -> pa.Table:
    return pa.table(
        {"id": pa.array(range(first, first + n), pa.int64()), "name": [f"n{i}" for i in range(n)]}
    )


def test_missing_table_is_a_configuration_error(tmp_path: pathlib.Path, transport: dict[str, str]) -> None:
    server = start_server(tmp_path / "data", "--no-auto-create")
    try:
        with (
            ZerobusWrapper(wrapper_config(server, "main.nowhere.events", **transport)) as w,
            pytest.raises(ConfigurationError) as info,
        ):
            w.send_batch(ids(0, 10))
    finally:
        server.stop()
    err = info.value
    assert err.grpc_code == "NotFound" and not err.retryable and err.kind == "configuration"
    assert err.result is not None and err.result.failed_count == 10 and err.result.successful_count == 0
    assert "NotFound" in repr(err)


def test_wrong_secret_is_an_authentication_error(local_server: LocalServer, table_name: str) -> None:
    cfg = wrapper_config(local_server, table_name, client_secret="not-the-secret")
    with ZerobusWrapper(cfg) as w, pytest.raises(AuthenticationError) as info:
        w.send_batch(ids(0, 5))
    assert not info.value.retryable
    assert "not-the-secret" not in str(info.value) and "not-the-secret" not in repr(info.value)
    assert all(not r.may_have_landed for r in info.value.result.failed_rows)  # type: ignore[union-attr]


def test_broken_call_without_recovery_is_a_connection_error(
    local_server: LocalServer, table_name: str, transport: dict[str, str]
) -> None:
    with ZerobusWrapper(wrapper_config(local_server, table_name, recovery_disabled=True, **transport)) as w:
        assert w.send_batch(ids(0, 10)).success
        arm_fault(local_server, kind="fail_call", code="Unavailable")
        with pytest.raises(pyzerobus.ConnectionError) as info:
            w.send_batch(ids(10, 10))
        assert isinstance(info.value, builtins.ConnectionError)  # `except ConnectionError` catches it too
        assert info.value.retryable and info.value.grpc_code == "Unavailable"
        # The wrapper is usable: the next send opens a new stream.
        assert w.send_batch(ids(20, 10)).success


def test_recovery_giving_up_is_retry_exhausted(
    local_server: LocalServer, table_name: str, transport: dict[str, str]
) -> None:
    with ZerobusWrapper(wrapper_config(local_server, table_name, retry_max_attempts=2, **transport)) as w:
        assert w.send_batch(ids(0, 10)).success
        arm_fault(local_server, kind="fail_call", code="Unavailable", times=-1)
        with pytest.raises(RetryExhausted) as info:
            w.send_batch(ids(10, 10))
        assert not info.value.retryable and info.value.result is not None
        assert w.stats()["calls_opened"] >= 3


def test_rejected_data_is_a_transmission_error(tmp_path: pathlib.Path, transport: dict[str, str]) -> None:
    tables = tmp_path / "tables.yaml"
    tables.write_text("main.pytest.declared:\n  - {name: id, type: string}\n  - {name: name, type: string}\n")
    server = start_server(tmp_path / "data", "--tables", str(tables))
    try:
        with (
            ZerobusWrapper(wrapper_config(server, "main.pytest.declared", **transport)) as w,
            pytest.raises(TransmissionError) as info,
        ):
            w.send_batch(ids(0, 3))  # id is int64, the table says STRING
    finally:
        server.stop()
    assert info.value.grpc_code == "InvalidArgument" and "id" in str(info.value)


class _TokenProxy(http.server.ThreadingHTTPServer):
    """Forwards the workspace URL to the server; refuses token requests once told to."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.refuse_tokens = False
        self.token_requests = 0
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _TokenProxy

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._forward()

    def do_GET(self) -> None:
        self._forward()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/oidc/"):
            self.server.token_requests += 1
            if self.server.refuse_tokens:
                self._reply(401, b'{"error":"invalid_client"}', "application/json")
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(
            self.server.upstream + self.path, data=body or None, headers=headers, method=self.command
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                self._reply(resp.status, resp.read(), resp.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as e:
            self._reply(e.code, e.read(), e.headers.get("Content-Type", ""))

    def _reply(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def token_proxy(tmp_path: pathlib.Path) -> Iterator[tuple[LocalServer, _TokenProxy]]:
    server = start_server(tmp_path / "data", "--token-ttl", "2s")
    proxy = _TokenProxy(server.workspace_url)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        server.stop()


def test_failed_renewal_is_a_token_refresh_error(
    token_proxy: tuple[LocalServer, _TokenProxy], transport: dict[str, str]
) -> None:
    server, proxy = token_proxy
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    cfg = wrapper_config(
        server, "main.pytest.tokens", unity_catalog_url=url, retry_max_attempts=2, **transport
    )
    with ZerobusWrapper(cfg) as w:
        assert w.send_batch(ids(0, 10)).success
        assert proxy.token_requests == 1
        # The workspace now refuses the client; the stream breaks after the
        # token is due for renewal, so reconnecting needs a new token.
        proxy.refuse_tokens = True
        import time

        time.sleep(1.5)
        arm_fault(server, kind="end_call")
        with pytest.raises(TokenRefreshError) as info:
            w.send_batch(ids(10, 10))
        assert proxy.token_requests >= 2
        assert not info.value.retryable and info.value.kind == "token_refresh"


# ---------------------------------------------------------------- bad input


def test_unconvertible_rows_raise_conversion_error() -> None:
    cfg = pyzerobus.WrapperConfiguration(table_name="main.offline.t", zerobus_writer_disabled=True)
    with ZerobusWrapper(cfg) as w:
        with pytest.raises(ConversionError) as info:
            w.send_batch(pa.table({"u": pa.array([2**63, 2**64 - 1], pa.uint64())}))
        assert info.value.result is not None and info.value.result.failed_count == 2
        union = pa.UnionArray.from_sparse(
            pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])]
        )
        with pytest.raises(ConversionError, match="union"):
            w.send_batch(pa.table({"u": union}))
        assert w.send_batch(ids(0, 3)).success  # still usable


def test_foreign_objects_raise_conversion_error() -> None:
    cfg = pyzerobus.WrapperConfiguration(table_name="main.offline.t", zerobus_writer_disabled=True)

    class Broken:
        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            raise RuntimeError("producer exploded")

    class NotACapsule:
        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            return 42

    class BadArray:
        def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
            raise ValueError("no array today")

    with ZerobusWrapper(cfg) as w:
        for obj, pattern in [
            (object(), "cannot send a builtins.object"),
            ({"id": [1, 2]}, "cannot send a builtins.dict"),
            ([1, 2, 3], "the iterable yielded a int: expected pyarrow RecordBatches"),
            (Broken(), "producer exploded"),
            (NotACapsule(), "did not return"),
            (BadArray(), "no array today"),
            (pa.array([1, 2]).__arrow_c_array__()[0], "not an Arrow C stream"),
        ]:
            with pytest.raises(ConversionError, match=pattern):
                w.send_batch(obj)
        assert w.send_batch(ids(0, 3)).success


def test_released_stream_raises_conversion_error() -> None:
    cfg = pyzerobus.WrapperConfiguration(table_name="main.offline.t", zerobus_writer_disabled=True)
    capsule = ids(0, 5).__arrow_c_stream__()
    pa.RecordBatchReader._import_from_c_capsule(capsule).read_all()  # another consumer took it
    with ZerobusWrapper(cfg) as w:
        with pytest.raises(ConversionError, match="already released"):
            w.send_batch(capsule)
        fresh = ids(0, 5).__arrow_c_stream__()
        assert w.send_batch(fresh).success
        with pytest.raises(ConversionError, match="already released"):
            w.send_batch(fresh)  # we moved it out ourselves


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as wr:
        wr.write_table(table, max_chunksize=100)
    return sink.getvalue()


def test_corrupted_ipc_raises_conversion_error() -> None:
    cfg = pyzerobus.WrapperConfiguration(table_name="main.offline.t", zerobus_writer_disabled=True)
    good = _ipc(ids(0, 300))
    with ZerobusWrapper(cfg) as w:
        for data in (b"", b"definitely not arrow", good[:16], b"ARROW1\x00\x00" + bytes(100)):
            with pytest.raises(ConversionError):
                w.send_batch(data)
        first = _ipc(ids(0, 100))
        broken = bytearray(good)
        broken[len(first) + 8 : len(good) - 8] = b"\xff" * (len(good) - 16 - len(first))
        with pytest.raises(ConversionError) as info:
            w.send_batch(bytes(broken))
        res = info.value.result
        assert res is not None and res.input_error is info.value
        assert "input_error=ConversionError" in repr(res) and "input error" in res._repr_html_()
        assert res.total_rows == 100 and res.successful_count == 100  # the batch before the damage went
        assert w.send_batch(good).successful_count == 300


def test_exceptions_pickle_and_share_a_root() -> None:
    err = pyzerobus.ConnectionError("boom", retryable=True, grpc_code="Unavailable", op="send")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is pyzerobus.ConnectionError and back.retryable and back.grpc_code == "Unavailable"
    assert str(back) == "boom (gRPC Unavailable)"
    problem = pyzerobus.ConfigProblem("endpoint", "required")
    cfg_err = pickle.loads(pickle.dumps(ConfigurationError("bad", problems=[problem])))
    assert cfg_err.problems == [problem] and str(problem) == "endpoint: required"
    for cls in (
        ConfigurationError,
        AuthenticationError,
        pyzerobus.ConnectionError,
        ConversionError,
        TransmissionError,
        RetryExhausted,
        TokenRefreshError,
    ):
        assert issubclass(cls, ZerobusError)
        assert cls("x").kind == cls.default_kind


def test_unexpected_engine_errors_map_to_the_base_class() -> None:
    from pyzerobus._engine import error_from_native

    assert type(error_from_native(RuntimeError("plain go error"))) is ZerobusError
    garbled = error_from_native(RuntimeError("zerobus-error:{not json"))
    assert type(garbled) is ZerobusError and garbled.kind == "internal"
    unknown = error_from_native(RuntimeError('zerobus-error:{"kind":"martian","message":"?"}'))
    assert type(unknown) is ZerobusError and unknown.kind == "martian"


def test_the_errors_module_imports_nothing_of_the_package_at_run_time() -> None:
    import ast
    import inspect

    import pyzerobus.errors

    tree = ast.parse(inspect.getsource(pyzerobus.errors))
    runtime = [
        node
        for node in tree.body  # module level; the TYPE_CHECKING block is an `if`, not walked
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert runtime
    for node in runtime:
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        assert not (isinstance(node, ast.ImportFrom) and node.level), ast.dump(node)
        assert not any(n.startswith("pyzerobus") for n in names), ast.dump(node)
