package lake

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pythonReader prints, as JSON, a Delta table read by deltalake and the same
// files read by pyarrow.parquet: column types and rows sorted by id.
const pythonReader = `
import datetime, decimal, json, sys
import deltalake, pyarrow as pa, pyarrow.parquet as pq

def conv(o):
    if isinstance(o, (datetime.datetime, datetime.date)):
        return o.isoformat()
    if isinstance(o, decimal.Decimal):
        return str(o)
    if isinstance(o, bytes):
        return o.hex()
    raise TypeError(type(o))

def dump(tbl):
    tbl = tbl.sort_by("id")
    return {"schema": {f.name: str(f.type) for f in tbl.schema}, "rows": tbl.to_pylist()}

dt = deltalake.DeltaTable(sys.argv[1])
files = dt.file_uris()
out = {
    "version": dt.version(),
    "files": len(files),
    "delta": dump(dt.to_pyarrow_table()),
    "parquet": dump(pa.concat_tables([pq.read_table(f) for f in files])),
}
print(json.dumps(out, default=conv))
`

// pythonWithDeltalake finds an interpreter with deltalake and pyarrow:
// $PYZEROBUS_PYTHON, else the repository's .venv.
func pythonWithDeltalake(t *testing.T) string {
	t.Helper()
	py := os.Getenv("PYZEROBUS_PYTHON")
	if py == "" {
		wd, _ := os.Getwd()
		for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				py = filepath.Join(d, ".venv", "bin", "python")
				break
			}
		}
	}
	if py == "" {
		t.Skip("no Python interpreter: set PYZEROBUS_PYTHON to one with deltalake and pyarrow")
	}
	if out, err := exec.Command(py, "-c", "import deltalake, pyarrow").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import deltalake and pyarrow (%v: %s): set PYZEROBUS_PYTHON to an interpreter that can", py, err, bytes.TrimSpace(out))
	}
	return py
}

// runPython runs script with args and returns its standard output; the
// test fails, with the standard error, if the script fails.
func runPython(t *testing.T, py, script string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}

