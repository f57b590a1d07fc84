package bindings

import (
	"encoding/json"
	"os"
	"strings"
)

// otelPrefix is the prefix of the OpenTelemetry SDK's environment variables.
const otelPrefix = "OTEL_"

// SetOTelEnvironment makes the engine see the caller's OpenTelemetry
// environment: envJSON maps each OTEL_* variable of the Python process to
// its value; those are set and every other OTEL_* variable is unset. The Go
// runtime copies the environment when the module loads, so a variable
// Python sets or removes later (os.environ) would otherwise never reach the
// exporters. Keys without the OTEL_ prefix are refused, and nothing is
// changed then.
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
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, keep := want[k]; strings.HasPrefix(k, otelPrefix) && !keep {
			_ = os.Unsetenv(k)
		}
	}
	for k, v := range want {
		if err := os.Setenv(k, v); err != nil {
			return newError(kindConfig, "environment", "%s: %v", k, err)
		}
	}
	return nil
}
