package bindings

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"strings"

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
	// DefaultMaxConcurrentBatches is how many chunks a Wrapper with one
	// stream converts and sends at once (all operations together), when
	// max_concurrent_batches is 0. With the service's ~150 ms to durability,
	// what moves is what is in flight divided by that time: 16 chunks of
	// about 1 MiB keep one stream at its quota (4 moved 122,000 rows/s of
	// 214 bytes under 150 ms of ack latency, 16 moved 470,000; on loopback
	// both the same).
	DefaultMaxConcurrentBatches = 16
	// ChunksPerStream is the default's share per stream the Wrapper may use
	// (streams, or max_streams with streams: auto) when there are several:
	// as in zbwrap (DefaultConcurrency), a stream waits on its slowest
	// request, so each needs about half a second of its quota in flight.
	ChunksPerStream = 8
)

// settings is a parsed configuration: the engine's settings and the
// facade's own, read from one document by zbwrap.DecodeConfig.
type settings struct {
	zbwrap.Config `yaml:",inline"`

	TLSCAFile            string `json:"tls_ca_file" yaml:"tls_ca_file"`
	BatchRows            int    `json:"batch_rows" yaml:"batch_rows"`
	BatchBytes           int    `json:"batch_bytes" yaml:"batch_bytes"`
	MaxConcurrentBatches int    `json:"max_concurrent_batches" yaml:"max_concurrent_batches"`
}

// parseSettings reads a configuration in format, then the environment
// given as a map (nil: none: ZEROBUS_* for the facade's settings too), and
// fills defaults. Every bad key or value is reported as a problem.
func parseSettings(text string, format zbwrap.ConfigFormat, env map[string]string) (settings, error) {
	var lookup func(string) (string, bool)
	if env != nil {
		lookup = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
	var s settings
	if err := zbwrap.DecodeConfig([]byte(text), format, &s, lookup); err != nil {
		return settings{}, configError(nil, err)
	}
	s.fillDefaults()
	return s, nil
}

func (s *settings) fillDefaults() {
	if s.BatchRows == 0 {
		s.BatchRows = DefaultBatchRows
	}
	if s.BatchBytes == 0 {
		s.BatchBytes = DefaultBatchBytes
	}
}

// concurrency is max_concurrent_batches, or its default when 0: 16, or 8
// per stream the Wrapper may use when that is more (with streams: auto,
// limiter follows the streams open, up to that).
func (s *settings) concurrency() int {
	if s.MaxConcurrentBatches > 0 {
		return s.MaxConcurrentBatches
	}
	streams := s.Streams
	if streams == zbwrap.StreamsAuto {
		streams = s.MaxStreams
	}
	return max(DefaultMaxConcurrentBatches, ChunksPerStream*streams)
}

// limiter bounds the chunks in flight of zw's sends: max_concurrent_batches
// if set; else, with streams: auto, 8 per stream open plus one stream's
// worth (at least 16, at most concurrency()), so that a load one stream
// carries keeps 16 chunks in flight and a backfill gets more as auto opens
// streams; else concurrency().
func (s *settings) limiter(zw *zbwrap.Wrapper) *zbwrap.Limiter {
	if s.MaxConcurrentBatches == 0 && s.Streams == zbwrap.StreamsAuto {
		return zbwrap.NewStreamLimiter(zw, ChunksPerStream, DefaultMaxConcurrentBatches)
	}
	return zbwrap.NewLimiter(s.concurrency())
}

// problems are those of the facade's own settings but tls_ca_file, which
// rootCAs checks.
func (s *settings) problems() []problem {
	var probs []problem
	for _, n := range []struct {
		setting string
		v       int
	}{
		{"batch_rows", s.BatchRows},
		{"batch_bytes", s.BatchBytes},
		{"max_concurrent_batches", s.MaxConcurrentBatches},
	} {
		if n.v < 0 {
			probs = append(probs, problem{Setting: n.setting, Message: fmt.Sprintf("must not be negative, got %d", n.v)})
		}
	}
	return probs
}

// rootCAs loads tls_ca_file, if set.
func (s *settings) rootCAs() (*x509.CertPool, error) {
	if s.TLSCAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(s.TLSCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", s.TLSCAFile)
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
	b, _ := zbwrap.EncodeConfigJSON(struct {
		settings
		// Shallower than zbwrap.Config's field, which encodes as
		// [REDACTED], so this one is encoded.
		ClientSecret string `json:"client_secret"`
	}{s, string(s.ClientSecret)})
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
	s, err := parseSettings(text, zbwrap.ConfigYAML, env)
	if err != nil {
		return "", err
	}
	return s.toJSON(), nil
}

// DefaultConfig returns every setting's default as a JSON object.
func DefaultConfig() (out string, err error) {
	defer recoverError(&err)
	s := settings{Config: zbwrap.DefaultConfig()}
	s.fillDefaults()
	return s.toJSON(), nil
}

// ValidateConfig checks a configuration (a JSON object as ParseConfig
// returns) and reports every problem at once in one configuration error,
// each problem naming its setting. With customHeaders (a headers provider
// replaces OAuth), the OAuth settings are not required.
func ValidateConfig(configJSON string, customHeaders bool) (err error) {
	defer recoverError(&err)
	s, err := parseSettings(configJSON, zbwrap.ConfigJSON, nil)
	if err != nil {
		return err
	}
	probs := s.problems()
	if _, err := s.rootCAs(); err != nil {
		probs = append(probs, problem{Setting: "tls_ca_file", Message: err.Error()})
	}
	var opts []zbwrap.Option
	if customHeaders { // a provider replaces OAuth: its credentials are not needed
		opts = append(opts, zbwrap.WithHeadersProvider(newHeaderBox()))
	}
	verr := s.Validate(opts...)
	if verr != nil || len(probs) > 0 {
		return configError(probs, verr)
	}
	return nil
}

// Version is the engine's version.
func Version() string { return zbwrap.Version }
