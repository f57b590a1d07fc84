package lake

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// MaxColumns is the most top-level columns a table may have.
const MaxColumns = 2000

// maxTypeDepth bounds the nesting of types (and of messages in a descriptor).
const maxTypeDepth = 64

// kindInfo holds the names of one Kind: Unity Catalog type_name, Spark SQL
// text, and Spark JSON name.
type kindInfo struct{ ucName, text, json string }

var kindInfos = [...]kindInfo{
	Boolean:      {"BOOLEAN", "boolean", "boolean"},
	Byte:         {"BYTE", "tinyint", "byte"},
	Short:        {"SHORT", "smallint", "short"},
	Int:          {"INT", "int", "integer"},
	Long:         {"LONG", "bigint", "long"},
	Float:        {"FLOAT", "float", "float"},
	Double:       {"DOUBLE", "double", "double"},
	String:       {"STRING", "string", "string"},
	Binary:       {"BINARY", "binary", "binary"},
	Date:         {"DATE", "date", "date"},
	Timestamp:    {"TIMESTAMP", "timestamp", "timestamp"},
	TimestampNTZ: {"TIMESTAMP_NTZ", "timestamp_ntz", "timestamp_ntz"},
	Decimal:      {"DECIMAL", "decimal", "decimal"},
	Array:        {"ARRAY", "array", "array"},
	Map:          {"MAP", "map", "map"},
	Struct:       {"STRUCT", "struct", "struct"},
	Variant:      {"VARIANT", "variant", "variant"},
}

func (k Kind) valid() bool { return k >= Boolean && k <= Variant }

// String is the Unity Catalog type_name of the kind, e.g. "LONG".
func (k Kind) String() string {
	if !k.valid() {
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindInfos[k].ucName
}

// primitive reports whether the kind has no parameters or children.
func (k Kind) primitive() bool {
	return k.valid() && k != Decimal && k != Array && k != Map && k != Struct
}

// namedKinds maps every accepted Spark SQL spelling of a parameterless type.
var namedKinds = map[string]Kind{
	"boolean": Boolean, "bool": Boolean,
	"tinyint": Byte, "byte": Byte,
	"smallint": Short, "short": Short,
	"int": Int, "integer": Int,
	"bigint": Long, "long": Long,
	"float": Float, "real": Float,
	"double":    Double,
	"string":    String,
	"binary":    Binary,
	"date":      Date,
	"timestamp": Timestamp, "timestamp_ltz": Timestamp,
	"timestamp_ntz": TimestampNTZ,
	"variant":       Variant,
}

// TypeName is the Unity Catalog REST type_name, e.g. "INT", "DECIMAL", "ARRAY".
func (t Type) TypeName() string { return t.Kind.String() }

// TypeText is the lower-case Spark SQL text of the type, as Unity Catalog's
// type_text gives it: "bigint", "decimal(10,2)", "array<string>",
// "map<string,int>", "struct<a:int,b:array<string> not null>". ParseType
// reads it back.
func (t Type) TypeText() string {
	var b strings.Builder
	t.writeText(&b)
	return b.String()
}

// String is TypeText.
func (t Type) String() string { return t.TypeText() }

func (t Type) writeText(b *strings.Builder) {
	switch t.Kind {
	case Decimal:
		fmt.Fprintf(b, "decimal(%d,%d)", t.Precision, t.Scale)
	case Array:
		b.WriteString("array<")
		elemOf(t.Elem).writeText(b)
		b.WriteByte('>')
	case Map:
		b.WriteString("map<")
		elemOf(t.Key).writeText(b)
		b.WriteByte(',')
		elemOf(t.Elem).writeText(b)
		b.WriteByte('>')
	case Struct:
		b.WriteString("struct<")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.Name)
			b.WriteByte(':')
			f.Type.writeText(b)
			if !f.Nullable {
				b.WriteString(" not null")
			}
		}
		b.WriteByte('>')
	default:
		if t.Kind.valid() {
			b.WriteString(kindInfos[t.Kind].text)
		} else {
			b.WriteString(t.Kind.String())
		}
	}
}

