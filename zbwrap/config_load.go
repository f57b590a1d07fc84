package zbwrap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

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
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, &Error{Kind: KindConfiguration, Op: "load config", Msg: "invalid YAML", Err: err}
	}
	var set struct { // settings whose explicit 0 differs from leaving them out
		Retained *int `yaml:"debug_max_files_retained"`
	}
	_ = yaml.Unmarshal(data, &set) // the strict decode above accepted data
	if set.Retained != nil && *set.Retained == 0 {
		c.DebugMaxFilesRetained = KeepAllDebugFiles
	}
	if lookup != nil {
		if err := c.applyEnv(lookup); err != nil {
			return Config{}, err
		}
	}
	return c.withDefaults(), nil
}

// ConfigFromEnv builds a Config from the environment alone: ZEROBUS_<KEY>
// for every setting, and DATABRICKS_HOST, DATABRICKS_CLIENT_ID,
// DATABRICKS_CLIENT_SECRET for unity_catalog_url, client_id and
// client_secret when those are still empty.
func ConfigFromEnv() (Config, error) {
	var c Config
	if err := c.applyEnv(os.LookupEnv); err != nil {
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

// applyEnv overrides settings from ZEROBUS_* variables and fills empty
// credentials from DATABRICKS_* ones. Every bad value is reported.
func (c *Config) applyEnv(lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	var errs []error
	for i := range t.NumField() {
		key := yamlKey(t.Field(i))
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
		if err := setField(v.Field(i), strings.TrimSpace(val)); err != nil {
			errs = append(errs, &Error{Kind: KindConfiguration, Op: "environment", Setting: key,
				Msg: fmt.Sprintf("%s: %v", name, err)})
		} else if key == "debug_max_files_retained" && c.DebugMaxFilesRetained == 0 {
			c.DebugMaxFilesRetained = KeepAllDebugFiles // set to 0: keep all
		}
	}
	return errors.Join(errs...)
}

func setField(f reflect.Value, s string) error {
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
