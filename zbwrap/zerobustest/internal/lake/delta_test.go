package lake

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rewriteCommit replaces one version of a Delta log with the given lines.
func rewriteCommit(t testing.TB, tableDir string, version int64, lines []map[string]any) {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		raw, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(raw)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(tableDir, "_delta_log", commitName(version)), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// twoFileTable makes c.s.t with ids 0..9 in two Parquet files and closes the lake.
func twoFileTable(t testing.TB, ddl string) (dir, tableDir string) {
	t.Helper()
	dir = t.TempDir()
	l := openLake(t, dir)
	tb := mustCreate(t, l, "c.s.t", ddl)
	d := DescriptorFor("Row", tb.Columns())
	b := mustBind(t, l, "c.s.t", d)
	md := msgDesc(t, d)
	for i := range 2 {
		mustAppend(t, b, idRecords(t, md, i*5, 5, `"v"`)) // valid STRING and VARIANT
		if err := l.Materialize(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, tb.Path()
}

func TestReadTableFollowsTheLog(t *testing.T) {
	dir, tableDir := twoFileTable(t, idDDL)
	// Another engine removes the first file and re-adds it under a name that
	// needs URL escaping.
	first := action(commitLines(t, tableDir, 1), "add")["path"].(string)
	if err := os.Rename(filepath.Join(tableDir, first), filepath.Join(tableDir, "a b.parquet")); err != nil {
		t.Fatal(err)
	}
	rewriteCommit(t, tableDir, 3, []map[string]any{
		{"remove": map[string]any{"path": first, "dataChange": true}},
		{"txn": map[string]any{"appId": "other", "version": 1}},
	})
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(5, 5)) {
		t.Fatalf("after remove: ids = %v", got)
	}
	rewriteCommit(t, tableDir, 4, []map[string]any{{"add": map[string]any{"path": "a%20b.parquet", "size": 1, "partitionValues": map[string]any{}, "dataChange": true}}})
	if got := ids(t, dir, "t"); !slices.Equal(got, append(seq(5, 5), seq(0, 5)...)) {
		t.Fatalf("after re-add: ids = %v", got)
	}
	// The lake reopens on a log whose newest commits are not its own: it
	// finds its position further back and does not replay anything.
	l := openLake(t, dir)
	tb, _ := l.Table("c.s.t")
	if s := tb.Stats(); s.Durable != 10 || s.Materialized != 10 {
		t.Fatalf("Stats = %+v", s)
	}
	b, md := idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 10, 1, ""))
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	if vs, _ := listVersions(tableDir); vs[len(vs)-1] != 5 {
		t.Fatalf("versions = %v, want the next commit at 5", vs)
	}
}

func TestTableWithoutLakeConfiguration(t *testing.T) {
	// A Delta table whose metaData lacks the lake's column text: the columns
	// come from the schemaString (VARIANT reads as STRING).
	dir, tableDir := twoFileTable(t, "id bigint not null, s variant")
	v0 := commitLines(t, tableDir, 0)
	delete(action(v0, "metaData"), "configuration")
	rewriteCommit(t, tableDir, 0, v0)
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 10)) {
		t.Fatalf("ids = %v", got)
	}
	l := openLake(t, dir)
	tb, _ := l.Table("c.s.t")
	if got := ColumnsDDL(tb.Columns()); got != "id bigint not null, s string" {
		t.Fatalf("columns = %s", got)
	}
}

