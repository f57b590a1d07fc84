package zbwrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	want := Config{
		DebugFlushInterval: 5 * time.Second, DebugMaxFileSize: 100 << 20,
		DebugMaxFilesRetained: 10, RetryMaxAttempts: 5, RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: 30 * time.Second,
		MaxInflightRecords: 1_000_000, MaxInflightBytes: 64 << 20, MaxRequestBytes: 10<<20 - 64<<10,
		AckTimeout: time.Minute, FlushTimeout: 5 * time.Minute, StreamCreateTimeout: 15 * time.Second, Transport: "proto",
		ArrowCompression: "none", Streams: StreamsAuto, MaxStreams: 16,
	}
	if c != want {
		t.Fatalf("defaults\n got %v\nwant %v", c, want)
	}
}

func validConfig() Config {
	return Config{
		ZerobusEndpoint: "https://1234.zerobus.us-west-2.cloud.databricks.com",
		UnityCatalogURL: "https://dbc-1234.cloud.databricks.com",
		ClientID:        "id",
		ClientSecret:    "s3cr3t-value",
		TableName:       "main.default.events",
	}
}

// settingsOf lists the settings named by a Validate error.
func settingsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *Error
		if errors.As(err, &e) {
			out = append(out, e.Setting)
		}
	}
	walk(err)
	slices.Sort(out)
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		want   []string // settings reported
		custom bool     // a HeadersProvider is used
	}{
		{"valid", func(*Config) {}, nil, false},
		{"loopback plaintext", func(c *Config) {
			c.ZerobusEndpoint, c.UnityCatalogURL = "http://127.0.0.1:5000", "http://localhost:5001"
		}, nil, false},
		{"endpoint without scheme", func(c *Config) { c.ZerobusEndpoint = "1234.zerobus.example.com:443" }, nil, false},
		{"plaintext elsewhere", func(c *Config) {
			c.ZerobusEndpoint, c.UnityCatalogURL = "http://1234.zerobus.example.com", "http://dbc.example.com"
		}, []string{"unity_catalog_url", "zerobus_endpoint"}, false},
		{"everything wrong at once", func(c *Config) {
			*c = Config{
				ZerobusEndpoint: "ftp://x", TableName: "a.b", ObservabilityOTLPProtocol: "udp",
				DebugEnabled: true, DebugFlushInterval: -time.Second, DebugMaxFileSize: -1, DebugMaxFilesRetained: -2,
				RetryMaxAttempts: -1, RetryBaseDelay: 500 * time.Millisecond, RetryMaxDelay: 100 * time.Millisecond, MaxInflightRecords: -1,
				MaxInflightBytes: -1, MaxRequestBytes: 20 << 20, AckTimeout: -time.Millisecond, FlushTimeout: -time.Millisecond,
				StreamCreateTimeout: -time.Millisecond, Transport: "json", Streams: StreamsLimit + 1, MaxStreams: -1, ArrowCompression: "gzip",
			}
		}, []string{"ack_timeout_ms", "arrow_compression", "client_id", "client_secret", "debug_flush_interval_secs", "debug_max_file_size",
			"debug_max_files_retained", "debug_output_dir", "flush_timeout_ms", "max_inflight_bytes", "max_inflight_records",
			"max_request_bytes", "max_streams", "observability_otlp_protocol", "retry_base_delay_ms", "retry_max_attempts",
			"stream_create_timeout_ms", "streams", "table_name", "transport", "unity_catalog_url", "zerobus_endpoint"}, false},
		{"arrow transport", func(c *Config) { c.Transport, c.ArrowCompression = TransportArrow, "zstd" }, nil, false},
		{"arrow transport, lz4", func(c *Config) { c.Transport, c.ArrowCompression = TransportArrow, "lz4" }, nil, false},
		{"compression in upper case", func(c *Config) { c.ArrowCompression = "LZ4" }, []string{"arrow_compression"}, false},
		{"table name characters", func(c *Config) { c.TableName = "main.default.my-table" }, []string{"table_name"}, false},
		{"table name empty part", func(c *Config) { c.TableName = "main..t" }, []string{"table_name"}, false},
		{"no table", func(c *Config) { c.TableName = "" }, []string{"table_name"}, false},
		{"request too small", func(c *Config) { c.MaxRequestBytes = 10 }, []string{"max_request_bytes"}, false},
		{"url with credentials", func(c *Config) { c.UnityCatalogURL = "https://u:p@dbc.example.com" }, []string{"unity_catalog_url"}, false},
		{"url with query", func(c *Config) { c.ZerobusEndpoint = "https://x.example.com/?a=1" }, []string{"zerobus_endpoint"}, false},
		{"url without host", func(c *Config) { c.UnityCatalogURL = "https:///path" }, []string{"unity_catalog_url"}, false},
		{"url unparsable", func(c *Config) { c.UnityCatalogURL = "https://%zz" }, []string{"unity_catalog_url"}, false},
		{"otlp endpoint scheme", func(c *Config) { c.ObservabilityOTLPEndpoint = "grpc://collector:4317" }, []string{"observability_otlp_endpoint"}, false},
		{"otlp endpoint host:port", func(c *Config) { c.ObservabilityOTLPEndpoint = "collector:4317" }, nil, false},
		{"otlp endpoint url", func(c *Config) {
			c.ObservabilityOTLPEndpoint, c.ObservabilityOTLPProtocol = "http://127.0.0.1:4318", "http"
		}, nil, false},
		{"headers provider needs no credentials", func(c *Config) {
			c.ClientID, c.ClientSecret, c.UnityCatalogURL = "", "", ""
		}, nil, true},
		{"headers provider still checks a given URL", func(c *Config) {
			c.UnityCatalogURL = "http://dbc.example.com"
		}, []string{"unity_catalog_url"}, true},
		{"writer disabled needs only the table", func(c *Config) {
			*c = Config{TableName: "main.default.events", ZerobusWriterDisabled: true}
		}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mod(&c)
			err := c.validate(tt.custom)
			if got := settingsOf(err); !slices.Equal(got, tt.want) {
				t.Fatalf("settings reported %v, want %v (err: %v)", got, tt.want, err)
			}
			if err != nil {
				if !errors.Is(err, ErrConfiguration) {
					t.Fatalf("%v is not ErrConfiguration", err)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Fatal("secret in a validation error")
				}
			}
		})
	}
	if err := validConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	var e *Error
	c := validConfig()
	c.ZerobusEndpoint = "http://10.0.0.1:443"
	if err := c.Validate(); !errors.As(err, &e) || !strings.Contains(e.Error(), "zerobus_endpoint: plaintext http:// is allowed only for a loopback host") {
		t.Fatalf("error %v", err)
	}
}

