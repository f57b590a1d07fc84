package zbwrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LoadConfig reads a YAML file whose keys are the snake_case setting names
// (unknown keys are an error), then applies the environment (see
// ConfigFromEnv), then fills defaults. It does not validate: New does, or
// call Validate.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &Error{Kind: KindConfiguration, Op: "load config", Err: err}
	}
	return ParseConfig(data, os.LookupEnv)
}

// ParseConfig is LoadConfig on YAML bytes with an explicit environment
// lookup (os.LookupEnv, or nil for none).
func ParseConfig(data []byte, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	if err := DecodeConfig(data, ConfigYAML, &c, lookup); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ParseConfigJSON is ParseConfig on a JSON object with the same keys.
func ParseConfigJSON(data []byte, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	if err := DecodeConfig(data, ConfigJSON, &c, lookup); err != nil {
		return Config{}, err
	}
	return c, nil
}

// A ConfigFormat is the syntax of a configuration document.
type ConfigFormat int

const (
	// ConfigYAML is YAML (JSON, being YAML, reads too).
	ConfigYAML ConfigFormat = iota
	// ConfigJSON is a JSON object read by encoding/json: strict JSON, its
	// escapes included (a "\ud83d\ude00" surrogate pair is one character).
	ConfigJSON
)

// DecodeConfig reads a configuration document into dst, then applies the
// environment (lookup, nil for none) and fills defaults, as ParseConfig
// does. dst is a *Config, or a pointer to a struct that embeds Config beside
// settings of the caller's own, so that one document holds both and unknown
// keys are still refused:
//
//	type settings struct {
//		zbwrap.Config `yaml:",inline"`
//		BatchRows     int `json:"batch_rows" yaml:"batch_rows"`
//	}
//
// The caller's settings, string, bool and integer fields, take
// ZEROBUS_<KEY> variables too; their zero values and their validation are
// the caller's. In YAML and JSON, debug_max_files_retained set to 0 keeps
// every file (KeepAllDebugFiles). Every bad environment value is reported;
// of a JSON document's wrong types, the first. On error, dst holds what was
// read so far.
func DecodeConfig(data []byte, format ConfigFormat, dst any, lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return &Error{Kind: KindConfiguration, Op: "load config", Msg: fmt.Sprintf("DecodeConfig needs a pointer to a struct, got %T", dst)}
	}
	c := embeddedConfig(v.Elem())
	if c == nil {
		return &Error{Kind: KindConfiguration, Op: "load config", Msg: fmt.Sprintf("%T embeds no zbwrap.Config", dst)}
	}
	var err error
	var retained *int // set: an explicit 0 differs from leaving it out
	units := durationKeys(v.Elem().Type())
	if format == ConfigJSON {
		retained, err = decodeJSON(data, dst, units)
	} else {
		retained, err = decodeYAML(data, dst, units)
	}
	if err != nil {
		return err
	}
	if retained != nil && *retained == 0 {
		c.DebugMaxFilesRetained = KeepAllDebugFiles
	}
	if lookup != nil {
		if err := applyEnv(v.Elem(), lookup); err != nil {
			return err
		}
	}
	*c = c.withDefaults()
	return nil
}

// embeddedConfig is v itself if it is a Config, else its embedded Config.
func embeddedConfig(v reflect.Value) *Config {
	if c, ok := v.Addr().Interface().(*Config); ok {
		return c
	}
	t := v.Type()
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && f.Type == reflect.TypeFor[Config]() {
			return v.Field(i).Addr().Interface().(*Config)
		}
	}
	return nil
}

func decodeYAML(data []byte, dst any, units map[string]time.Duration) (*int, error) {
	data, err := yamlDurations(data, units)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, yamlErrors(data, te)
		}
		return nil, &Error{Kind: KindConfiguration, Op: "load config", Msg: "invalid YAML", Err: err}
	}
	var set struct {
		Retained *int `yaml:"debug_max_files_retained"`
	}
	_ = yaml.Unmarshal(data, &set) // the strict decode above accepted data
	return set.Retained, nil
}

