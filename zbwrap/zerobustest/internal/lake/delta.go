package lake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/uuid"
)

// Delta log actions, as much of them as the lake writes and reads.
type deltaAction struct {
	Protocol   *protocolAction `json:"protocol,omitempty"`
	MetaData   *metaDataAction `json:"metaData,omitempty"`
	Add        *addAction      `json:"add,omitempty"`
	Remove     *removeAction   `json:"remove,omitempty"`
	CommitInfo *commitInfo     `json:"commitInfo,omitempty"`
}

type protocolAction struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

type formatSpec struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

type metaDataAction struct {
	ID               string            `json:"id"`
	Format           formatSpec        `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
	CreatedTime      int64             `json:"createdTime"`
}

type addAction struct {
	Path             string            `json:"path"`
	PartitionValues  map[string]string `json:"partitionValues"`
	Size             int64             `json:"size"`
	ModificationTime int64             `json:"modificationTime"`
	DataChange       bool              `json:"dataChange"`
	Stats            string            `json:"stats,omitempty"`
}

type removeAction struct {
	Path string `json:"path"`
}

type commitInfo struct {
	Timestamp           int64             `json:"timestamp"`
	Operation           string            `json:"operation"`
	OperationParameters map[string]string `json:"operationParameters"`
	IsBlindAppend       bool              `json:"isBlindAppend"`
	EngineInfo          string            `json:"engineInfo"`
	// Zerobus records how far into the record log the table holds: the
	// materializer resumes from here after a restart.
	Zerobus *logMark `json:"zerobus,omitempty"`
}

// logMark is the record-log position a commit materialized up to.
type logMark struct {
	LogPosition int64 `json:"logPosition"` // sequence number of the next record to materialize
	Rejected    int64 `json:"rejected"`    // records skipped so far because they did not decode
}

const (
	engineInfo = "pyzerobus-lake"
	// confColumns keeps the table's own column types (VARIANT included) in
	// the Delta metaData configuration.
	confColumns = "zerobus.columns"
)

func deltaLogDir(tableDir string) string { return filepath.Join(tableDir, "_delta_log") }
func commitName(version int64) string    { return fmt.Sprintf("%020d.json", version) }

// protocolFor is the Delta protocol a table needs: 1/2, or 3/7 with the
// timestampNtz feature when a TIMESTAMP_NTZ appears anywhere in it.
func protocolFor(cols []Column) *protocolAction {
	if hasKind(cols, TimestampNTZ) {
		return &protocolAction{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"timestampNtz"}, WriterFeatures: []string{"timestampNtz"}}
	}
	return &protocolAction{MinReaderVersion: 1, MinWriterVersion: 2}
}

func hasKind(cols []Column, k Kind) bool {
	var in func(t *Type) bool
	in = func(t *Type) bool {
		if t == nil {
			return false
		}
		if t.Kind == k {
			return true
		}
		for i := range t.Fields {
			if in(&t.Fields[i].Type) {
				return true
			}
		}
		return in(t.Elem) || in(t.Key)
	}
	for i := range cols {
		if in(&cols[i].Type) {
			return true
		}
	}
	return false
}

// writeVersion0 creates the Delta table: protocol, metaData and commitInfo.
func writeVersion0(tableDir, tmpDir string, cols []Column, now time.Time) error {
	md := &metaDataAction{
		ID:               uuid.NewString(),
		Format:           formatSpec{Provider: "parquet", Options: map[string]string{}},
		SchemaString:     SchemaString(cols),
		PartitionColumns: []string{},
		Configuration:    map[string]string{confColumns: ColumnsDDL(cols)},
		CreatedTime:      now.UnixMilli(),
	}
	ci := &commitInfo{
		Timestamp:           now.UnixMilli(),
		Operation:           "CREATE TABLE",
		OperationParameters: map[string]string{"isManaged": "false", "partitionBy": "[]", "description": "", "properties": "{}"},
		IsBlindAppend:       true,
		EngineInfo:          engineInfo,
	}
	return writeCommit(tableDir, tmpDir, 0, []deltaAction{{Protocol: protocolFor(cols)}, {MetaData: md}, {CommitInfo: ci}})
}

// writeCommit writes one version of the Delta log atomically and never over
// an existing version: the actions go to a temporary file that is fsynced
// and then hard-linked to its final name (link fails if the name exists).
func writeCommit(tableDir, tmpDir string, version int64, actions []deltaAction) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, a := range actions {
		if err := enc.Encode(a); err != nil {
			return fmt.Errorf("lake: delta commit: %w", err)
		}
	}
	logDir := deltaLogDir(tableDir)
	for _, d := range []string{logDir, tmpDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("lake: delta commit: %w", err)
		}
	}
	tmp := filepath.Join(tmpDir, "commit-"+uuid.NewString()+".json")
	defer os.Remove(tmp)
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("lake: delta commit: %w", err)
	}
	final := filepath.Join(logDir, commitName(version))
	if err := os.Link(tmp, final); err != nil {
		return fmt.Errorf("lake: delta commit of version %d: %w", version, err)
	}
	return syncDir(logDir)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// listVersions returns the commit versions in the Delta log, ascending.
func listVersions(tableDir string) ([]int64, error) {
	entries, err := os.ReadDir(deltaLogDir(tableDir))
	if err != nil {
		return nil, err
	}
	var vs []int64
	for _, e := range entries {
		name := e.Name()
		if len(name) != 25 || !strings.HasSuffix(name, ".json") {
			continue
		}
		v, err := strconv.ParseInt(name[:20], 10, 64)
		if err == nil {
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	return vs, nil
}

func readCommit(tableDir string, version int64) ([]deltaAction, error) {
	path := filepath.Join(deltaLogDir(tableDir), commitName(version))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []deltaAction
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var a deltaAction
		if err := json.Unmarshal(line, &a); err != nil {
			return nil, fmt.Errorf("lake: %s: %w", path, err)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lake: %s: %w", path, err)
	}
	return out, nil
}

// tableState is what the lake needs from a table's Delta log.
type tableState struct {
	version int64 // latest version
	mark    logMark
	cols    []Column
}

// loadTableState reads the latest schema and log position, walking back
// from the newest commit.
func loadTableState(tableDir string) (*tableState, error) {
	vs, err := listVersions(tableDir)
	if err != nil {
		return nil, fmt.Errorf("lake: table at %s: %w", tableDir, err)
	}
	if len(vs) == 0 || vs[0] != 0 {
		return nil, fmt.Errorf("lake: table at %s: Delta log has no version 0", tableDir)
	}
	st := &tableState{version: vs[len(vs)-1]}
	var md *metaDataAction
	markFound := false
	for i := len(vs) - 1; i >= 0 && (md == nil || !markFound); i-- {
		actions, err := readCommit(tableDir, vs[i])
		if err != nil {
			return nil, err
		}
		for _, a := range actions {
			if a.MetaData != nil && md == nil {
				md = a.MetaData
			}
			if a.CommitInfo != nil && a.CommitInfo.Zerobus != nil && !markFound {
				st.mark, markFound = *a.CommitInfo.Zerobus, true
			}
		}
	}
	if md == nil {
		return nil, fmt.Errorf("lake: table at %s: Delta log has no metaData", tableDir)
	}
	if st.cols, err = columnsOfMetadata(md); err != nil {
		return nil, fmt.Errorf("lake: table at %s: %w", tableDir, err)
	}
	return st, nil
}

// columnsOfMetadata prefers the lake's own column text (which keeps VARIANT)
// and falls back to the Delta schemaString.
func columnsOfMetadata(md *metaDataAction) ([]Column, error) {
	if ddl, ok := md.Configuration[confColumns]; ok {
		return ParseColumns(ddl)
	}
	cols, err := ParseSchemaString(md.SchemaString)
	if err != nil {
		return nil, err
	}
	return cols, ValidateColumns(cols)
}

// snapshot is the live files and schema of a Delta table.
type snapshot struct {
	cols  []Column
	files []string // relative paths, in commit order
}

func readSnapshot(tableDir string) (*snapshot, error) {
	vs, err := listVersions(tableDir)
	if err != nil {
		return nil, fmt.Errorf("lake: table at %s: %w", tableDir, err)
	}
	if len(vs) == 0 || vs[0] != 0 {
		return nil, fmt.Errorf("lake: table at %s: Delta log has no version 0", tableDir)
	}
	live := map[string]bool{}
	var order []string
	var md *metaDataAction
	for _, v := range vs {
		actions, err := readCommit(tableDir, v)
		if err != nil {
			return nil, err
		}
		for _, a := range actions {
			switch {
			case a.MetaData != nil:
				md = a.MetaData
			case a.Add != nil:
				if !live[a.Add.Path] {
					order = append(order, a.Add.Path)
				}
				live[a.Add.Path] = true
			case a.Remove != nil:
				delete(live, a.Remove.Path)
			}
		}
	}
	if md == nil {
		return nil, fmt.Errorf("lake: table at %s: Delta log has no metaData", tableDir)
	}
	s := &snapshot{}
	if s.cols, err = columnsOfMetadata(md); err != nil {
		return nil, fmt.Errorf("lake: table at %s: %w", tableDir, err)
	}
	for _, p := range order {
		if live[p] {
			s.files = append(s.files, p)
		}
	}
	return s, nil
}

// readTable reads a Delta table's live Parquet files into one Arrow table.
func readTable(tableDir string) (arrow.Table, error) {
	snap, err := readSnapshot(tableDir)
	if err != nil {
		return nil, err
	}
	schema := ArrowSchema(snap.cols)
	chunks := make([][]arrow.Array, len(snap.cols))
	defer func() {
		for _, cs := range chunks {
			for _, c := range cs {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, rel := range snap.files {
		p, err := url.PathUnescape(rel)
		if err != nil {
			p = rel
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(tableDir, filepath.FromSlash(p))
		}
		tbl, err := readParquet(p)
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer tbl.Release()
			if tbl.NumCols() != int64(len(snap.cols)) {
				return fmt.Errorf("lake: %s has %d columns, the table %d", p, tbl.NumCols(), len(snap.cols))
			}
			for i := range snap.cols {
				col := tbl.Column(i)
				want := schema.Field(i)
				if col.Name() != want.Name || !arrow.TypeEqual(col.DataType(), want.Type) {
					return fmt.Errorf("lake: %s: column %d is %s %s, the table has %s %s", p, i, col.Name(), col.DataType(), want.Name, want.Type)
				}
				for _, c := range col.Data().Chunks() {
					c.Retain()
					chunks[i] = append(chunks[i], c)
				}
			}
			rows += tbl.NumRows()
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	cols := make([]arrow.Column, len(snap.cols))
	for i := range cols {
		ch := arrow.NewChunked(schema.Field(i).Type, chunks[i])
		cols[i] = *arrow.NewColumn(schema.Field(i), ch)
		ch.Release()
	}
	t := array.NewTable(schema, cols, rows)
	for i := range cols {
		cols[i].Release()
	}
	return t, nil
}

func readParquet(path string) (arrow.Table, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("lake: read %s: %w", path, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{Parallel: false, BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("lake: read %s: %w", path, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("lake: read %s: %w", path, err)
	}
	return tbl, nil
}
