"""WrapperConfiguration: keywords, YAML, environment, validation, secrets."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

import pyzerobus
from pyzerobus import ConfigurationError, WrapperConfiguration

SECRET = "s3cr3t-value-never-printed"


def test_defaults_are_the_engines() -> None:
    engine = WrapperConfiguration.defaults()
    ours = {f.name: f.default for f in dataclasses.fields(WrapperConfiguration)}
    assert set(engine) == set(ours)
    assert engine == ours


def test_repr_hides_the_secret_and_shows_what_is_set() -> None:
    cfg = WrapperConfiguration(
        endpoint="https://x", table_name="a.b.c", client_secret=SECRET, retry_max_attempts=9
    )
    for text in (repr(cfg), str(cfg), f"{cfg}", f"{cfg!r}"):
        assert SECRET not in text
        assert "client_secret='***'" in text
        assert "retry_max_attempts=9" in text
        assert "max_inflight_bytes" not in text  # defaults are left out
    assert "client_secret" not in repr(WrapperConfiguration(table_name="a.b.c", client_id="x"))
    assert cfg.replace(table_name="x.y.z").table_name == "x.y.z"
    assert SECRET in cfg.to_json()  # the engine gets it, inside the process


def test_validate_reports_every_problem_by_name() -> None:
    cfg = WrapperConfiguration(
        table_name="not-a-table",
        client_secret=SECRET,
        retry_max_attempts="5",  # type: ignore[arg-type]
        debug_enabled=True,
        max_request_bytes=20 << 20,
        batch_rows=-1,
        zerobus_writer_disabled=1,  # type: ignore[arg-type]
    )
    with pytest.raises(ConfigurationError) as info:
        cfg.validate()
    names = [p.setting for p in info.value.problems]
    for setting in (
        "retry_max_attempts",
        "zerobus_writer_disabled",
        "table_name",
        "endpoint",
        "unity_catalog_url",
        "client_id",
        "debug_output_dir",
        "max_request_bytes",
        "batch_rows",
    ):
        assert setting in names, (setting, names)
        assert setting in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert info.value.kind == "configuration" and not info.value.retryable


def test_valid_configuration_passes(config: WrapperConfiguration) -> None:
    assert config.validate() is None
    WrapperConfiguration(table_name="a.b.c", zerobus_writer_disabled=True).validate()


def test_wrapper_refuses_an_invalid_configuration() -> None:
    with pytest.raises(ConfigurationError) as info:
        pyzerobus.ZerobusWrapper(table_name="a.b", client_secret=SECRET)
    assert {"table_name", "endpoint", "client_id"} <= {p.setting for p in info.value.problems}


def test_from_yaml_then_environment(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "zerobus.yaml"
    path.write_text(
        "zerobus_endpoint: https://ws.zerobus.example.com\n"
        "table_name: main.app.events\n"
        "client_id: from-yaml\n"
        "retry_max_attempts: 7\n"
        "batch_rows: 2048\n"
        "debug_output_dir: /tmp/zb-debug\n"
    )
    monkeypatch.setenv("ZEROBUS_TABLE_NAME", "main.app.other")
    monkeypatch.setenv("DATABRICKS_HOST", "https://ws.cloud.example.com")
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", "ignored-yaml-wins")
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("ZEROBUS_MAX_CONCURRENT_BATCHES", "3")
    cfg = WrapperConfiguration.from_yaml(path)
    assert cfg.endpoint == "https://ws.zerobus.example.com"
    assert cfg.table_name == "main.app.other"
    assert cfg.client_id == "from-yaml"
    assert cfg.client_secret == SECRET
    assert cfg.unity_catalog_url == "https://ws.cloud.example.com"
    assert (cfg.retry_max_attempts, cfg.batch_rows, cfg.max_concurrent_batches) == (7, 2048, 3)
    assert cfg.flush_timeout_ms == 300_000
    cfg.validate()

    plain = WrapperConfiguration.from_yaml(str(path), env=False)
    got = (plain.table_name, plain.client_secret, plain.max_concurrent_batches)
    assert got == ("main.app.events", "", 0)  # 0: the default, 16 for one stream


def test_from_env() -> None:
    env = {
        "ZEROBUS_ENDPOINT": "https://ws.zerobus.example.com",
        "ZEROBUS_TABLE_NAME": "main.app.events",
        "ZEROBUS_WRITER_DISABLED": "true",
        "ZEROBUS_ACK_TIMEOUT_MS": "1234",
        "DATABRICKS_CLIENT_SECRET": SECRET,
        "UNRELATED": "x",
    }
    cfg = WrapperConfiguration.from_env(env)
    assert cfg.zerobus_writer_disabled is True
    assert cfg.ack_timeout_ms == 1234
    assert cfg.client_secret == SECRET
    with pytest.raises(ConfigurationError) as info:
        WrapperConfiguration.from_env({"ZEROBUS_RETRY_MAX_ATTEMPTS": "many"})
    assert [p.setting for p in info.value.problems] == ["retry_max_attempts"]


def test_transport_settings() -> None:
    cfg = WrapperConfiguration.from_env({"ZEROBUS_TRANSPORT": "arrow", "ZEROBUS_ARROW_COMPRESSION": "zstd"})
    assert (cfg.transport, cfg.arrow_compression) == ("arrow", "zstd")
    bad = WrapperConfiguration(
        endpoint="https://ws.zerobus.example.com",
        unity_catalog_url="https://dbc.example.com",
        table_name="a.b.c",
        client_id="id",
        client_secret=SECRET,
        transport="avro",
        arrow_compression="gzip",
    )
    with pytest.raises(ConfigurationError) as info:
        bad.validate()
    problems = {p.setting: p.message for p in info.value.problems}
    assert set(problems) == {"transport", "arrow_compression"}
    assert "proto or arrow" in problems["transport"] and "avro" in problems["transport"]
    assert "none, lz4 or zstd" in problems["arrow_compression"]
    bad.replace(transport="arrow", arrow_compression="lz4").validate()


def test_yaml_errors(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("table_name: a.b.c\nno_such_setting: 1\n")
    with pytest.raises(ConfigurationError, match="no_such_setting"):
        WrapperConfiguration.from_yaml(path, env=False)
    path.write_text("table_name: [unclosed\n")
    with pytest.raises(ConfigurationError, match="YAML"):
        WrapperConfiguration.from_yaml(path, env=False)


def test_path_settings_accept_paths(tmp_path: pathlib.Path) -> None:
    cfg = WrapperConfiguration(table_name="a.b.c", debug_output_dir=tmp_path, tls_ca_file=tmp_path / "ca.pem")  # type: ignore[arg-type]
    assert cfg.debug_output_dir == str(tmp_path)
    assert cfg.tls_ca_file == str(tmp_path / "ca.pem")
    with pytest.raises(ConfigurationError) as info:
        cfg.replace(zerobus_writer_disabled=True).validate()
    assert [p.setting for p in info.value.problems] == ["tls_ca_file"]


def test_streams_auto(tmp_path: pathlib.Path) -> None:
    """streams takes a count or "auto", from code, YAML and the environment; anything else is named."""
    WrapperConfiguration(table_name="a.b.c", zerobus_writer_disabled=True, streams="auto").validate()
    path = tmp_path / "zerobus.yaml"
    path.write_text("table_name: a.b.c\nstreams: auto\nmax_streams: 8\n")
    cfg = WrapperConfiguration.from_yaml(path, env=False)
    assert (cfg.streams, cfg.max_streams) == ("auto", 8)
    assert WrapperConfiguration.from_env({"ZEROBUS_STREAMS": "auto"}).streams == "auto"
    assert WrapperConfiguration.from_env({"ZEROBUS_STREAMS": "3"}).streams == 3
    for bad, message in (
        ("lots", "whole number or auto"),
        (-1, "whole number or auto"),
        (1.5, "must be int or str"),
        (True, "must be int or str"),
    ):
        with pytest.raises(pyzerobus.ConfigurationError) as exc:
            WrapperConfiguration(table_name="a.b.c", zerobus_writer_disabled=True, streams=bad).validate()
        assert [p.setting for p in exc.value.problems] == ["streams"], exc.value
        assert message in str(exc.value)
    with pytest.raises(pyzerobus.ConfigurationError) as exc:
        WrapperConfiguration(table_name="a.b.c", zerobus_writer_disabled=True, max_streams=100).validate()
    assert [p.setting for p in exc.value.problems] == ["max_streams"]
