"""The configuration of a wrapper: :class:`WrapperConfiguration`."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Union

from . import _engine
from .errors import ConfigProblem, ConfigurationError

__all__ = ["WrapperConfiguration"]

PathLike = Union[str, "os.PathLike[str]"]

# Python keyword -> the engine's (YAML) key, where they differ.
_TO_ENGINE = {"endpoint": "zerobus_endpoint"}
_FROM_ENGINE = {v: k for k, v in _TO_ENGINE.items()}
_SECRET_FIELDS = ("client_secret",)
_ENV_PREFIXES = ("ZEROBUS_", "DATABRICKS_")


@dataclass
class WrapperConfiguration:
    """Every setting of a :class:`~pyzerobus.ZerobusWrapper`.

    Build it with keyword arguments, :meth:`from_yaml` or :meth:`from_env`.
    Defaults are the engine's; :meth:`validate` reports every problem at
    once. The client secret never appears in ``repr`` or ``str``.

    Connection and authentication:
        endpoint: the Zerobus ingest endpoint,
            ``https://<workspace-id>.zerobus.<region>.cloud.databricks.com``
            (plaintext ``http://`` only on a loopback address).
        table_name: the target table, ``catalog.schema.table``.
        client_id / client_secret: the service principal's OAuth credentials.
        unity_catalog_url: the workspace URL, where tokens come from.
        tls_ca_file: a PEM file of CA certificates to trust instead of the
            system roots (e.g. a local server's ``ca.pem``).

    Observability (OpenTelemetry metrics and traces; see the README):
        observability_enabled: record and export telemetry.
        observability_otlp_endpoint: the OTLP collector, a URL
            (``http://localhost:4317`` is plaintext) or ``host:port`` (TLS);
            empty reads ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        observability_otlp_protocol: ``grpc`` or ``http``; empty reads
            ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``grpc``.
        observability_stdout: also print telemetry to standard output.

    Debug output: debug_enabled, debug_arrow_enabled, debug_protobuf_enabled,
    debug_output_dir (required when debug is on), debug_flush_interval_secs,
    debug_max_file_size (bytes), debug_max_files_retained (the newest N
    rotated files are kept; 0 keeps them all).

    Retries: retry_max_attempts (reconnections in a row before
    :class:`~pyzerobus.RetryExhausted`), retry_base_delay_ms,
    retry_max_delay_ms (exponential backoff with full jitter).

    Stream settings: max_inflight_records, max_inflight_bytes (the in-flight
    window, which bounds memory), max_request_bytes (at most 10 MiB),
    recovery_disabled, ack_timeout_ms, flush_timeout_ms (bounds flush and
    shutdown), stream_create_timeout_ms, streams (how many streams one
    table may use at once: each takes up to the service's per-stream quota
    of 100 MB/s and 100,000 records/s; batches keep their order within a
    stream only, so 1 keeps the total order; ``"auto"``, the default,
    starts with one and opens more, up to max_streams (16), while the open
    ones hold more in flight than one stream can move, closing extra ones
    idle for 10 s, so a load one stream can carry stays on one stream).

    transport: how batches travel. ``proto`` (the default) converts each row
    to a protobuf record on the Zerobus gRPC service, and a row that cannot
    be converted fails alone. ``arrow`` sends the Arrow data itself as
    Arrow IPC over Arrow Flight (same endpoint and credentials): no per-row
    conversion, less CPU per row; a column the table cannot take fails the
    whole batch, with the column named. arrow_compression compresses the
    arrow transport's data: ``none`` (the default), ``lz4`` or ``zstd``
    (fewer bytes on the wire for more CPU; the proto transport ignores it).

    application_name: appended to the user agent of every stream
    (``pyzerobus/<version> <name>``), so that the service's logs tell your
    application apart; letters, digits and ``._-/``.

    Sending: batch_rows (the largest chunk of rows converted and sent as one
    batch), batch_bytes (chunks are also cut at about this many bytes of
    Arrow data, so wide rows travel in smaller chunks), max_concurrent_batches
    (chunks in flight at once in one wrapper; 0, the default, means 8 per
    stream, enough to keep each at its quota with the service's ~150 ms to
    durability: with ``"auto"``, 8 per stream open plus 8 for the next, at
    least 16 and at most 8 times max_streams; with a count, 8 per stream,
    at least 16; the chunks of one send are queued in input order; with
    ``"auto"`` and 4 streams or more open, which only a slow service
    brings, the chunks of a large table grow to up to 8 times batch_rows
    and batch_bytes, counted as that many chunks in flight: each request
    waits for its own durability and a send ends with its slowest, so
    fewer, larger requests end sooner),
    zerobus_writer_disabled (convert and report per-row results, never
    connect).
    """

    endpoint: str = ""
    table_name: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    unity_catalog_url: str = ""
    tls_ca_file: str = ""

    observability_enabled: bool = False
    observability_otlp_endpoint: str = ""
    observability_otlp_protocol: str = ""
    observability_stdout: bool = False

    debug_enabled: bool = False
    debug_arrow_enabled: bool = False
    debug_protobuf_enabled: bool = False
    debug_output_dir: str = ""
    debug_flush_interval_secs: int = 5
    debug_max_file_size: int = 100 << 20
    debug_max_files_retained: int = 10

    retry_max_attempts: int = 5
    retry_base_delay_ms: int = 100
    retry_max_delay_ms: int = 30_000

    zerobus_writer_disabled: bool = False

    max_inflight_records: int = 1_000_000
    max_inflight_bytes: int = 64 << 20
    max_request_bytes: int = (10 << 20) - (64 << 10)
    recovery_disabled: bool = False
    ack_timeout_ms: int = 60_000
    flush_timeout_ms: int = 300_000
    stream_create_timeout_ms: int = 15_000
    transport: str = "proto"
    arrow_compression: str = "none"
    streams: Union[int, str] = "auto"
    max_streams: int = 16
    application_name: str = ""

    batch_rows: int = 10_000
    batch_bytes: int = 1 << 20
    max_concurrent_batches: int = 0

    def __post_init__(self) -> None:
        """Accept path objects for the path settings."""
        for name in ("debug_output_dir", "tls_ca_file"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, os.fspath(value))

    # ------------------------------------------------------------ loading

    @classmethod
    def from_yaml(cls, path: PathLike, *, env: bool = True) -> WrapperConfiguration:
        """Read a YAML file, then (unless ``env=False``) the environment.

        The keys are the engine's setting names (``zerobus_endpoint``,
        ``table_name``, ``client_secret``, ...; unknown keys are errors).
        ``ZEROBUS_<KEY>`` variables (``ZEROBUS_ENDPOINT``,
        ``ZEROBUS_TABLE_NAME``, ...) override the file; ``DATABRICKS_HOST``,
        ``DATABRICKS_CLIENT_ID`` and ``DATABRICKS_CLIENT_SECRET`` fill
        unity_catalog_url, client_id and client_secret when those are empty.
        """
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return cls._parse(text, _environment() if env else None)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> WrapperConfiguration:
        """Build a configuration from ``ZEROBUS_*`` and ``DATABRICKS_*`` variables alone.

        ``environ`` defaults to ``os.environ``.
        """
        return cls._parse("", _environment(environ))

    @classmethod
    def _parse(cls, text: str, env: Optional[dict[str, str]]) -> WrapperConfiguration:
        mod = _engine.native()
        data = _engine.call_json(mod.ParseConfig, text, json.dumps(env) if env is not None else "")
        return cls._from_engine(data)

    @classmethod
    def _from_engine(cls, data: Mapping[str, Any]) -> WrapperConfiguration:
        names = {f.name for f in fields(cls)}
        kwargs = {_FROM_ENGINE.get(k, k): v for k, v in data.items()}
        if kwargs.get("debug_max_files_retained") == -1:  # the engine's "keep all"; 0 here
            kwargs["debug_max_files_retained"] = 0
        return cls(**{k: v for k, v in kwargs.items() if k in names})

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The engine's defaults, keyed like this class's fields."""
        mod = _engine.native()
        data = _engine.call_json(mod.DefaultConfig)
        return {_FROM_ENGINE.get(k, k): v for k, v in data.items()}

    # ------------------------------------------------------------ checking

    def _type_problems(self) -> list[ConfigProblem]:
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            want = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            if want == "bool":
                ok = isinstance(value, bool)
            elif want == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif want == "Union[int, str]":  # a count or a word (streams: "auto")
                ok = isinstance(value, (int, str)) and not isinstance(value, bool)
                want = "int or str"
            else:
                ok = isinstance(value, str)
            if not ok:
                # A secret's value is never shown, whatever its type.
                shown = "" if f.name in _SECRET_FIELDS else f" {value!r}"
                problems.append(ConfigProblem(f.name, f"must be {want}, got {type(value).__name__}{shown}"))
        return problems

    def validate(self, *, custom_headers: bool = False) -> None:
        """Check every setting and raise one :class:`ConfigurationError` listing every problem.

        Each problem (``error.problems``) names its setting by its keyword
        here. Returns None when the configuration is valid. With
        ``custom_headers`` (a wrapper given a ``headers_provider``), the
        OAuth settings (client_id, client_secret, unity_catalog_url) are not
        required.
        """
        problems = self._type_problems()
        bad = {p.setting for p in problems}
        data = self._to_engine(skip=bad)
        mod = _engine.native()
        try:
            _engine.call(mod.ValidateConfig, json.dumps(data), custom_headers)
        except ConfigurationError as exc:
            problems.extend(exc.problems)
        if problems:
            raise ConfigurationError(
                "invalid configuration: " + "; ".join(str(p) for p in problems), problems=problems
            )

    def _to_engine(self, skip: Optional[set[str]] = None) -> dict[str, Any]:
        """The settings keyed by the engine's names (fields in ``skip`` left at their default)."""
        out = {}
        for f in fields(self):
            if skip and f.name in skip:
                continue
            out[_TO_ENGINE.get(f.name, f.name)] = getattr(self, f.name)
        return out

    def to_json(self) -> str:
        """The settings as the engine reads them (JSON; the secret included)."""
        return json.dumps(self._to_engine())

    def replace(self, **changes: Any) -> WrapperConfiguration:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------ display

    def __repr__(self) -> str:
        """Show the settings that differ from the defaults; the secret as ``'***'``."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            always = f.name in ("endpoint", "table_name")
            if not always and value == f.default:
                continue
            if f.name in _SECRET_FIELDS:
                parts.append(f"{f.name}='***'")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"WrapperConfiguration({', '.join(parts)})"

    __str__ = __repr__


def _environment(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith(_ENV_PREFIXES)}
