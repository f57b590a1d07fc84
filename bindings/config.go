package bindings

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pyzerobus/pyzerobus/zbwrap"
)

// Settings of the facade itself, beside zbwrap.Config's.
const (
	// DefaultBatchRows is the largest chunk of rows sent as one batch.
	DefaultBatchRows = 10_000
	// DefaultBatchBytes bounds a chunk by the Arrow bytes of its rows too:
	// wide rows go in chunks of fewer rows, which pipeline better (1 KiB
	// rows: 1,000-row chunks moved about 35% more than 10,000-row ones).
	DefaultBatchBytes = 1 << 20
	// DefaultMaxConcurrentBatches is how many chunks a Wrapper converts and
	// sends at once (all operations together).
	DefaultMaxConcurrentBatches = 4
)

// extras are the facade's settings: keys a zbwrap YAML file would refuse.
type extras struct {
	TLSCAFile            string `json:"tls_ca_file"`
	BatchRows            int    `json:"batch_rows"`
	BatchBytes           int    `json:"batch_bytes"`
	MaxConcurrentBatches int    `json:"max_concurrent_batches"`
}

var extraKeys = []string{"tls_ca_file", "batch_rows", "batch_bytes", "max_concurrent_batches"}

// settings is a parsed configuration: the engine's and the facade's.
type settings struct {
	cfg zbwrap.Config
	ext extras
}

// parseSettings reads YAML (or JSON) text, then the environment given as a
// map (nil: none), the way zbwrap.ParseConfig does, and pulls out the
// facade's own keys first. Every bad value is reported as a problem.
func parseSettings(text string, env map[string]string) (settings, error) {
	s, probs, err := parse(text, env)
	if err != nil || len(probs) > 0 {
		return settings{}, configError(probs, err)
	}
	return s, nil
}

// parse is parseSettings that returns the problems of the facade's settings
// apart from the engine's error, so that validation can go on.
func parse(text string, env map[string]string) (settings, []problem, error) {
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		return settings{}, nil, &zbwrap.Error{Kind: zbwrap.KindConfiguration, Op: "load config", Msg: "invalid YAML", Err: err}
	}
	var s settings
	var probs []problem
	for _, key := range extraKeys {
		v, ok := raw[key]
		delete(raw, key)
		envName := zbwrap.EnvVar(key)
		if ev, found := env[envName]; found {
			v, ok = strings.TrimSpace(ev), true
		}
		if !ok || v == nil {
			continue
		}
		if err := s.ext.set(key, v); err != nil {
			probs = append(probs, problem{Setting: key, Message: err.Error()})
		}
	}
	rest, _ := yaml.Marshal(raw) // a decoded map always encodes
	var lookup func(string) (string, bool)
	if env != nil {
		lookup = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
	cfg, err := zbwrap.ParseConfig(rest, lookup)
	if err != nil {
		return settings{}, probs, err
	}
	s.cfg = cfg
	s.ext.fillDefaults()
	return s, probs, nil
}

// set assigns one facade setting from a YAML/JSON/env value.
func (x *extras) set(key string, v any) error {
	if key == "tls_ca_file" {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("must be a path, got %v", v)
		}
		x.TLSCAFile = s
		return nil
	}
	var n int
	switch t := v.(type) {
	case int:
		n = t
	case string:
		var err error
		if n, err = strconv.Atoi(t); err != nil {
			return fmt.Errorf("%q is not an integer", t)
		}
	default:
		return fmt.Errorf("must be an integer, got %v", v)
	}
	if n < 0 {
		return fmt.Errorf("must not be negative, got %d", n)
	}
	switch key {
	case "batch_rows":
		x.BatchRows = n
	case "batch_bytes":
		x.BatchBytes = n
	default:
		x.MaxConcurrentBatches = n
	}
	return nil
}

func (x *extras) fillDefaults() {
	if x.BatchRows == 0 {
		x.BatchRows = DefaultBatchRows
	}
	if x.BatchBytes == 0 {
		x.BatchBytes = DefaultBatchBytes
	}
	if x.MaxConcurrentBatches == 0 {
		x.MaxConcurrentBatches = DefaultMaxConcurrentBatches
	}
}

// rootCAs loads tls_ca_file, if set.
func (x *extras) rootCAs() (*x509.CertPool, error) {
	if x.TLSCAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(x.TLSCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", x.TLSCAFile)
	}
	return pool, nil
}

// configError is a configuration error listing every problem: the facade's
// own and those of the zbwrap error err (which may be nil).
func configError(probs []problem, err error) error {
	info := errorInfo{Kind: kindConfig, Op: "config"}
	var msgs []string
	for _, p := range probs {
		msgs = append(msgs, p.Setting+": "+p.Message)
	}
	if err != nil {
		for _, l := range leaves(err) {
			if l.Setting != "" {
				probs = append(probs, problem{Setting: l.Setting, Message: l.Msg})
			}
		}
		msgs = append(msgs, err.Error())
	}
	info.Problems = probs
	info.Message = strings.Join(msgs, "; ")
	return &facadeError{info}
}

// toJSON encodes the settings with every key, the secret in clear: the
// result stays inside the process (the Python configuration object, whose
// repr hides it).
func (s settings) toJSON() string {
	out := map[string]any{}
	v := reflect.ValueOf(s.cfg)
	t := v.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		f := v.Field(i)
		if f.Type() == reflect.TypeOf(zbwrap.Secret("")) {
			out[key] = f.String() // the underlying string, not Secret.String
			continue
		}
		out[key] = f.Interface()
	}
	out["tls_ca_file"] = s.ext.TLSCAFile
	out["batch_rows"] = s.ext.BatchRows
	out["batch_bytes"] = s.ext.BatchBytes
	out["max_concurrent_batches"] = s.ext.MaxConcurrentBatches
	b, _ := json.Marshal(out) // plain values only
	return string(b)
}

// ParseConfig reads a configuration in YAML (JSON is YAML too), applies the
// environment given as a JSON object of variable names to values (the
// ZEROBUS_* and DATABRICKS_* variables; "" or "null" for none), fills
// defaults and returns every setting as a JSON object keyed by the YAML
// names, the client secret included. It does not validate.
func ParseConfig(text string, envJSON string) (out string, err error) {
	defer recoverError(&err)
	var env map[string]string
	if envJSON != "" {
		if err := json.Unmarshal([]byte(envJSON), &env); err != nil {
			return "", newError(kindConfig, "load config", "environment: %v", err)
		}
	}
	s, err := parseSettings(text, env)
	if err != nil {
		return "", err
	}
	return s.toJSON(), nil
}

// DefaultConfig returns every setting's default as a JSON object.
func DefaultConfig() (out string, err error) {
	defer recoverError(&err)
	s := settings{cfg: zbwrap.DefaultConfig()}
	s.ext.fillDefaults()
	return s.toJSON(), nil
}

// ValidateConfig checks a configuration (a JSON object as ParseConfig
// returns) and reports every problem at once in one configuration error,
// each problem naming its setting.
func ValidateConfig(configJSON string) (err error) {
	defer recoverError(&err)
	s, probs, err := parse(configJSON, nil)
	if err != nil {
		return configError(probs, err)
	}
	if _, err := s.ext.rootCAs(); err != nil {
		probs = append(probs, problem{Setting: "tls_ca_file", Message: err.Error()})
	}
	verr := s.cfg.Validate()
	if verr != nil || len(probs) > 0 {
		return configError(probs, verr)
	}
	return nil
}

// Version is the engine's version.
func Version() string { return zbwrap.Version }