// elemOf dereferences a child type; a missing child renders as an invalid
// type rather than panicking.
func elemOf(t *Type) Type {
	if t == nil {
		return Type{}
	}
	return *t
}

// TypeJSON is the Spark JSON of the type: a quoted name for a primitive
// ("\"integer\"", "\"decimal(10,2)\"") or an object for array, map and
// struct. Array elements and map values are never null (protobuf cannot carry
// a null element), so containsNull and valueContainsNull are false.
func (t Type) TypeJSON() string {
	var b strings.Builder
	t.writeJSON(&b, false)
	return b.String()
}

// writeJSON renders Spark JSON; storage=true writes VARIANT as "string", the
// way the Delta table stores it.
func (t Type) writeJSON(b *strings.Builder, storage bool) {
	switch t.Kind {
	case Decimal:
		fmt.Fprintf(b, `"decimal(%d,%d)"`, t.Precision, t.Scale)
	case Array:
		b.WriteString(`{"type":"array","elementType":`)
		elemOf(t.Elem).writeJSON(b, storage)
		b.WriteString(`,"containsNull":false}`)
	case Map:
		b.WriteString(`{"type":"map","keyType":`)
		elemOf(t.Key).writeJSON(b, storage)
		b.WriteString(`,"valueType":`)
		elemOf(t.Elem).writeJSON(b, storage)
		b.WriteString(`,"valueContainsNull":false}`)
	case Struct:
		writeStructJSON(b, t.Fields, storage)
	case Variant:
		if storage {
			b.WriteString(`"string"`)
		} else {
			b.WriteString(`"variant"`)
		}
	default:
		name := t.Kind.String()
		if t.Kind.valid() {
			name = kindInfos[t.Kind].json
		}
		b.WriteString(strconv.Quote(name))
	}
}

func writeStructJSON(b *strings.Builder, fields []Column, storage bool) {
	b.WriteString(`{"type":"struct","fields":[`)
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		f.writeJSON(b, storage)
	}
	b.WriteString(`]}`)
}

func (c Column) writeJSON(b *strings.Builder, storage bool) {
	b.WriteString(`{"name":`)
	b.WriteString(strconv.Quote(c.Name))
	b.WriteString(`,"type":`)
	c.Type.writeJSON(b, storage)
	b.WriteString(`,"nullable":`)
	b.WriteString(strconv.FormatBool(c.Nullable))
	b.WriteString(`,"metadata":{}}`)
}

// TypeJSON is the Spark JSON of the column as a StructField, the form of
// Unity Catalog's type_json: {"name":..,"type":..,"nullable":..,"metadata":{}}.
func (c Column) TypeJSON() string {
	var b strings.Builder
	c.writeJSON(&b, false)
	return b.String()
}

// String renders the column as DDL: "name type" plus " not null".
func (c Column) String() string {
	s := c.Name + " " + c.Type.TypeText()
	if !c.Nullable {
		s += " not null"
	}
	return s
}

// SchemaString is the Delta schemaString (Spark JSON of a struct) of the
// columns. VARIANT columns are stored as STRING in the Delta table (their
// JSON text), so they appear as "string" here.
func SchemaString(cols []Column) string {
	var b strings.Builder
	writeStructJSON(&b, cols, true)
	return b.String()
}

// ColumnsDDL renders columns as "a int not null, b array<string>", the text
// ParseColumns reads.
func ColumnsDDL(cols []Column) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// Equal reports whether two types are the same, struct field names compared
// without regard to case (Delta column names are case-insensitive).
func (t Type) Equal(u Type) bool {
	if t.Kind != u.Kind {
		return false
	}
	switch t.Kind {
	case Decimal:
		return t.Precision == u.Precision && t.Scale == u.Scale
	case Array:
		return elemOf(t.Elem).Equal(elemOf(u.Elem))
	case Map:
		return elemOf(t.Key).Equal(elemOf(u.Key)) && elemOf(t.Elem).Equal(elemOf(u.Elem))
	case Struct:
		return columnsEqual(t.Fields, u.Fields)
	}
	return true
}

