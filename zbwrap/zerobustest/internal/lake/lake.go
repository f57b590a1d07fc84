package lake

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/descriptorpb"
)

// DefaultMaterializeInterval is how long durable records wait, at most, before
// they are written to their Delta table.
const DefaultMaterializeInterval = 3 * time.Second

// ErrInvalidTableName reports a table name that is not catalog.schema.table
// with parts of ASCII letters, digits and underscores.
var ErrInvalidTableName = errors.New("invalid table name")

// canonicalName checks catalog.schema.table and lower-cases it (Unity
// Catalog names are case-insensitive).
func canonicalName(fullName string) (string, error) {
	parts := strings.Split(fullName, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("lake: %q: %w: want catalog.schema.table", fullName, ErrInvalidTableName)
	}
	for _, p := range parts {
		if !validNamePart(p) {
			return "", fmt.Errorf("lake: %q: %w: parts are ASCII letters, digits and underscores", fullName, ErrInvalidTableName)
		}
	}
	return strings.ToLower(fullName), nil
}

// validNamePart reports whether s is a part of a table name: ASCII letters,
// digits and underscores (a leading digit is allowed, as in Unity Catalog;
// column names, which become protobuf field names, may not start with one).
func validNamePart(s string) bool {
	return s != "" && (validName(s) || validName("_"+s))
}

func tableDir(dir, name string) string {
	return filepath.Join(append([]string{dir}, strings.Split(name, ".")...)...)
}

func (t *Table) logDir() string { return filepath.Join(t.dir, "_zerobus_log") }
func (t *Table) tmpDir() string { return filepath.Join(t.dir, "_zerobus_log", "tmp") }

// Dir is the data directory, for ReadTable.
func (l *Lake) Dir() string { return l.dir }

// Path is the directory of the table's Delta table.
func (t *Table) Path() string { return t.dir }

// UCColumns renders the columns the way the Unity Catalog endpoint returns
// them (name, type_name, type_text, type_json, nullable, position).
func (t *Table) UCColumns() []UCColumn { return UCColumnsOf(t.cols) }

// SchemaString is the Delta schemaString of the table.
func (t *Table) SchemaString() string { return SchemaString(t.cols) }

// Table is the table the binding writes to.
func (b *Binding) Table() *Table { return b.table }

func cloneColumns(cols []Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Name: c.Name, Type: cloneType(c.Type), Nullable: c.Nullable}
	}
	return out
}

func cloneType(t Type) Type {
	out := Type{Kind: t.Kind, Precision: t.Precision, Scale: t.Scale}
	if t.Elem != nil {
		e := cloneType(*t.Elem)
		out.Elem = &e
	}
	if t.Key != nil {
		k := cloneType(*t.Key)
		out.Key = &k
	}
	if t.Fields != nil {
		out.Fields = cloneColumns(t.Fields)
	}
	return out
}