// yamlErrors reports each error of a well-formed document (an unknown key,
// a value of the wrong type) with the setting on its line.
func yamlErrors(data []byte, te *yaml.TypeError) error {
	keys := map[int]string{} // line -> top-level key
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0].Content
		for i := 0; i+1 < len(m); i += 2 {
			keys[m[i+1].Line] = m[i].Value
			keys[m[i].Line] = m[i].Value
		}
	}
	var errs []error
	for _, msg := range te.Errors {
		var line int
		if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
			_, msg, _ = strings.Cut(msg, ": ")
		}
		e := &Error{Kind: KindConfiguration, Op: "load config", Setting: keys[line], Msg: msg}
		if strings.HasPrefix(msg, "field ") && strings.Contains(msg, " not found in type ") {
			e.Msg = "unknown setting"
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func decodeJSON(data []byte, dst any, units map[string]time.Duration) (*int, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	data, err := jsonDurations(data, units)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		return nil, jsonError(err)
	}
	var set struct {
		Retained *int `json:"debug_max_files_retained"`
	}
	_ = json.Unmarshal(data, &set) // the strict decode above accepted data
	return set.Retained, nil
}

// jsonError names the setting of an unknown key or a wrong type; it never
// shows the value, which may be a secret.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		key := te.Field[strings.LastIndex(te.Field, ".")+1:]
		got, _, _ := strings.Cut(te.Value, " ") // "number 1.5": the kind alone
		return &Error{Kind: KindConfiguration, Op: "load config", Setting: key,
			Msg: fmt.Sprintf("must be %s, got a JSON %s", kindName(te.Type.Kind()), got)}
	}
	// encoding/json has no type for this error; its text is stable.
	if q, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if key, uerr := strconv.Unquote(q); uerr == nil {
			return &Error{Kind: KindConfiguration, Op: "load config", Setting: key, Msg: "unknown setting"}
		}
	}
	return &Error{Kind: KindConfiguration, Op: "load config", Msg: "invalid JSON", Err: err}
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	default:
		return k.String()
	}
}

// ConfigFromEnv builds a Config from the environment alone: ZEROBUS_<KEY>
// for every setting, and DATABRICKS_HOST, DATABRICKS_CLIENT_ID,
// DATABRICKS_CLIENT_SECRET for unity_catalog_url, client_id and
// client_secret when those are still empty.
func ConfigFromEnv() (Config, error) {
	var c Config
	if err := applyEnv(reflect.ValueOf(&c).Elem(), os.LookupEnv); err != nil {
		return Config{}, err
	}
	return c.withDefaults(), nil
}

// EnvVar returns the environment variable of a setting (its YAML key).
func EnvVar(key string) string {
	return "ZEROBUS_" + strings.ToUpper(strings.TrimPrefix(key, "zerobus_"))
}

// databricksFallbacks fill settings still empty after YAML and ZEROBUS_*.
var databricksFallbacks = [...][2]string{
	{"unity_catalog_url", "DATABRICKS_HOST"},
	{"client_id", "DATABRICKS_CLIENT_ID"},
	{"client_secret", "DATABRICKS_CLIENT_SECRET"},
}

// applyEnv overrides the settings of v, a Config or a struct embedding
// one, from ZEROBUS_* variables and fills empty credentials from
// DATABRICKS_* ones. Every bad value is reported.
func applyEnv(v reflect.Value, lookup func(string) (string, bool)) error {
	t := v.Type()
	var errs []error
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type == reflect.TypeFor[Config]() {
			errs = append(errs, applyEnv(v.Field(i), lookup))
			continue
		}
		key := settingKey(sf)
		if key == "" || !sf.IsExported() {
			continue
		}
		name := EnvVar(key)
		val, ok := lookup(name)
		if !ok && strings.HasPrefix(key, "zerobus_") {
			name = "ZEROBUS_" + strings.ToUpper(key)
			val, ok = lookup(name)
		}
		if !ok {
			for _, fb := range databricksFallbacks {
				if fb[0] == key && v.Field(i).IsZero() {
					name = fb[1]
					val, ok = lookup(name)
				}
			}
		}
		if !ok {
			continue
		}
		f := v.Field(i)
		val = strings.TrimSpace(val)
		var err error
		if names := namedValues[key]; names != nil {
			var n int64
			if n, err = namedValue(names, val); err == nil {
				f.SetInt(n)
			}
		} else {
			err = setField(f, val, durationUnit(key))
		}
		if err != nil {
			errs = append(errs, &Error{Kind: KindConfiguration, Op: "environment", Setting: key,
				Msg: fmt.Sprintf("%s: %v", name, err)})
		} else if key == "debug_max_files_retained" && f.Int() == 0 {
			f.SetInt(KeepAllDebugFiles) // set to 0: keep all
		}
	}
	return errors.Join(errs...)
}