func columnsEqual(a, b []Column) bool {
	return firstColumnDiff(a, b, "") == nil
}

// firstColumnDiff names the first column where two column lists differ.
func firstColumnDiff(a, b []Column, prefix string) *SchemaError {
	if len(a) != len(b) {
		return &SchemaError{Column: strings.TrimSuffix(prefix, "."), Reason: fmt.Sprintf("expected %d columns, got %d", len(a), len(b))}
	}
	for i := range a {
		path := prefix + a[i].Name
		if !strings.EqualFold(a[i].Name, b[i].Name) {
			return &SchemaError{Column: path, Reason: fmt.Sprintf("expected column %q at position %d, got %q", a[i].Name, i, b[i].Name)}
		}
		if a[i].Nullable != b[i].Nullable {
			return &SchemaError{Column: path, Reason: fmt.Sprintf("expected nullable=%t, got nullable=%t", a[i].Nullable, b[i].Nullable)}
		}
		if !a[i].Type.Equal(b[i].Type) {
			return &SchemaError{Column: path, Reason: fmt.Sprintf("expected type %s, got %s", a[i].Type.TypeText(), b[i].Type.TypeText())}
		}
	}
	return nil
}

// UCColumn is one column as the Unity Catalog REST endpoint
// (GET /api/2.1/unity-catalog/tables/{full_name}) returns it.
type UCColumn struct {
	Name          string `json:"name"`
	TypeName      string `json:"type_name"`
	TypeText      string `json:"type_text"`
	TypeJSON      string `json:"type_json"`
	TypePrecision int    `json:"type_precision"`
	TypeScale     int    `json:"type_scale"`
	Nullable      bool   `json:"nullable"`
	Position      int    `json:"position"`
}

// UCColumnsOf renders columns the way the Unity Catalog endpoint returns them.
func UCColumnsOf(cols []Column) []UCColumn {
	out := make([]UCColumn, len(cols))
	for i, c := range cols {
		out[i] = UCColumn{
			Name:     c.Name,
			TypeName: c.Type.TypeName(),
			TypeText: c.Type.TypeText(),
			TypeJSON: c.TypeJSON(),
			Nullable: c.Nullable,
			Position: i,
		}
		if c.Type.Kind == Decimal {
			out[i].TypePrecision, out[i].TypeScale = c.Type.Precision, c.Type.Scale
		}
	}
	return out
}

// validName reports whether s is a column or name part: ASCII letters,
// digits and underscores, not starting with a digit.
func validName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

const nameRule = "names are ASCII letters, digits and underscores, not starting with a digit"

// ValidateColumns checks a table's columns: 1 to MaxColumns of them, valid
// unique names (case-insensitive), well-formed types. Problems are
// *SchemaError naming the column path.
func ValidateColumns(cols []Column) error {
	if len(cols) == 0 {
		return &SchemaError{Reason: "a table needs at least one column"}
	}
	if len(cols) > MaxColumns {
		return &SchemaError{Column: cols[MaxColumns].Name, Reason: fmt.Sprintf("%d columns, more than the limit of %d", len(cols), MaxColumns)}
	}
	return validateFields(cols, "", 0)
}

