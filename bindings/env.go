package bindings

import (
	"encoding/json"
	"strings"
	"sync"
)

// otelPrefix is the prefix of the OpenTelemetry SDK's environment variables.
const otelPrefix = "OTEL_"

// otelEnv holds the OTEL_* variables the Python process last handed over
// (SetOTelEnvironment). Like os.environ, of which it is a copy, it belongs
// to the process; each NewWrapper takes the map as it is then for the
// lookup of its exporters. The map is replaced, never changed, so a
// Wrapper's copy stays as it was.
var otelEnv struct {
	sync.Mutex
	vars map[string]string // nil until the first hand-over
}

// SetOTelEnvironment gives the engine the caller's OpenTelemetry
// environment: envJSON maps each OTEL_* variable of the Python process to
// its value. Wrappers created from then on read those variables, and no
// other OTEL_* variable, through zbwrap.WithEnvLookup; the process
// environment is left alone. (The Go runtime copies the environment when
// the module loads, so a variable Python sets or removes later in
// os.environ would otherwise never reach the exporters.) Before the first
// call, wrappers read the process environment. Keys without the OTEL_
// prefix are refused, and nothing is changed then.
func SetOTelEnvironment(envJSON string) (err error) {
	defer recoverError(&err)
	var want map[string]string
	if err := json.Unmarshal([]byte(envJSON), &want); err != nil {
		return newError(kindConfig, "environment", "OTEL_* variables: %v", err)
	}
	for k := range want {
		if !strings.HasPrefix(k, otelPrefix) || strings.ContainsAny(k, "=\x00") {
			return newError(kindConfig, "environment", "%q is not an OTEL_* variable", k)
		}
	}
	if want == nil { // JSON null: no variables
		want = map[string]string{}
	}
	otelEnv.Lock()
	otelEnv.vars = want
	otelEnv.Unlock()
	return nil
}

// otelLookup is the lookup of the OTEL_* variables last handed over, nil
// (the process environment) before any.
func otelLookup() func(string) (string, bool) {
	otelEnv.Lock()
	vars := otelEnv.vars
	otelEnv.Unlock()
	if vars == nil {
		return nil
	}
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}