// settingKey is a field's key: its YAML name, else its JSON name.
func settingKey(f reflect.StructField) string {
	if k := yamlKey(f); k != "" && k != "-" {
		return k
	}
	k, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if k == "-" {
		return ""
	}
	return k
}

func setField(f reflect.Value, s string, unit time.Duration) error {
	if f.Type() == durationType {
		d, err := parseDuration(s, true, unit)
		if err != nil {
			return fmt.Errorf("%q %s", s, err)
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || f.OverflowInt(n) {
			return fmt.Errorf("%q is not an integer", s)
		}
		f.SetInt(n)
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}

// Durations are time.Duration in Go and, in documents and the environment,
// whole numbers of their key's unit (_ms, _secs) or duration strings
// ("1.5s", as YAML and String print them). The decoders turn those
// numbers into durations before decoding, and EncodeConfigJSON turns them
// back, so that neither Config nor a struct embedding it needs marshalling
// methods (which embedding would promote over the embedder's own fields).

var durationType = reflect.TypeFor[time.Duration]()

// durationUnit is the unit of a duration setting's key.
func durationUnit(key string) time.Duration {
	if strings.HasSuffix(key, "_secs") {
		return time.Second
	}
	return time.Millisecond
}

// durationKeys maps the key of every duration setting of t (a Config or a
// struct embedding one) to its unit.
func durationKeys(t reflect.Type) map[string]time.Duration {
	keys := map[string]time.Duration{}
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Anonymous && f.Type.Kind() == reflect.Struct:
			for k, u := range durationKeys(f.Type) {
				keys[k] = u
			}
		case f.Type == durationType && f.IsExported():
			if k := settingKey(f); k != "" {
				keys[k] = durationUnit(k)
			}
		}
	}
	return keys
}

func toDuration(n int64, unit time.Duration) (time.Duration, bool) {
	d := time.Duration(n) * unit
	return d, d/unit == time.Duration(n)
}

// parseDuration reads a duration setting: a whole number in unit or, if
// text is true, also a duration string such as "1.5s".
func parseDuration(s string, text bool, unit time.Duration) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if d, ok := toDuration(n, unit); ok {
			return d, nil
		}
		return 0, errors.New("is out of range")
	}
	if text {
		if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		}
	}
	return 0, notDuration(unit)
}

func notDuration(unit time.Duration) error {
	name := "milliseconds"
	if unit == time.Second {
		name = "seconds"
	}
	return fmt.Errorf("is not a whole number of %s or a duration such as 1.5s", name)
}

func durationError(key, got string, err error) error {
	return &Error{Kind: KindConfiguration, Op: "load config", Setting: key, Msg: fmt.Sprintf("%s %s", got, err)}
}

// yamlDurations rewrites the values of duration settings in a YAML mapping
// as duration strings, which the YAML decoder reads into time.Duration.
func yamlDurations(data []byte, units map[string]time.Duration) ([]byte, error) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return data, nil // the strict decode reports what is wrong
	}
	m := doc.Content[0].Content
	changed := false
	var errs []error
	for i := 0; i+1 < len(m); i += 2 {
		unit, ok := units[m[i].Value]
		val := m[i+1]
		if names := namedValues[m[i].Value]; names != nil && val.Kind == yaml.ScalarNode &&
			(val.ShortTag() == "!!str" || val.ShortTag() == "!!int") {
			n, err := namedValue(names, val.Value)
			if err != nil {
				errs = append(errs, &Error{Kind: KindConfiguration, Op: "load config", Setting: m[i].Value, Msg: err.Error()})
				continue
			}
			val.Tag, val.Value, val.Style = "!!int", strconv.FormatInt(n, 10), 0
			changed = true
			continue
		}
		if !ok || val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null" {
			continue
		}
		tag := val.ShortTag()
		if val.Kind != yaml.ScalarNode || tag != "!!int" && tag != "!!str" {
			errs = append(errs, durationError(m[i].Value, "a "+strings.TrimPrefix(tag, "!!"), notDuration(unit)))
			continue
		}
		d, err := parseDuration(val.Value, tag == "!!str", unit)
		if err != nil {
			errs = append(errs, durationError(m[i].Value, strconv.Quote(val.Value), err))
			continue
		}
		val.Tag, val.Value, val.Style = "!!str", d.String(), 0
		changed = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if !changed {
		return data, nil
	}
	return yaml.Marshal(&doc)
}

