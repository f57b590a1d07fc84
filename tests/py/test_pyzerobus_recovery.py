"""Recovery on both transports: faults mid-stream, every row read back from the Delta table."""

from __future__ import annotations

import pyarrow as pa
import pytest

from conftest import LocalServer, arm_fault, assert_transport, read_delta, wrapper_config
from pyzerobus import ZerobusWrapper


def ids(first: int, n: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(first, first + n), pa.int64()),
            "payload": [f"{i:08d}" + "p" * 60 for i in range(first, first + n)],
        }
    )


FAULTS = {
    "connection dropped": {"kind": "drop_connection", "after_records": 1500, "times": 2},
    "call fails": {"kind": "fail_call", "code": "Unavailable", "after_records": 1500, "times": 2},
    "acks lost": {"kind": "stop_acks", "after_records": 1500},
    "server ends the call": {"kind": "end_call", "after_records": 1500, "times": 2},
    "tokens expire": {"kind": "expire_tokens", "after_records": 500},
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_faults_mid_stream_lose_no_row(
    local_server: LocalServer, table_name: str, transport: dict[str, str], fault: str
) -> None:
    arm_fault(local_server, table=table_name, **FAULTS[fault])
    if fault == "tokens expire":  # the call goes on: break it so that the next one needs a new token
        arm_fault(local_server, table=table_name, kind="drop_connection", after_records=1500)
    cfg = wrapper_config(
        local_server, table_name, batch_rows=200, max_request_bytes=8192, ack_timeout_ms=500, **transport
    )
    with ZerobusWrapper(cfg) as w:
        res = w.send_batch(ids(0, 4000))
        assert res.success and res.successful_count == 4000, res
        stats = w.stats()
        assert stats["calls_opened"] >= 2, stats
        assert stats["replayed_records"] > 0 or fault == "tokens expire", stats
    assert_transport(local_server, transport)
    got = read_delta(local_server, table_name)
    assert sorted(set(got.column("id").to_pylist())) == list(range(4000))
    want = {i: f"{i:08d}" + "p" * 60 for i in range(4000)}
    assert all(want[i] == p for i, p in zip(got.column("id").to_pylist(), got.column("payload").to_pylist()))