func open(opts Options) (*Lake, error) {
	if opts.Dir == "" {
		return nil, errors.New("lake: Options.Dir is required")
	}
	opts.Dir = filepath.Clean(opts.Dir)
	if opts.MaterializeInterval <= 0 {
		opts.MaterializeInterval = DefaultMaterializeInterval
	}
	if opts.segmentSize <= 0 {
		opts.segmentSize = defaultSegmentSize
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lake: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	l := &Lake{
		dir:      opts.Dir,
		interval: opts.MaterializeInterval,
		segSize:  opts.segmentSize,
		lock:     lock,
		tables:   map[string]*Table{},
		matReq:   make(chan chan error),
		stop:     make(chan struct{}),
		matDone:  make(chan struct{}),
	}
	if err := l.loadTables(); err != nil {
		l.shutdownTables()
		unlockDir(lock)
		return nil, err
	}
	// Replay what is durable but not in the Delta tables yet.
	if err := l.materializeAll(); err != nil {
		l.shutdownTables()
		unlockDir(lock)
		return nil, err
	}
	go l.runMaterializer()
	return l, nil
}

// loadTables finds every <catalog>/<schema>/<table>/_delta_log under the
// directory.
func (l *Lake) loadTables() error {
	matches, err := filepath.Glob(filepath.Join(l.dir, "*", "*", "*", "_delta_log"))
	if err != nil {
		return fmt.Errorf("lake: %w", err)
	}
	for _, m := range matches {
		rel, err := filepath.Rel(l.dir, filepath.Dir(m))
		if err != nil {
			continue
		}
		name, err := canonicalName(strings.Join(strings.Split(filepath.ToSlash(rel), "/"), "."))
		if err != nil || tableDir(l.dir, name) != filepath.Dir(m) {
			continue // not a name the lake would have made
		}
		st, err := loadTableState(filepath.Dir(m))
		if err != nil {
			return err
		}
		t, err := l.newTable(name, st.cols, st)
		if err != nil {
			return err
		}
		l.tables[name] = t
	}
	return nil
}

// newTable opens the record log of a table whose Delta log exists and
// starts its writer.
func (l *Lake) newTable(name string, cols []Column, st *tableState) (*Table, error) {
	t := &Table{name: name, dir: tableDir(l.dir, name), cols: cols, schema: ArrowSchema(cols)}
	t.version, t.mark = st.version, st.mark
	t.cur.seg = -1
	os.RemoveAll(t.tmpDir())
	log, err := openLog(t.logDir(), l.segSize, st.mark.LogPosition)
	if err != nil {
		return nil, fmt.Errorf("lake: table %s: %w", name, err)
	}
	if err := log.dropBefore(st.mark.LogPosition); err != nil {
		return nil, fmt.Errorf("lake: table %s: %w", name, err)
	}
	t.log = log
	t.materialized.Store(st.mark.LogPosition - st.mark.Rejected)
	t.rejected.Store(st.mark.Rejected)
	log.start()
	return t, nil
}

func (l *Lake) createTable(fullName string, cols []Column) (*Table, error) {
	name, err := canonicalName(fullName)
	if err != nil {
		return nil, err
	}
	if err := ValidateColumns(cols); err != nil {
		return nil, err
	}
	cols = cloneColumns(cols)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	return l.createLocked(name, cols)
}

// createLocked returns the existing table if its columns equal cols, or
// creates it: Delta version 0 first (the table exists once that file does),
// then the record log.
func (l *Lake) createLocked(name string, cols []Column) (*Table, error) {
	if t := l.tables[name]; t != nil {
		if diff := firstColumnDiff(t.cols, cols, ""); diff != nil {
			diff.Reason = "table " + name + " exists with other columns: " + diff.Reason
			return nil, diff
		}
		return t, nil
	}
	dir := tableDir(l.dir, name)
	if err := writeVersion0(dir, filepath.Join(dir, "_zerobus_log", "tmp"), cols, time.Now()); err != nil {
		return nil, fmt.Errorf("lake: create table %s: %w", name, err)
	}
	// Make the new directories durable: the table's, and each parent's entry.
	for d := dir; len(d) >= len(l.dir); d = filepath.Dir(d) {
		if err := syncDir(d); err != nil {
			return nil, err
		}
	}
	t, err := l.newTable(name, cols, &tableState{})
	if err != nil {
		return nil, err
	}
	l.tables[name] = t
	return t, nil
}

func (l *Lake) table(fullName string) (*Table, error) {
	name, err := canonicalName(fullName)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.tables[name]; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("lake: table %s: %w", name, ErrTableNotFound)
}

func (l *Lake) tableList() []*Table {
	l.mu.Lock()
	out := make([]*Table, 0, len(l.tables))
	for _, t := range l.tables {
		out = append(out, t)
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (l *Lake) bind(fullName string, desc *descriptorpb.DescriptorProto, autoCreate bool) (*Binding, error) {
	name, err := canonicalName(fullName)
	if err != nil {
		return nil, err
	}
	md, raw, err := compileDescriptor(desc)
	if err != nil {
		return nil, err
	}
	if err := checkDescriptorNames(md); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	t := l.tables[name]
	if t == nil {
		if !autoCreate {
			l.mu.Unlock()
			return nil, fmt.Errorf("lake: table %s: %w", name, ErrTableNotFound)
		}
		cols, err := columnsFromMessage(md, "", nil)
		if err == nil {
			err = ValidateColumns(cols)
		}
		if err == nil {
			t, err = l.createLocked(name, cols)
		}
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
	}
	l.mu.Unlock()
	p, err := compilePlan(md, raw, t.cols)
	if err != nil {
		return nil, err
	}
	return &Binding{table: t, plan: p, id: l.bindings.Add(1)}, nil
}

// runMaterializer is the Lake's materializer goroutine.
func (l *Lake) runMaterializer() {
	defer close(l.matDone)
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			l.materializeAll() // errors are retried on the next tick and reported by Materialize
		case reply := <-l.matReq:
			reply <- l.materializeAll()
		}
	}
}

func (l *Lake) materializeAll() error {
	var errs []error
	for _, t := range l.tableList() {
		if err := t.materialize(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *Lake) materializeNow() error {
	reply := make(chan error, 1)
	select {
	case l.matReq <- reply:
		return <-reply
	case <-l.matDone:
		return ErrClosed
	}
}

// close stops the writers once every queued append is written, then
// materializes (unless abandoning, which simulates a crash) and releases the
// directory.
func (l *Lake) close(materialize bool) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.matDone
	for _, t := range l.tableList() {
		t.log.close()
	}
	var err error
	if materialize {
		err = l.materializeAll()
	}
	l.shutdownTables()
	return errors.Join(err, unlockDir(l.lock))
}

// shutdownTables stops writers and closes the materializer's files.
func (l *Lake) shutdownTables() {
	for _, t := range l.tableList() {
		t.log.close()
		t.matMu.Lock()
		t.cur.close()
		t.matMu.Unlock()
	}
}