// jsonDurations rewrites the values of duration settings in a JSON object
// as nanoseconds, which encoding/json reads into time.Duration.
func jsonDurations(data []byte, units map[string]time.Duration) ([]byte, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return data, nil // the strict decode reports what is wrong
	}
	changed := false
	var errs []error
	for key, raw := range obj {
		if names := namedValues[key]; names != nil && len(raw) > 0 && (raw[0] == '"' || raw[0] == '-') {
			text := string(raw)
			if raw[0] == '"' && json.Unmarshal(raw, &text) != nil {
				continue // the strict decode reports it
			}
			n, err := namedValue(names, text)
			if err != nil {
				errs = append(errs, &Error{Kind: KindConfiguration, Op: "load config", Setting: key, Msg: err.Error()})
				continue
			}
			obj[key] = json.RawMessage(strconv.FormatInt(n, 10))
			changed = true
			continue
		}
		unit, ok := units[key]
		if !ok || string(raw) == "null" {
			continue
		}
		text := string(raw)
		isString := raw[0] == '"'
		if isString {
			if json.Unmarshal(raw, &text) != nil {
				continue // the strict decode reports it
			}
		} else if raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9' {
			// A number: whole, in the key's unit.
		} else {
			errs = append(errs, durationError(key, "a JSON "+jsonKind(raw), notDuration(unit)))
			continue
		}
		d, err := parseDuration(text, isString, unit)
		if err != nil {
			errs = append(errs, durationError(key, strconv.Quote(text), err))
			continue
		}
		obj[key] = json.RawMessage(strconv.FormatInt(int64(d), 10))
		changed = true
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	if !changed {
		return data, nil
	}
	return json.Marshal(obj)
}

// jsonKind names the kind of a JSON value that is neither a number, a
// string nor null.
func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '[':
		return "array"
	case '{':
		return "object"
	default:
		return "boolean"
	}
}

// EncodeConfigJSON writes src, a Config or a pointer to a struct embedding
// one (what DecodeConfig reads), as a JSON object keyed by setting name,
// with durations in the unit of their keys (a positive duration below the
// unit counts as one unit, since zero means the default). What DecodeConfig
// reads from it is src again, up to that rounding. Secrets are written as
// their types marshal them ([REDACTED] for Secret).
func EncodeConfigJSON(src any) ([]byte, error) {
	t := reflect.TypeOf(src)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("EncodeConfigJSON needs a struct or a pointer to one, got %T", src)
	}
	b, err := json.Marshal(src)
	if err != nil {
		return nil, err
	}
	units := durationKeys(t)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	for key, names := range namedValues {
		for name, n := range names {
			if raw, ok := obj[key]; ok && string(raw) == strconv.FormatInt(n, 10) {
				obj[key] = json.RawMessage(strconv.Quote(name))
			}
		}
	}
	for key, unit := range units {
		raw, ok := obj[key]
		if !ok {
			continue
		}
		ns, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", key, err)
		}
		n := ns / int64(unit)
		if ns > 0 && ns%int64(unit) != 0 {
			n++ // never round a set duration down to zero, the default
		}
		obj[key] = json.RawMessage(strconv.FormatInt(n, 10))
	}
	return json.Marshal(obj)
}

// namedValues are the words some integer settings take in documents and
// the environment, beside numbers.
var namedValues = map[string]map[string]int64{
	"streams": {"auto": StreamsAuto},
}

// namedValue reads a word of names or a whole number that is not negative
// (negative numbers stand for the words in Go).
func namedValue(names map[string]int64, text string) (int64, error) {
	if n, ok := names[strings.ToLower(strings.TrimSpace(text))]; ok {
		return n, nil
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	words := slices.Sorted(maps.Keys(names))
	return 0, fmt.Errorf("must be a whole number or %s, got %q", strings.Join(words, " or "), text)
}