// TestExternalReaders writes every Delta type through the lake and reads
// the table back with deltalake and pyarrow.
func TestExternalReaders(t *testing.T) {
	py := pythonWithDeltalake(t)
	dir := t.TempDir()
	l := openLake(t, dir)
	tb := mustCreate(t, l, "main.default.all", allTypesDDL)
	d := DescriptorFor("Row", tb.Columns())
	b := mustBind(t, l, "main.default.all", d)
	md := msgDesc(t, d)
	batches := [][]map[string]any{
		{
			goodRow(1),
			{"id": 2},
			{"id": 3, "b": false, "i8": 127, "i16": -32768, "i32": 2147483647, "f": 0.25, "d": -1e300, "s": "", "bin": []byte{},
				"day": 19000, "ts": int64(-1), "ntz": int64(1700000000123456), "dec": "0.5", "v": `{"k":null}`,
				"tags": []any{"a", "b", "c"}, "scores": map[any]any{"z": -1, "a": 0, "m": 2147483647},
				"inner": map[string]any{"x": -5}, "items": []any{map[string]any{"n": -9}, map[string]any{"k": "only k"}},
				"nested": []any{[]any{}, []any{3}}},
		},
		{
			{"id": 4, "ts": int64(0), "ntz": int64(0), "day": 2932896, "dec": "12345678.9", "i32": -2147483648,
				"inner": map[string]any{"x": 1, "names": []any{"p", "q"}, "m": map[any]any{-1: "neg", 7: "seven"}}},
		},
	}
	for _, recs := range batches {
		var raw [][]byte
		for _, r := range recs {
			raw = append(raw, encode(t, md, r))
		}
		if err := b.Check(raw); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, b, raw)
		if err := l.Materialize(); err != nil {
			t.Fatal(err)
		}
	}

	out := runPython(t, py, pythonReader, tb.Path())
	var got struct {
		Version int
		Files   int
		Delta   struct {
			Schema map[string]string
			Rows   []map[string]any
		}
		Parquet struct {
			Schema map[string]string
			Rows   []map[string]any
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output: %v\n%s", err, out)
	}
	if got.Version != 2 || got.Files != 2 {
		t.Errorf("deltalake sees version %d with %d files, want version 2 with 2 files", got.Version, got.Files)
	}

	wantTypes := map[string]string{
		"id": "int64", "b": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "f": "float", "d": "double",
		"s": "string", "bin": "binary", "day": "date32[day]", "ts": "timestamp[us, tz=UTC]", "ntz": "timestamp[us]",
		"dec": "decimal128(10, 2)", "v": "string",
		"tags": "list<", "scores": "map<string, int32", "inner": "struct<x: int32 not null", "items": "list<", "nested": "list<",
	}
	const wantRows = `[
 {"id":1,"b":true,"i8":-128,"i16":32767,"i32":-7,"f":1.5,"d":2.25,"s":"héllo","bin":"0001",
  "day":"0001-01-01","ts":"9999-12-31T23:59:59.999999+00:00","ntz":"0001-01-01T00:00:00","dec":"-99999999.99","v":"{\"a\":[1,2]}",
  "tags":["x"],"scores":[["a",1]],"inner":{"x":3,"names":["n"],"m":[[1,"one"]]},"items":[{"k":"k1","n":9}],"nested":[[1,2]]},
 {"id":2,"b":null,"i8":null,"i16":null,"i32":null,"f":null,"d":null,"s":null,"bin":null,
  "day":null,"ts":null,"ntz":null,"dec":null,"v":null,
  "tags":[],"scores":[],"inner":null,"items":[],"nested":[]},
 {"id":3,"b":false,"i8":127,"i16":-32768,"i32":2147483647,"f":0.25,"d":-1e300,"s":"","bin":"",
  "day":"2022-01-08","ts":"1969-12-31T23:59:59.999999+00:00","ntz":"2023-11-14T22:13:20.123456","dec":"0.50","v":"{\"k\":null}",
  "tags":["a","b","c"],"scores":[["a",0],["m",2147483647],["z",-1]],"inner":{"x":-5,"names":[],"m":[]},
  "items":[{"k":null,"n":-9},{"k":"only k","n":null}],"nested":[[],[3]]},
 {"id":4,"b":null,"i8":null,"i16":null,"i32":-2147483648,"f":null,"d":null,"s":null,"bin":null,
  "day":"9999-12-31","ts":"1970-01-01T00:00:00+00:00","ntz":"1970-01-01T00:00:00","dec":"12345678.90","v":null,
  "tags":[],"scores":[],"inner":{"x":1,"names":["p","q"],"m":[[-1,"neg"],[7,"seven"]]},"items":[],"nested":[]}
]`
	var want []map[string]any
	if err := json.Unmarshal([]byte(wantRows), &want); err != nil {
		t.Fatal(err)
	}
	for reader, res := range map[string]struct {
		Schema map[string]string
		Rows   []map[string]any
	}{"deltalake": got.Delta, "pyarrow.parquet": got.Parquet} {
		for col, w := range wantTypes {
			g := strings.ReplaceAll(res.Schema[col], "large_", "")
			if !strings.HasPrefix(g, w) {
				t.Errorf("%s: column %s has type %q, want %q", reader, col, res.Schema[col], w)
			}
		}
		if len(res.Rows) != len(want) {
			t.Fatalf("%s: %d rows, want %d", reader, len(res.Rows), len(want))
		}
		for i := range want {
			for col, w := range want[i] {
				if g := res.Rows[i][col]; !reflect.DeepEqual(g, w) {
					t.Errorf("%s: row %d column %s = %s, want %s", reader, i, col, jsonString(g), jsonString(w))
				}
			}
		}
	}
}
