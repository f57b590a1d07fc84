"""Check read_protobuf's Arrow types and values for every protobuf field kind.

Usage: check_types.py <path of debug.py> <output dir> <table> <expected JSON>

The expected JSON has "schema" (column name -> pyarrow type string) and
"rows" (bytes as hex, maps as lists of [key, value]).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any


def normalize(v: Any) -> Any:
    """Make a to_pylist value comparable with JSON."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, tuple):
        return [normalize(x) for x in v]
    if isinstance(v, list):
        return [normalize(x) for x in v]
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    return v


def main() -> None:
    """Read the files and compare with the expected JSON."""
    debug_py, directory, table, expected_json = sys.argv[1:5]
    spec = importlib.util.spec_from_file_location("pyzerobus_debug", debug_py)
    assert spec is not None and spec.loader is not None
    debug = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(debug)
    expected = json.loads(expected_json)

    records = debug.read_protobuf(directory, table)
    schema = {f.name: str(f.type) for f in records.schema}
    if schema != expected["schema"]:
        sys.exit(f"schema: got {schema}, want {expected['schema']}")
    rows = normalize(records.to_pylist())
    for i, (got, want) in enumerate(zip(rows, expected["rows"])):
        if got != want:
            sys.exit(f"row {i}: got {got}, want {want}")
    if len(rows) != len(expected["rows"]):
        sys.exit(f"got {len(rows)} rows, want {len(expected['rows'])}")
    print("ok")


if __name__ == "__main__":
    main()
