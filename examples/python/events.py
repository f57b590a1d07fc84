"""A realistic sample: app events with nested fields, generated fast and lazily.

    from events import event_batches
    reader = event_batches(1_000_000)   # a pyarrow RecordBatchReader, 50,000 rows a batch

Columns: event_id, ts (timestamp, UTC), user_id, event_type, session (a
struct holding a device struct), properties (map<string, string>), tags
(list<string>), amount (double, null for most events). Values come from a
seeded generator (numpy), so every run makes the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

EVENT_TYPES = ["page_view", "click", "add_to_cart", "purchase", "search", "login", "logout", "share"]
OS = ["ios", "android", "web", "macos", "windows"]
MODELS = ["iPhone 15", "Pixel 8", "Galaxy S24", "Chrome", "Safari", "Firefox", "Surface"]
COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "NL", "SE"]
PROP_KEYS = ["page", "referrer", "campaign", "experiment", "query"]
PROP_VALUES = [
    "/home",
    "/cart",
    "/search",
    "google",
    "newsletter",
    "spring_sale",
    "A",
    "B",
    "shoes",
    "red dress",
]
TAGS = ["mobile", "returning", "vip", "beta", "promo", "organic", "paid"]

SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field(
            "session",
            pa.struct(
                [
                    pa.field("id", pa.string()),
                    pa.field("country", pa.string()),
                    pa.field(
                        "device", pa.struct([pa.field("os", pa.string()), pa.field("model", pa.string())])
                    ),
                ]
            ),
        ),
        pa.field("properties", pa.map_(pa.string(), pa.string())),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("amount", pa.float64()),
    ]
)

START_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> pa.Array:
    return pa.array(pool).take(pa.array(rng.integers(0, len(pool), n)))


def _lists(rng: np.random.Generator, pool: list[str], n: int, most: int) -> tuple[pa.Array, pa.Array]:
    counts = rng.integers(0, most + 1, n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.array(offsets), _pick(rng, pool, int(offsets[-1]))


def _distinct_lists(
    rng: np.random.Generator, pool: list[str], n: int, most: int
) -> tuple[pa.Array, pa.Array]:
    """Lists of up to ``most`` values of ``pool``, none twice in one list (map keys).

    Each list takes consecutive values of the pool from a random start.
    """
    counts = rng.integers(0, most + 1, n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    row = np.repeat(np.arange(n), counts)
    pos = np.arange(int(offsets[-1])) - offsets[row]
    picked = (rng.integers(0, len(pool), n)[row] + pos) % len(pool)
    return pa.array(offsets), pa.array(pool).take(pa.array(picked))


def make_batch(first: int, n: int, seed: int = 7) -> pa.RecordBatch:
    """Rows first .. first+n-1 of the sample (the same rows for the same arguments)."""
    rng = np.random.default_rng([seed, first])
    ids = np.arange(first, first + n, dtype=np.int64)
    event_id = pa.array([f"evt-{i:012d}" for i in ids])
    ts = pa.array(START_US + ids * 1_000 + rng.integers(0, 1_000, n), pa.timestamp("us", tz="UTC"))
    users = rng.integers(1, 200_000, n)
    session = pa.StructArray.from_arrays(
        [
            pa.array([f"s-{u:06d}-{i // 50}" for u, i in zip(users, ids)]),
            _pick(rng, COUNTRIES, n),
            pa.StructArray.from_arrays([_pick(rng, OS, n), _pick(rng, MODELS, n)], names=["os", "model"]),
        ],
        names=["id", "country", "device"],
    )
    offsets, keys = _distinct_lists(rng, PROP_KEYS, n, 3)
    properties = pa.MapArray.from_arrays(offsets, keys, _pick(rng, PROP_VALUES, len(keys)))
    t_offsets, t_values = _lists(rng, TAGS, n, 2)
    tags = pa.ListArray.from_arrays(t_offsets, t_values)
    event_type = _pick(rng, EVENT_TYPES, n)
    amount = np.round(rng.gamma(2.0, 30.0, n), 2)
    amount_mask = event_type.to_numpy(zero_copy_only=False) != "purchase"
    return pa.RecordBatch.from_arrays(
        [
            event_id,
            ts,
            pa.array(users),
            event_type,
            session,
            properties,
            tags,
            pa.array(amount, mask=amount_mask),
        ],
        schema=SCHEMA,
    )


def event_batches(rows: int, batch_rows: int = 50_000, seed: int = 7) -> pa.RecordBatchReader:
    """A reader that makes the sample batch by batch (never all rows at once)."""

    def gen() -> Iterator[pa.RecordBatch]:
        for first in range(0, rows, batch_rows):
            yield make_batch(first, min(batch_rows, rows - first), seed)

    return pa.RecordBatchReader.from_batches(SCHEMA, gen())