func TestReadTableErrors(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, tableDir string)
		want   string
	}{
		{"no table", func(t *testing.T, d string) { os.RemoveAll(d) }, "no such file"},
		{"no version 0", func(t *testing.T, d string) { os.Remove(filepath.Join(d, "_delta_log", commitName(0))) }, "no version 0"},
		{"no metaData", func(t *testing.T, d string) {
			rewriteCommit(t, d, 0, []map[string]any{{"protocol": map[string]any{"minReaderVersion": 1, "minWriterVersion": 2}}})
		}, "no metaData"},
		{"bad JSON", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, "_delta_log", commitName(1)), []byte("{\"add\":\n"), 0o644)
		}, "unexpected end of JSON"},
		{"bad columns", func(t *testing.T, d string) {
			v0 := commitLines(t, d, 0)
			action(v0, "metaData")["configuration"] = map[string]any{confColumns: "id wat"}
			rewriteCommit(t, d, 0, v0)
		}, `unknown type "wat"`},
		{"bad schemaString", func(t *testing.T, d string) {
			v0 := commitLines(t, d, 0)
			delete(action(v0, "metaData"), "configuration")
			action(v0, "metaData")["schemaString"] = `{"type":"struct","fields":[{"name":"a b","type":"integer"}]}`
			rewriteCommit(t, d, 0, v0)
		}, "invalid name"},
		{"missing file", func(t *testing.T, d string) {
			os.Remove(filepath.Join(d, action(commitLines(t, d, 2), "add")["path"].(string)))
		}, "no such file"},
		{"file of another table", func(t *testing.T, d string) {
			v0 := commitLines(t, d, 0)
			action(v0, "metaData")["configuration"] = map[string]any{confColumns: "id bigint not null, s binary"}
			rewriteCommit(t, d, 0, v0)
		}, "column 1 is s utf8, the table has s binary"},
		{"file with fewer columns", func(t *testing.T, d string) {
			v0 := commitLines(t, d, 0)
			action(v0, "metaData")["configuration"] = map[string]any{confColumns: "id bigint not null, s string, x int"}
			rewriteCommit(t, d, 0, v0)
		}, "has 2 columns, the table 3"},
		{"not Parquet", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, action(commitLines(t, d, 2), "add")["path"].(string)), []byte("not parquet at all"), 0o644)
		}, "lake: read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, tableDir := twoFileTable(t, idDDL)
			tc.break_(t, tableDir)
			tbl, err := ReadTable(dir, "c.s.t")
			if err == nil {
				tbl.Release()
				t.Fatalf("ReadTable succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadTable = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestOpenWithBrokenTable(t *testing.T) {
	dir, tableDir := twoFileTable(t, idDDL)
	v0 := commitLines(t, tableDir, 0)
	os.Remove(filepath.Join(tableDir, "_delta_log", commitName(0)))
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "no version 0") {
		t.Fatalf("Open = %v", err)
	}
	rewriteCommit(t, tableDir, 0, v0)
	os.WriteFile(filepath.Join(tableDir, "_delta_log", commitName(1)), []byte("{"), 0o644)
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("Open with an unreadable commit succeeded")
	}
	rewriteCommit(t, tableDir, 1, []map[string]any{{"commitInfo": map[string]any{}}})
	action(v0, "metaData")["configuration"] = map[string]any{confColumns: "id wat"}
	rewriteCommit(t, tableDir, 0, v0)
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "wat") {
		t.Fatalf("Open = %v", err)
	}
	delete(action(v0, "metaData"), "configuration")
	rewriteCommit(t, tableDir, 0, v0)
	rewriteCommit(t, tableDir, 0, []map[string]any{{"protocol": map[string]any{}}})
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "no metaData") {
		t.Fatalf("Open = %v", err)
	}
	os.RemoveAll(tableDir)
	// Directories that are not lake tables are ignored.
	os.MkdirAll(filepath.Join(dir, "bad-name", "s", "t", "_delta_log"), 0o755)
	os.MkdirAll(filepath.Join(dir, "c", "s", "t2", "_zerobus_log"), 0o755)
	l := openLake(t, dir)
	if n := len(l.Tables()); n != 0 {
		t.Fatalf("%d tables", n)
	}
}

func TestFilesystemErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := Open(Options{Dir: file}); err == nil {
		t.Error("Open on a file succeeded")
	}
	// The lock file is a directory.
	os.MkdirAll(filepath.Join(dir, "d", ".lake.lock"), 0o755)
	if _, err := Open(Options{Dir: filepath.Join(dir, "d")}); err == nil || !strings.Contains(err.Error(), "lake: lock") {
		t.Errorf("Open with a bad lock file = %v", err)
	}
	// A table whose log directory is a file cannot be created or opened.
	l := openLake(t, filepath.Join(dir, "e"))
	os.MkdirAll(filepath.Join(dir, "e", "c", "s", "t"), 0o755)
	os.WriteFile(filepath.Join(dir, "e", "c", "s", "t", "_zerobus_log"), nil, 0o644)
	if _, err := l.CreateTable("c.s.t", mustColumns(t, "a int")); err == nil {
		t.Error("CreateTable with a blocked log directory succeeded")
	}
	if len(l.Tables()) != 0 {
		t.Error("the failed table was registered")
	}
	l.Close()
	dir2, tableDir := twoFileTable(t, idDDL)
	os.RemoveAll(filepath.Join(tableDir, "_zerobus_log"))
	os.WriteFile(filepath.Join(tableDir, "_zerobus_log"), nil, 0o644)
	if _, err := Open(Options{Dir: dir2}); err == nil || !strings.Contains(err.Error(), "record log") {
		t.Errorf("Open with a blocked record log = %v", err)
	}
}
