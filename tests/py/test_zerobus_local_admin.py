"""zerobus-local's admin endpoints: only a caller holding the admin token arms faults."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pyarrow as pa
import pytest

from conftest import LocalServer, admin_post, arm_fault, wrapper_config
from pyzerobus import ZerobusWrapper

FAULT = {"kind": "fail_create_stream", "code": "PERMISSION_DENIED", "times": -1}


def send(
    server: LocalServer, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, dict]:
    """One request to the workspace URL; the status and the decoded JSON answer."""
    req = urllib.request.Request(server.workspace_url + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def armed(server: LocalServer) -> list:
    status, body = send(
        server, "GET", "/admin/faults", None, {"Authorization": "Bearer " + server.admin_token}
    )
    assert status == 200, body
    return body["faults"]


def test_ready_line_carries_the_admin_token(local_server: LocalServer) -> None:
    assert len(local_server.admin_token) >= 26


@pytest.mark.parametrize(
    "headers",
    [
        # What a web page's fetch() or form sends across origins without a preflight.
        {"Content-Type": "text/plain", "Origin": "http://attacker.example"},
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://attacker.example"},
        {"Content-Type": "application/json", "Authorization": "Bearer not-the-token"},
        {"Content-Type": "text/plain", "Authorization": "Bearer {token}"},
    ],
)
def test_admin_refuses_without_token_and_json(
    local_server: LocalServer, table_name: str, headers: dict
) -> None:
    headers = {k: v.format(token=local_server.admin_token) for k, v in headers.items()}
    status, body = send(local_server, "POST", "/admin/faults", json.dumps(FAULT).encode(), headers)
    assert status in (401, 415), body
    assert body["message"] and local_server.admin_token not in body["message"]
    assert armed(local_server) == []
    with ZerobusWrapper(wrapper_config(local_server, table_name)) as w:
        assert w.send_batch(pa.table({"id": pa.array([1, 2, 3], pa.int64())})).success


def test_admin_helpers_use_the_token(local_server: LocalServer) -> None:
    arm_fault(local_server, **FAULT)
    assert [f["kind"] for f in armed(local_server)] == ["fail_create_stream"]
    assert admin_post(local_server, "/admin/tokens/revoke") == {"revoked": 0}
