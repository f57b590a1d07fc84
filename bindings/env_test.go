package bindings

import (
	"os"
	"testing"
)

func TestSetOTelEnvironment(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "before")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
	t.Setenv("NOT_OTEL", "kept")
	err := SetOTelEnvironment(`{"OTEL_SERVICE_NAME":"after","OTEL_EXPORTER_OTLP_ENDPOINT":"http://127.0.0.1:4318"}`)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"OTEL_SERVICE_NAME":           "after",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		"NOT_OTEL":                    "kept",
	} {
		if got, ok := os.LookupEnv(k); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", k, got, ok, want)
		}
	}
	t.Cleanup(func() { _ = os.Unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT") })
	for _, k := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_METRIC_EXPORT_INTERVAL"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s left set to %q", k, v)
		}
	}

	// A refused call changes nothing.
	for _, bad := range []string{`{"PATH":"/tmp","OTEL_SERVICE_NAME":"x"}`, `{"OTEL_A=B":"x"}`, `[1]`, `not json`} {
		err := SetOTelEnvironment(bad)
		if e := errorOf(t, err); e.Kind != "configuration" {
			t.Fatalf("%s: %v", bad, err)
		}
		if got := os.Getenv("OTEL_SERVICE_NAME"); got != "after" {
			t.Fatalf("%s changed OTEL_SERVICE_NAME to %q", bad, got)
		}
	}
	if err := SetOTelEnvironment(`{}`); err != nil {
		t.Fatal(err)
	}
	if v, ok := os.LookupEnv("OTEL_SERVICE_NAME"); ok {
		t.Fatalf("OTEL_SERVICE_NAME left set to %q", v)
	}
}
