package lake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"
)

// checkpointInterval is how many versions apart the lake writes Delta
// checkpoints (version 100, 200, ...), as Delta writers do by default:
// readers then start from the newest checkpoint instead of replaying every
// commit. A variable for tests.
var checkpointInterval int64 = 100

const lastCheckpointName = "_last_checkpoint"

func checkpointName(version int64) string { return fmt.Sprintf("%020d.checkpoint.parquet", version) }

// The checkpoint schema of the Delta protocol, for the actions the lake
// writes (it never removes files or records transactions, but the columns
// are there, all null, for readers that expect them).
var (
	ckptMap  = arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	ckptList = arrow.ListOf(arrow.BinaryTypes.String)

	checkpointSchema = arrow.NewSchema([]arrow.Field{
		{Name: "txn", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "appId", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "version", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "lastUpdated", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		)},
		{Name: "add", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "partitionValues", Type: ckptMap, Nullable: true},
			arrow.Field{Name: "size", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "modificationTime", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "dataChange", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "stats", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "tags", Type: ckptMap, Nullable: true},
		)},
		{Name: "remove", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "deletionTimestamp", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "dataChange", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "extendedFileMetadata", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "partitionValues", Type: ckptMap, Nullable: true},
			arrow.Field{Name: "size", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		)},
		{Name: "metaData", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "description", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "format", Nullable: true, Type: arrow.StructOf(
				arrow.Field{Name: "provider", Type: arrow.BinaryTypes.String, Nullable: true},
				arrow.Field{Name: "options", Type: ckptMap, Nullable: true},
			)},
			arrow.Field{Name: "schemaString", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "partitionColumns", Type: ckptList, Nullable: true},
			arrow.Field{Name: "configuration", Type: ckptMap, Nullable: true},
			arrow.Field{Name: "createdTime", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		)},
		{Name: "protocol", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "minReaderVersion", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "minWriterVersion", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "readerFeatures", Type: ckptList, Nullable: true},
			arrow.Field{Name: "writerFeatures", Type: ckptList, Nullable: true},
		)},
	}, nil)
)

// logState is what a checkpoint holds: the table's protocol, metadata and
// live files as of a version.
type logState struct {
	protocol *protocolAction
	metaData *metaDataAction
	adds     []addAction // live files, in commit order
}

// apply adds one version's actions to the state. The lake only ever adds
// files.
func (s *logState) apply(actions []deltaAction) {
	for _, a := range actions {
		switch {
		case a.Protocol != nil:
			s.protocol = a.Protocol
		case a.MetaData != nil:
			s.metaData = a.MetaData
		case a.Add != nil:
			s.adds = append(s.adds, *a.Add)
		}
	}
}

// replayLog builds the state of versions 0..version from their commits.
func replayLog(tableDir string, version int64) (*logState, error) {
	s := &logState{}
	for v := int64(0); v <= version; v++ {
		actions, err := readCommit(tableDir, v)
		if err != nil {
			return nil, err
		}
		s.apply(actions)
	}
	if s.protocol == nil || s.metaData == nil {
		return nil, fmt.Errorf("lake: table at %s: no protocol or metaData up to version %d", tableDir, version)
	}
	return s, nil
}

// JSON shapes of checkpoint rows, as array.RecordFromJSON reads them (a map
// is a list of key/value objects); a column left out is null.
type (
	ckptRow struct {
		Add      *ckptAdd        `json:"add,omitempty"`
		MetaData *ckptMetaData   `json:"metaData,omitempty"`
		Protocol *protocolAction `json:"protocol,omitempty"`
	}
	ckptKV struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	ckptAdd struct {
		Path             string   `json:"path"`
		PartitionValues  []ckptKV `json:"partitionValues"`
		Size             int64    `json:"size"`
		ModificationTime int64    `json:"modificationTime"`
		DataChange       bool     `json:"dataChange"`
		Stats            *string  `json:"stats"`
	}
	ckptMetaData struct {
		ID     string `json:"id"`
		Format struct {
			Provider string   `json:"provider"`
			Options  []ckptKV `json:"options"`
		} `json:"format"`
		SchemaString     string   `json:"schemaString"`
		PartitionColumns []string `json:"partitionColumns"`
		Configuration    []ckptKV `json:"configuration"`
		CreatedTime      int64    `json:"createdTime"`
	}
)

func ckptKVs(m map[string]string) []ckptKV {
	out := make([]ckptKV, 0, len(m))
	for k, v := range m {
		out = append(out, ckptKV{k, v})
	}
	return out
}

// record is the state as checkpoint rows: protocol, metaData, then one row
// per live file.
func (s *logState) record() (arrow.RecordBatch, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	md := &ckptMetaData{
		ID:               s.metaData.ID,
		SchemaString:     s.metaData.SchemaString,
		PartitionColumns: s.metaData.PartitionColumns,
		Configuration:    ckptKVs(s.metaData.Configuration),
		CreatedTime:      s.metaData.CreatedTime,
	}
	md.Format.Provider, md.Format.Options = s.metaData.Format.Provider, ckptKVs(s.metaData.Format.Options)
	rows := []ckptRow{{Protocol: s.protocol}, {MetaData: md}}
	buf.WriteByte('[')
	for i, r := range rows {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(r); err != nil {
			return nil, err
		}
	}
	for i := range s.adds {
		a := &s.adds[i]
		row := ckptRow{Add: &ckptAdd{Path: a.Path, PartitionValues: ckptKVs(a.PartitionValues),
			Size: a.Size, ModificationTime: a.ModificationTime}}
		if a.Stats != "" {
			row.Add.Stats = &a.Stats
		}
		buf.WriteByte(',')
		if err := enc.Encode(row); err != nil {
			return nil, err
		}
	}
	buf.WriteByte(']')
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, checkpointSchema, &buf)
	return rec, err
}

// writeCheckpoint writes the checkpoint of version from s, then points
// _last_checkpoint at it. Both are written to temporary files first: a
// reader sees a complete checkpoint or none.
func writeCheckpoint(tableDir, tmpDir string, version int64, s *logState) error {
	rec, err := s.record()
	if err != nil {
		return fmt.Errorf("lake: checkpoint %d: %w", version, err)
	}
	defer rec.Release()
	logDir := deltaLogDir(tableDir)
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return fmt.Errorf("lake: checkpoint %d: %w", version, err)
	}
	tmp := filepath.Join(tmpDir, "checkpoint-"+uuid.NewString()+".parquet")
	defer os.Remove(tmp)
	if err := writeParquetFile(tmp, rec); err != nil {
		return fmt.Errorf("lake: checkpoint %d: %w", version, err)
	}
	if err := os.Rename(tmp, filepath.Join(logDir, checkpointName(version))); err != nil {
		return fmt.Errorf("lake: checkpoint %d: %w", version, err)
	}
	last, _ := json.Marshal(map[string]int64{"version": version, "size": rec.NumRows()})
	lastTmp := filepath.Join(tmpDir, "last-checkpoint-"+uuid.NewString())
	defer os.Remove(lastTmp)
	if err := writeFileSync(lastTmp, last); err != nil {
		return fmt.Errorf("lake: checkpoint %d: %w", version, err)
	}
	if err := os.Rename(lastTmp, filepath.Join(logDir, lastCheckpointName)); err != nil {
		return fmt.Errorf("lake: checkpoint %d: %w", version, err)
	}
	return syncDir(logDir)
}