func validateFields(cols []Column, prefix string, depth int) error {
	seen := make(map[string]bool, len(cols))
	for _, c := range cols {
		path := prefix + c.Name
		if !validName(c.Name) {
			return &SchemaError{Column: path, Reason: fmt.Sprintf("invalid name %q: %s", c.Name, nameRule)}
		}
		low := strings.ToLower(c.Name)
		if seen[low] {
			return &SchemaError{Column: path, Reason: "duplicate name (names are case-insensitive)"}
		}
		seen[low] = true
		if err := validateType(c.Type, path, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func validateType(t Type, path string, depth int) error {
	if depth > maxTypeDepth {
		return &SchemaError{Column: path, Reason: fmt.Sprintf("nested more than %d levels deep", maxTypeDepth)}
	}
	switch t.Kind {
	case Decimal:
		if t.Precision < 1 || t.Precision > 38 || t.Scale < 0 || t.Scale > t.Precision {
			return &SchemaError{Column: path, Reason: fmt.Sprintf("invalid decimal(%d,%d): want 1 <= precision <= 38 and 0 <= scale <= precision", t.Precision, t.Scale)}
		}
	case Array:
		if t.Elem == nil {
			return &SchemaError{Column: path, Reason: "array without element type"}
		}
		return validateType(*t.Elem, path+".element", depth+1)
	case Map:
		if t.Key == nil || t.Elem == nil {
			return &SchemaError{Column: path, Reason: "map without key or value type"}
		}
		switch t.Key.Kind {
		case Float, Double, Binary, Array, Map, Struct, Variant:
			return &SchemaError{Column: path + ".key", Reason: fmt.Sprintf("map key type %s is not supported (protobuf map keys are integers, booleans or strings)", t.Key.TypeText())}
		}
		if err := validateType(*t.Key, path+".key", depth+1); err != nil {
			return err
		}
		return validateType(*t.Elem, path+".value", depth+1)
	case Struct:
		if len(t.Fields) == 0 {
			return &SchemaError{Column: path, Reason: "struct without fields"}
		}
		return validateFields(t.Fields, path+".", depth)
	default:
		if !t.Kind.valid() {
			return &SchemaError{Column: path, Reason: fmt.Sprintf("unknown type kind %d", int(t.Kind))}
		}
	}
	return nil
}

// ParseType reads Spark / Unity Catalog type text, case-insensitively:
// "int", "bigint", "decimal(10,2)", "array<string>", "map<string,int>",
// "struct<a:int,b:array<string> not null>", and the aliases "integer",
// "long", "short", "byte", "bool", "real", "timestamp_ltz", "decimal"
// (= decimal(10,0)) and "decimal(p)" (= decimal(p,0)).
func ParseType(text string) (Type, error) {
	p := &typeParser{src: text}
	t, err := p.parseType(0)
	if err == nil {
		p.skipSpace()
		if p.pos < len(p.src) {
			err = p.errorf("unexpected %q after the type", p.src[p.pos:])
		}
	}
	if err != nil {
		return Type{}, err
	}
	if err := validateType(t, "", 0); err != nil {
		return Type{}, fmt.Errorf("lake: type %q: %w", text, err)
	}
	return t, nil
}

// ParseColumns reads a column list in DDL form: "id bigint not null,
// name string, tags map<string,string>". Each column is nullable unless it
// says "not null". The result is checked with ValidateColumns.
func ParseColumns(text string) ([]Column, error) {
	p := &typeParser{src: text}
	var cols []Column
	for {
		c, err := p.parseField(0)
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
		p.skipSpace()
		if p.pos == len(p.src) {
			break
		}
		if !p.consume(',') {
			return nil, p.errorf("expected ',' between columns")
		}
	}
	if err := ValidateColumns(cols); err != nil {
		return nil, err
	}
	return cols, nil
}

type typeParser struct {
	src string
	pos int
}

func (p *typeParser) errorf(format string, args ...any) error {
	return fmt.Errorf("lake: type %q: offset %d: %s", p.src, p.pos, fmt.Sprintf(format, args...))
}

func (p *typeParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func (p *typeParser) consume(c byte) bool {
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *typeParser) ident() string {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

func (p *typeParser) number() (int, error) {
	s := p.ident()
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, p.errorf("expected a number, got %q", s)
	}
	return n, nil
}

func (p *typeParser) expect(c byte) error {
	if !p.consume(c) {
		return p.errorf("expected %q", string(c))
	}
	return nil
}

func (p *typeParser) parseType(depth int) (Type, error) {
	if depth > maxTypeDepth {
		return Type{}, p.errorf("nested more than %d levels deep", maxTypeDepth)
	}
	start := p.pos
	word := strings.ToLower(p.ident())
	if k, ok := namedKinds[word]; ok {
		return Type{Kind: k}, nil
	}
	switch word {
	case "decimal", "dec", "numeric":
		t := Type{Kind: Decimal, Precision: 10}
		if !p.consume('(') {
			return t, nil
		}
		var err error
		if t.Precision, err = p.number(); err != nil {
			return Type{}, err
		}
		if p.consume(',') {
			if t.Scale, err = p.number(); err != nil {
				return Type{}, err
			}
		}
		return t, p.expect(')')
	case "array":
		if err := p.expect('<'); err != nil {
			return Type{}, err
		}
		elem, err := p.parseType(depth + 1)
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Array, Elem: &elem}, p.expect('>')
	case "map":
		if err := p.expect('<'); err != nil {
			return Type{}, err
		}
		key, err := p.parseType(depth + 1)
		if err != nil {
			return Type{}, err
		}
		if err := p.expect(','); err != nil {
			return Type{}, err
		}
		val, err := p.parseType(depth + 1)
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Map, Key: &key, Elem: &val}, p.expect('>')
	case "struct":
		if err := p.expect('<'); err != nil {
			return Type{}, err
		}
		t := Type{Kind: Struct}
		if p.consume('>') {
			return t, nil
		}
		for {
			f, err := p.parseField(depth + 1)
			if err != nil {
				return Type{}, err
			}
			t.Fields = append(t.Fields, f)
			if p.consume('>') {
				return t, nil
			}
			if err := p.expect(','); err != nil {
				return Type{}, err
			}
		}
	}
	p.pos = start
	p.skipSpace()
	return Type{}, p.errorf("unknown type %q", word)
}

// parseField reads "name[:] type [not null] [comment 'text']".
func (p *typeParser) parseField(depth int) (Column, error) {
	name := p.ident()
	if name == "" {
		return Column{}, p.errorf("expected a field name")
	}
	p.consume(':')
	t, err := p.parseType(depth)
	if err != nil {
		return Column{}, err
	}
	c := Column{Name: name, Type: t, Nullable: true}
	for {
		save := p.pos
		switch strings.ToLower(p.ident()) {
		case "not":
			if strings.ToLower(p.ident()) != "null" {
				return Column{}, p.errorf("expected NULL after NOT")
			}
			c.Nullable = false
		case "comment":
			if err := p.skipQuoted(); err != nil {
				return Column{}, err
			}
		default:
			p.pos = save
			return c, nil
		}
	}
}

func (p *typeParser) skipQuoted() error {
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != '\'' && p.src[p.pos] != '"' {
		return p.errorf("expected a quoted comment")
	}
	q := p.src[p.pos]
	for i := p.pos + 1; i < len(p.src); i++ {
		switch p.src[i] {
		case '\\':
			i++
		case q:
			p.pos = i + 1
			return nil
		}
	}
	return p.errorf("unterminated comment")
}

// sparkType is the shape of a Spark JSON type that is not a plain name.
type sparkType struct {
	Type        string          `json:"type"`
	Fields      []sparkField    `json:"fields"`
	ElementType json.RawMessage `json:"elementType"`
	KeyType     json.RawMessage `json:"keyType"`
	ValueType   json.RawMessage `json:"valueType"`
}

type sparkField struct {
	Name     string          `json:"name"`
	Type     json.RawMessage `json:"type"`
	Nullable *bool           `json:"nullable"`
}

// ParseSchemaString reads a Delta schemaString (Spark JSON of a struct) into
// columns. STRING columns stay STRING: the Delta schema cannot say that a
// string column holds a VARIANT.
func ParseSchemaString(s string) ([]Column, error) {
	t, err := parseSparkJSON(json.RawMessage(s), 0)
	if err != nil {
		return nil, fmt.Errorf("lake: schemaString: %w", err)
	}
	if t.Kind != Struct {
		return nil, fmt.Errorf("lake: schemaString: top level is %s, want struct", t.TypeText())
	}
	return t.Fields, nil
}

func parseSparkJSON(raw json.RawMessage, depth int) (Type, error) {
	if depth > maxTypeDepth {
		return Type{}, fmt.Errorf("nested more than %d levels deep", maxTypeDepth)
	}
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		t, err := ParseType(name)
		if err != nil || !t.Kind.primitive() && t.Kind != Decimal {
			return Type{}, fmt.Errorf("unknown Spark type %q", name)
		}
		return t, nil
	}
	var st sparkType
	if err := json.Unmarshal(raw, &st); err != nil {
		return Type{}, fmt.Errorf("bad Spark type JSON: %w", err)
	}
	switch st.Type {
	case "array":
		elem, err := parseSparkJSON(st.ElementType, depth+1)
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Array, Elem: &elem}, nil
	case "map":
		key, err := parseSparkJSON(st.KeyType, depth+1)
		if err != nil {
			return Type{}, err
		}
		val, err := parseSparkJSON(st.ValueType, depth+1)
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Map, Key: &key, Elem: &val}, nil
	case "struct":
		t := Type{Kind: Struct, Fields: make([]Column, 0, len(st.Fields))}
		for _, f := range st.Fields {
			ft, err := parseSparkJSON(f.Type, depth+1)
			if err != nil {
				return Type{}, fmt.Errorf("field %q: %w", f.Name, err)
			}
			t.Fields = append(t.Fields, Column{Name: f.Name, Type: ft, Nullable: f.Nullable == nil || *f.Nullable})
		}
		return t, nil
	}
	return Type{}, fmt.Errorf("unknown Spark type %q", st.Type)
}

