"""OpenTelemetry from Python: metrics and spans exported over OTLP to a real receiver."""

from __future__ import annotations

import pyarrow as pa
import pytest

from conftest import LocalServer, OTLPSink, wrapper_config
from pyzerobus import ConfigurationError, ConversionError, ZerobusWrapper


def attrs(point: dict) -> dict[str, str]:
    """An OTLP/JSON attribute list as a dict of strings."""
    out = {}
    for kv in point.get("attributes", []):
        value = kv["value"]
        out[kv["key"]] = str(next(iter(value.values())))
    return out


def metric_points(sink: OTLPSink, name: str) -> list[dict]:
    """Every data point of a metric, in export order."""
    points = []
    for export in sink.exports("metrics"):
        for rm in export.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    if m["name"] == name:
                        data = m.get("sum") or m.get("gauge") or m.get("histogram") or {}
                        points.extend(data.get("dataPoints", []))
    return points


def last_sum(sink: OTLPSink, name: str, **want: str) -> int | None:
    """The latest cumulative value of a counter's series with exactly these attributes."""
    value = None
    for p in metric_points(sink, name):
        if attrs(p) == want:
            value = int(p["asInt"])
    return value


def spans(sink: OTLPSink) -> list[dict]:
    """Every span received."""
    out = []
    for export in sink.exports("traces"):
        for rs in export.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                out.extend(ss.get("spans", []))
    return out


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_metrics_and_spans_reach_a_collector(
    local_server: LocalServer, otlp_sink: OTLPSink, table_name: str, protocol: str
) -> None:
    endpoint = otlp_sink.grpc_url if protocol == "grpc" else otlp_sink.http_url
    cfg = wrapper_config(
        local_server,
        table_name,
        observability_enabled=True,
        observability_otlp_endpoint=endpoint,
        observability_otlp_protocol=protocol,
        batch_rows=1000,
    )
    table = pa.table({"id": pa.array(range(5000), pa.uint64()), "name": [f"n{i}" for i in range(5000)]})
    with ZerobusWrapper(cfg) as w:
        assert w.send_batch(table).successful_count == 5000
        # A row the encoder rejects (above the int64 range) is counted by kind.
        bad = pa.table({"id": pa.array([1, 2**64 - 1], pa.uint64()), "name": ["ok", "too big"]})
        res = w.send_batch(bad)
        assert res.failed_indices() == [1]
        assert isinstance(res.failed_rows[0].error, ConversionError)
    # Closing the wrapper flushed the engine's providers to the collector.
    assert last_sum(otlp_sink, "zerobus.rows.acknowledged", **{"zerobus.table": table_name}) == 5001
    assert last_sum(otlp_sink, "zerobus.batches.sent", **{"zerobus.table": table_name}) == 6
    failed = last_sum(
        otlp_sink, "zerobus.rows.failed", **{"zerobus.table": table_name, "error.type": "conversion"}
    )
    assert failed == 1
    assert last_sum(otlp_sink, "zerobus.token.refreshes", **{"zerobus.table": table_name}) == 1
    got = spans(otlp_sink)
    sends = [s for s in got if s["name"].startswith("zerobus.send_batch")]
    assert len(sends) == 6
    assert sum(1 for s in got if s["name"] == "zerobus.encode") == 6
    assert sum(1 for s in got if s["name"] == "zerobus.stream.open") == 1
    failed_sends = [s for s in sends if s.get("status", {}).get("code") == 2]
    assert len(failed_sends) == 1
    assert attrs(failed_sends[0])["error.type"] == "conversion"


def test_telemetry_settings_are_validated(local_server: LocalServer, table_name: str) -> None:
    cfg = wrapper_config(
        local_server,
        table_name,
        observability_enabled=True,
        observability_otlp_endpoint="grpc://collector:4317",
        observability_otlp_protocol="udp",
    )
    with pytest.raises(ConfigurationError) as info:
        cfg.validate()
    assert {p.setting for p in info.value.problems} == {
        "observability_otlp_endpoint",
        "observability_otlp_protocol",
    }


def test_a_dead_collector_costs_sends_nothing(local_server: LocalServer, table_name: str) -> None:
    # Nothing listens on port 9: exports fail in the background.
    cfg = wrapper_config(
        local_server,
        table_name,
        observability_enabled=True,
        observability_otlp_endpoint="http://127.0.0.1:9",
    )
    table = pa.table({"id": pa.array(range(3000), pa.int64())})
    with ZerobusWrapper(cfg) as w:
        assert w.send_batch(table).successful_count == 3000
        assert w.stats()["rows_acked"] == 3000
    # Closing gave up on the final export (bounded) and did not raise.


def service_names(exports: list[dict]) -> set[str]:
    """The service.name resource attributes of OTLP/JSON metric exports."""
    names = set()
    for export in exports:
        for rm in export.get("resourceMetrics", []):
            names.update(v for k, v in attrs(rm.get("resource", {})).items() if k == "service.name")
    return names


def test_otel_variables_set_after_import_reach_the_engine(
    local_server: LocalServer, otlp_sink: OTLPSink, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyzerobus and its engine are loaded by now: these reach the engine only
    # because each new wrapper hands the OTEL_* variables over.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_sink.http_url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "set-after-import")
    cfg = wrapper_config(local_server, table_name, observability_enabled=True)
    table = pa.table({"id": pa.array(range(10), pa.uint64()), "name": [f"n{i}" for i in range(10)]})
    with ZerobusWrapper(cfg) as w:
        assert w.send_batch(table).successful_count == 10
    first = otlp_sink.exports("metrics")
    assert service_names(first) == {"set-after-import"}

    # A variable removed from os.environ is gone for the next wrapper too.
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    with ZerobusWrapper(cfg) as w:
        assert w.send_batch(table).successful_count == 10
    later = otlp_sink.exports("metrics")[len(first) :]
    names = service_names(later)
    assert names and "set-after-import" not in names