// sampleValue returns a distinctive value for a field, as YAML/env text.
func sampleValue(f reflect.StructField) string {
	switch f.Type.Kind() {
	case reflect.Bool:
		return "true"
	case reflect.Int, reflect.Int64:
		return "7"
	}
	return "v-" + yamlKey(f)
}

// checkAllSet fails unless every field of c holds its sample value.
func checkAllSet(t *testing.T, c Config) {
	t.Helper()
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if got := fmt.Sprint(v.Field(i).Interface()); f.Type == reflect.TypeFor[Secret]() {
			if string(v.Field(i).Interface().(Secret)) != sampleValue(f) {
				t.Errorf("%s not set", yamlKey(f))
			}
		} else if f.Type == durationType {
			// Written as 7 in the key's unit.
			if want := 7 * durationUnit(yamlKey(f)); v.Field(i).Interface() != want {
				t.Errorf("%s = %s, want %v", yamlKey(f), got, want)
			}
		} else if got != sampleValue(f) {
			t.Errorf("%s = %s, want %s", yamlKey(f), got, sampleValue(f))
		}
	}
}

func TestEveryFieldFromEnvironment(t *testing.T) {
	env := map[string]string{}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		env[EnvVar(yamlKey(typ.Field(i)))] = sampleValue(typ.Field(i))
	}
	if _, ok := env["ZEROBUS_ENDPOINT"]; !ok {
		t.Fatalf("zerobus_endpoint's variable is not ZEROBUS_ENDPOINT: %v", env)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	checkAllSet(t, c)
}