// ArrowType is the Arrow type the Delta table's Parquet files hold for t:
// int8/int16/int32/int64, float32/float64, bool, utf8 (STRING and VARIANT),
// binary, date32, timestamp[us, tz=UTC] (TIMESTAMP), timestamp[us]
// (TIMESTAMP_NTZ), decimal128(p,s), list (non-null elements named
// "element"), map (non-null values) and struct.
func (t Type) ArrowType() arrow.DataType {
	switch t.Kind {
	case Boolean:
		return arrow.FixedWidthTypes.Boolean
	case Byte:
		return arrow.PrimitiveTypes.Int8
	case Short:
		return arrow.PrimitiveTypes.Int16
	case Int:
		return arrow.PrimitiveTypes.Int32
	case Long:
		return arrow.PrimitiveTypes.Int64
	case Float:
		return arrow.PrimitiveTypes.Float32
	case Double:
		return arrow.PrimitiveTypes.Float64
	case String, Variant:
		return arrow.BinaryTypes.String
	case Binary:
		return arrow.BinaryTypes.Binary
	case Date:
		return arrow.FixedWidthTypes.Date32
	case Timestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case TimestampNTZ:
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case Decimal:
		return &arrow.Decimal128Type{Precision: int32(t.Precision), Scale: int32(t.Scale)}
	case Array:
		return arrow.ListOfField(arrow.Field{Name: "element", Type: elemOf(t.Elem).ArrowType()})
	case Map:
		return arrow.MapOfFields(
			arrow.Field{Name: "key", Type: elemOf(t.Key).ArrowType()},
			arrow.Field{Name: "value", Type: elemOf(t.Elem).ArrowType()})
	case Struct:
		return arrow.StructOf(arrowFields(t.Fields)...)
	}
	return arrow.Null
}

func arrowFields(cols []Column) []arrow.Field {
	fs := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fs[i] = arrow.Field{Name: c.Name, Type: c.Type.ArrowType(), Nullable: c.Nullable}
	}
	return fs
}

// ArrowSchema is the Arrow schema of a table with these columns, as
// ReadTable returns it.
func ArrowSchema(cols []Column) *arrow.Schema { return arrow.NewSchema(arrowFields(cols), nil) }