func TestEveryFieldFromYAML(t *testing.T) {
	var doc strings.Builder
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		fmt.Fprintf(&doc, "%s: %s\n", yamlKey(typ.Field(i)), sampleValue(typ.Field(i)))
	}
	path := filepath.Join(t.TempDir(), "zerobus.yaml")
	if err := os.WriteFile(path, []byte(doc.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	checkAllSet(t, c)
}

func TestEveryFieldFromJSON(t *testing.T) {
	doc := map[string]any{}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if j, _, _ := strings.Cut(f.Tag.Get("json"), ","); j != yamlKey(f) {
			t.Errorf("%s: JSON key %q, YAML key %q", f.Name, j, yamlKey(f))
		}
		switch v := sampleValue(f); f.Type.Kind() {
		case reflect.Bool:
			doc[yamlKey(f)] = true
		case reflect.Int, reflect.Int64:
			doc[yamlKey(f)] = 7
		default:
			doc[yamlKey(f)] = v
		}
	}
	data, _ := json.Marshal(doc)
	c, err := ParseConfigJSON(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkAllSet(t, c)
}

func TestConfigJSON(t *testing.T) {
	// Python's json.dumps escapes a character beyond the BMP as a surrogate
	// pair; encoding/json reads it as the one character.
	c, err := ParseConfigJSON([]byte(`{"table_name": "a.b.\ud83d\ude00", "debug_max_files_retained": 0, "client_secret": "[REDACTED]"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TableName != "a.b.😀" {
		t.Errorf("table_name = %q, want a.b.😀", c.TableName)
	}
	if c.DebugMaxFilesRetained != KeepAllDebugFiles {
		t.Errorf("debug_max_files_retained = %d, want KeepAllDebugFiles: an explicit 0 keeps all", c.DebugMaxFilesRetained)
	}
	if c.ClientSecret != "" {
		t.Errorf("the [REDACTED] placeholder must read as empty")
	}
	if c, _ := ParseConfigJSON([]byte(`{}`), nil); c.DebugMaxFilesRetained != DefaultDebugMaxFilesRetained {
		t.Errorf("debug_max_files_retained left out = %d, want the default", c.DebugMaxFilesRetained)
	}
	const secret = "12345678901234"
	for _, tc := range []struct{ doc, setting string }{
		{`{"no_such_setting": 1}`, "no_such_setting"},
		{`{"client_secret": ` + secret + `}`, "client_secret"},
		{`{"retry_max_attempts": 1.5}`, "retry_max_attempts"},
		{`{"debug_enabled": "yes"}`, "debug_enabled"},
		{`{"table_name": "a.b.c"} {}`, ""},
		{`[1]`, ""},
		{`{"table_name": `, ""},
	} {
		_, err := ParseConfigJSON([]byte(tc.doc), nil)
		if got := settingsOf(err); !errors.Is(err, ErrConfiguration) || !slices.Equal(got, []string{tc.setting}) {
			t.Errorf("%s: settings %q, want [%q]: %v", tc.doc, got, tc.setting, err)
		}
		if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "1.5")) {
			t.Errorf("%s: the error shows the value: %v", tc.doc, err)
		}
	}
}

func TestDecodeConfigEmbedded(t *testing.T) {
	type own struct {
		Config    `yaml:",inline"`
		BatchRows int    `json:"batch_rows" yaml:"batch_rows"`
		CAFile    string `json:"ca_file" yaml:"ca_file"`
	}
	env := map[string]string{"ZEROBUS_CA_FILE": "ca.pem", "ZEROBUS_RETRY_MAX_ATTEMPTS": "3"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		format ConfigFormat
		doc    string
	}{
		{ConfigYAML, "table_name: a.b.c\nbatch_rows: 5\ndebug_max_files_retained: 0\n"},
		{ConfigJSON, `{"table_name": "a.b.c", "batch_rows": 5, "debug_max_files_retained": 0}`},
	} {
		var s own
		if err := DecodeConfig([]byte(tc.doc), tc.format, &s, lookup); err != nil {
			t.Fatalf("%s: %v", tc.doc, err)
		}
		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"table_name", s.TableName, "a.b.c"},
			{"batch_rows", s.BatchRows, 5},
			{"ca_file", s.CAFile, "ca.pem"},
			{"retry_max_attempts", s.RetryMaxAttempts, 3},
			{"debug_max_files_retained", s.DebugMaxFilesRetained, KeepAllDebugFiles},
			{"flush_timeout_ms", s.FlushTimeout, DefaultFlushTimeout},
		} {
			if c.got != c.want {
				t.Errorf("%s: %s = %v, want %v", tc.doc, c.name, c.got, c.want)
			}
		}
		if err := DecodeConfig([]byte(tc.doc), tc.format, &s, func(k string) (string, bool) {
			return "many", k == "ZEROBUS_BATCH_ROWS"
		}); !slices.Equal(settingsOf(err), []string{"batch_rows"}) {
			t.Errorf("%s: a bad ZEROBUS_BATCH_ROWS gave %v", tc.doc, err)
		}
	}
	var s own
	if err := DecodeConfig([]byte(`{"unknown": 1}`), ConfigJSON, &s, nil); !slices.Equal(settingsOf(err), []string{"unknown"}) {
		t.Errorf("unknown key: %v", err)
	}
	err := DecodeConfig([]byte("table_name: a.b.c\nunknown: 1\nbatch_rows: many\nretry_max_attempts:\n  - 1\n"), ConfigYAML, &s, nil)
	if got := settingsOf(err); !slices.Equal(got, []string{"batch_rows", "retry_max_attempts", "unknown"}) {
		t.Errorf("YAML errors name %q: %v", got, err)
	}
	for _, bad := range []any{s, &struct{ A int }{}, (*own)(nil)} {
		if err := DecodeConfig(nil, ConfigYAML, bad, nil); !errors.Is(err, ErrConfiguration) {
			t.Errorf("DecodeConfig(%T): %v", bad, err)
		}
	}
}

func TestEveryFieldFromOptions(t *testing.T) {
	opts := []Option{
		WithEndpoint("e"), WithUnityCatalogURL("u"), WithClientID("i"), WithClientSecret("s"), WithTableName("t"),
		WithObservability(true), WithOTLPEndpoint("o"), WithOTLPProtocol("http"), WithObservabilityStdout(true),
		WithDebug(true), WithDebugArrow(true), WithDebugProtobuf(true), WithDebugOutputDir("d"),
		WithDebugFlushInterval(7 * time.Second), WithDebugMaxFileSize(7), WithDebugMaxFilesRetained(7),
		WithRetryMaxAttempts(7), WithRetryBaseDelay(7 * time.Millisecond), WithRetryMaxDelay(7 * time.Millisecond),
		WithWriterDisabled(true), WithMaxInflightRecords(7), WithMaxInflightBytes(7), WithMaxRequestBytes(7),
		WithRecovery(false), WithAckTimeout(7 * time.Millisecond), WithFlushTimeout(7 * time.Millisecond),
		WithStreamCreateTimeout(time.Microsecond), WithTransport("x"), WithArrowCompression("lz4"), WithStreams(7), WithMaxStreams(7),
		WithApplicationName("app"),
	}
	var s settings
	for _, o := range opts {
		o(&s)
	}
	v := reflect.ValueOf(s.cfg)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("no option sets %s", yamlKey(v.Type().Field(i)))
		}
	}
	if s.cfg.StreamCreateTimeout != time.Microsecond {
		t.Errorf("durations are kept as given: got %v, want 1µs", s.cfg.StreamCreateTimeout)
	}
}

func TestEnvironmentPrecedence(t *testing.T) {
	yamlDoc := []byte("unity_catalog_url: https://from-yaml.example.com\nclient_id: yaml-id\ntable_name: a.b.c\n")
	env := map[string]string{
		"DATABRICKS_HOST":          "https://from-databricks-host.example.com",
		"DATABRICKS_CLIENT_ID":     "databricks-id",
		"DATABRICKS_CLIENT_SECRET": "databricks-secret",
		"ZEROBUS_CLIENT_ID":        "zerobus-id",
		"ZEROBUS_ZEROBUS_ENDPOINT": "https://doubled.example.com",
		"ZEROBUS_TABLE_NAME":       " x.y.z ",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := ParseConfig(yamlDoc, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.UnityCatalogURL != "https://from-yaml.example.com" {
		t.Errorf("DATABRICKS_HOST overrode YAML: %q", c.UnityCatalogURL)
	}
	if c.ClientID != "zerobus-id" {
		t.Errorf("ZEROBUS_CLIENT_ID must win: %q", c.ClientID)
	}
	if c.ClientSecret != "databricks-secret" {
		t.Errorf("DATABRICKS_CLIENT_SECRET must fill an empty secret")
	}
	if c.ZerobusEndpoint != "https://doubled.example.com" || c.TableName != "x.y.z" {
		t.Errorf("endpoint %q table %q", c.ZerobusEndpoint, c.TableName)
	}
	env["ZEROBUS_ENDPOINT"] = "https://short.example.com"
	if c, _ = ParseConfig(nil, lookup); c.ZerobusEndpoint != "https://short.example.com" || c.UnityCatalogURL != env["DATABRICKS_HOST"] {
		t.Errorf("endpoint %q url %q", c.ZerobusEndpoint, c.UnityCatalogURL)
	}
}

func TestConfigLoadErrors(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, ErrConfiguration) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	for _, doc := range []string{"unknown_key: 1\n", "retry_max_attempts: many\n", "client_secret: [1, 2]\n", ": :\n"} {
		if _, err := ParseConfig([]byte(doc), nil); !errors.Is(err, ErrConfiguration) {
			t.Errorf("YAML %q: %v", doc, err)
		}
	}
	env := map[string]string{"ZEROBUS_RETRY_MAX_ATTEMPTS": "many", "ZEROBUS_DEBUG_ENABLED": "maybe", "ZEROBUS_MAX_INFLIGHT_BYTES": "99999999999999999999"}
	_, err := ParseConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if got := settingsOf(err); !slices.Equal(got, []string{"debug_enabled", "max_inflight_bytes", "retry_max_attempts"}) {
		t.Fatalf("env errors %v: %v", got, err)
	}
	if !strings.Contains(err.Error(), "ZEROBUS_RETRY_MAX_ATTEMPTS") {
		t.Fatalf("error does not name the variable: %v", err)
	}
	t.Setenv("ZEROBUS_ACK_TIMEOUT_MS", "soon")
	if _, err := ConfigFromEnv(); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	if err := setField(reflect.ValueOf(&struct{ F float64 }{}).Elem().Field(0), "1", time.Millisecond); err == nil {
		t.Fatal("float field accepted")
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const secret = "dose-very-secret-42"
	c := validConfig()
	c.ClientSecret = secret
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", c, "ptr", &c)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", c)
	js, _ := json.Marshal(c)
	ym, _ := yaml.Marshal(c)
	outputs := map[string]string{
		"String": c.String(), "GoString": c.GoString(),
		//lint:ignore S1025 every verb is what the test checks, %s among them
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "%s": fmt.Sprintf("%s", c),
		"%v ptr": fmt.Sprintf("%v", &c), "%+v ptr": fmt.Sprintf("%+v", &c), "%#v ptr": fmt.Sprintf("%#v", &c),
		"secret %v": fmt.Sprintf("%v", c.ClientSecret), "secret %#v": fmt.Sprintf("%#v", c.ClientSecret),
		"secret %q": fmt.Sprintf("%q", c.ClientSecret), "secret %x": fmt.Sprintf("%x", c.ClientSecret),
		"json": string(js), "yaml": string(ym), "slog": logged.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s prints the secret: %s", name, out)
		}
		if !strings.Contains(out, "[REDACTED]") && !strings.Contains(out, fmt.Sprintf("%x", "[REDACTED]")) {
			t.Errorf("%s hides the secret without saying so: %s", name, out)
		}
	}
	if !strings.Contains(c.String(), `table_name: "main.default.events"`) || !strings.Contains(c.GoString(), `TableName:"main.default.events"`) {
		t.Errorf("String/GoString lost the settings: %s / %s", c.String(), c.GoString())
	}
	// A printed configuration reads back without the secret, which the
	// environment can then supply.
	back, err := ParseConfig(ym, func(k string) (string, bool) {
		if k == "DATABRICKS_CLIENT_SECRET" {
			return secret, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if back.ClientSecret != secret || back.TableName != c.TableName || back.ClientID != c.ClientID {
		t.Fatalf("round trip: %v", back)
	}
	back, _ = ParseConfig(ym, nil)
	if back.ClientSecret != "" {
		t.Fatal("the placeholder was read as a secret")
	}
	if Secret("").String() != "" {
		t.Fatal("an empty secret prints as redacted")
	}
}

func TestNewRejectsInvalidSettings(t *testing.T) {
	if _, err := New(context.Background(), Config{}); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("empty config: %v", err)
	}
	c := validConfig()
	_, err := New(context.Background(), c, WithTLSConfig(insecureTLS()))
	var e *Error
	if !errors.As(err, &e) || e.Setting != "tls" {
		t.Fatalf("InsecureSkipVerify: %v", err)
	}
	w, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if w.Config().RetryMaxAttempts != 5 || w.Config().TableName != c.TableName {
		t.Fatalf("effective config %v", w.Config())
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

// debug_max_files_retained: 0 written out keeps every rotated file; left out
// it is the default. In a Config literal, zero is the default and
// KeepAllDebugFiles keeps all.
func TestDebugMaxFilesRetainedZeroKeepsAll(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       int
	}{
		{"left out", "table_name: a.b.c\n", nil, DefaultDebugMaxFilesRetained},
		{"yaml 0", "debug_max_files_retained: 0\n", nil, KeepAllDebugFiles},
		{"yaml 3", "debug_max_files_retained: 3\n", nil, 3},
		{"env 0", "debug_max_files_retained: 3\n", map[string]string{"ZEROBUS_DEBUG_MAX_FILES_RETAINED": "0"}, KeepAllDebugFiles},
		{"env 4", "", map[string]string{"ZEROBUS_DEBUG_MAX_FILES_RETAINED": "4"}, 4},
	} {
		lookup := none
		if tc.env != nil {
			lookup = func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		}
		c, err := ParseConfig([]byte(tc.yaml), lookup)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.DebugMaxFilesRetained != tc.want {
			t.Errorf("%s: debug_max_files_retained = %d, want %d", tc.name, c.DebugMaxFilesRetained, tc.want)
		}
	}
	if got := (Config{}).withDefaults().DebugMaxFilesRetained; got != DefaultDebugMaxFilesRetained {
		t.Errorf("a Config literal's zero gives %d, want the default", got)
	}
	c := validConfig()
	c.DebugMaxFilesRetained = -2
	if err := c.withDefaults().validate(false); err == nil || !strings.Contains(err.Error(), "debug_max_files_retained") {
		t.Errorf("-2 should be refused naming the setting, got %v", err)
	}
}

func TestDurationSettings(t *testing.T) {
	lookup := func(env map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
	// Whole numbers are in the key's unit; duration strings are read as such.
	for _, tc := range []struct {
		name   string
		doc    string
		format ConfigFormat
		env    map[string]string
	}{
		{"yaml numbers", "ack_timeout_ms: 1500\ndebug_flush_interval_secs: 2\nretry_base_delay_ms: 16\n", ConfigYAML, nil},
		{"yaml strings", "ack_timeout_ms: 1.5s\ndebug_flush_interval_secs: \"2s\"\nretry_base_delay_ms: 16ms\n", ConfigYAML, nil},
		{"json numbers", `{"ack_timeout_ms": 1500, "debug_flush_interval_secs": 2, "retry_base_delay_ms": 16}`, ConfigJSON, nil},
		{"json strings", `{"ack_timeout_ms": "1.5s", "debug_flush_interval_secs": "2s", "retry_base_delay_ms": "16ms"}`, ConfigJSON, nil},
		{"environment", "", ConfigYAML, map[string]string{
			"ZEROBUS_ACK_TIMEOUT_MS": "1500", "ZEROBUS_DEBUG_FLUSH_INTERVAL_SECS": "2s", "ZEROBUS_RETRY_BASE_DELAY_MS": " 16 "}},
		{"environment over yaml", "ack_timeout_ms: 9\n", ConfigYAML, map[string]string{
			"ZEROBUS_ACK_TIMEOUT_MS": "1.5s", "ZEROBUS_DEBUG_FLUSH_INTERVAL_SECS": "2", "ZEROBUS_RETRY_BASE_DELAY_MS": "16"}},
	} {
		var c Config
		if err := DecodeConfig([]byte(tc.doc), tc.format, &c, lookup(tc.env)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.AckTimeout != 1500*time.Millisecond || c.DebugFlushInterval != 2*time.Second || c.RetryBaseDelay != 16*time.Millisecond {
			t.Errorf("%s: ack_timeout_ms %v, debug_flush_interval_secs %v, retry_base_delay_ms %v",
				tc.name, c.AckTimeout, c.DebugFlushInterval, c.RetryBaseDelay)
		}
		if c.FlushTimeout != DefaultFlushTimeout {
			t.Errorf("%s: a duration left out is not its default: %v", tc.name, c.FlushTimeout)
		}
	}
	// null leaves the default.
	c, err := ParseConfigJSON([]byte(`{"ack_timeout_ms": null}`), nil)
	if err != nil || c.AckTimeout != DefaultAckTimeout {
		t.Errorf("null: %v, %v", c.AckTimeout, err)
	}
	// Each bad value is named, with what it should be.
	for _, tc := range []struct {
		doc    string
		format ConfigFormat
		want   []string
		msg    string
	}{
		{"ack_timeout_ms: soon\nflush_timeout_ms: true\nretry_max_delay_ms: [1]\n", ConfigYAML,
			[]string{"ack_timeout_ms", "flush_timeout_ms", "retry_max_delay_ms"}, "whole number of milliseconds"},
		{"debug_flush_interval_secs: 1.5\n", ConfigYAML, []string{"debug_flush_interval_secs"}, "whole number of seconds"},
		{"ack_timeout_ms: 99999999999999999\n", ConfigYAML, []string{"ack_timeout_ms"}, "out of range"},
		{`{"ack_timeout_ms": "soon", "flush_timeout_ms": 1.5, "retry_max_delay_ms": [1], "retry_base_delay_ms": {}}`, ConfigJSON,
			[]string{"ack_timeout_ms", "flush_timeout_ms", "retry_base_delay_ms", "retry_max_delay_ms"}, "a JSON array"},
		{`{"stream_create_timeout_ms": false}`, ConfigJSON, []string{"stream_create_timeout_ms"}, "a JSON boolean"},
	} {
		var c Config
		err := DecodeConfig([]byte(tc.doc), tc.format, &c, nil)
		if got := settingsOf(err); !slices.Equal(got, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: settings %v, error %v; want %v and %q", tc.doc, got, err, tc.want, tc.msg)
		}
	}
	t.Setenv("ZEROBUS_FLUSH_TIMEOUT_MS", "1.5")
	if _, err := ConfigFromEnv(); !strings.Contains(fmt.Sprint(err), "ZEROBUS_FLUSH_TIMEOUT_MS") {
		t.Errorf("a fractional millisecond count: %v", err)
	}
	// A negative duration is a validation error naming the setting.
	c = validConfig()
	c.AckTimeout = -time.Second
	if err := c.Validate(); !slices.Equal(settingsOf(err), []string{"ack_timeout_ms"}) || !strings.Contains(err.Error(), "-1s") {
		t.Errorf("negative ack timeout: %v", err)
	}
}

func TestEncodeConfigJSON(t *testing.T) {
	type own struct {
		Config   `yaml:",inline"`
		Patience time.Duration `json:"patience_secs" yaml:"patience_secs"`
	}
	src := own{Config: DefaultConfig(), Patience: 3 * time.Second}
	src.AckTimeout = 1500 * time.Millisecond
	src.RetryBaseDelay = 10 * time.Microsecond // below the unit: one unit, never zero (the default)
	src.DebugFlushInterval = 2500 * time.Millisecond
	b, err := EncodeConfigJSON(&src)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]float64{"ack_timeout_ms": 1500, "retry_base_delay_ms": 1,
		"debug_flush_interval_secs": 3, "flush_timeout_ms": 300000, "patience_secs": 3} {
		if obj[key] != want {
			t.Errorf("%s = %v, want %v", key, obj[key], want)
		}
	}
	if obj["client_secret"] != nil && obj["client_secret"] != "" {
		t.Errorf("client_secret = %v", obj["client_secret"])
	}
	var back own
	if err := DecodeConfig(b, ConfigJSON, &back, nil); err != nil {
		t.Fatal(err)
	}
	if back.AckTimeout != src.AckTimeout || back.Patience != src.Patience || back.RetryBaseDelay != time.Millisecond {
		t.Errorf("round trip: %v %v %v", back.AckTimeout, back.Patience, back.RetryBaseDelay)
	}
	for _, bad := range []any{nil, "x", struct{ F func() }{func() {}}} {
		if _, err := EncodeConfigJSON(bad); err == nil {
			t.Errorf("EncodeConfigJSON(%T) accepted", bad)
		}
	}
}
