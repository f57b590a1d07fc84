package bindings

import (
	"os"
	"slices"
	"testing"
)

func TestSetOTelEnvironment(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "process")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Cleanup(func() {
		otelEnv.Lock()
		otelEnv.vars = nil
		otelEnv.Unlock()
	})
	before := os.Environ()
	err := SetOTelEnvironment(`{"OTEL_SERVICE_NAME":"after","OTEL_EXPORTER_OTLP_ENDPOINT":"http://127.0.0.1:4318"}`)
	if err != nil {
		t.Fatal(err)
	}
	lookup := otelLookup()
	for k, want := range map[string]string{
		"OTEL_SERVICE_NAME":           "after",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
	} {
		if got, ok := lookup(k); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", k, got, ok, want)
		}
	}
	if v, ok := lookup("OTEL_EXPORTER_OTLP_PROTOCOL"); ok {
		t.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL, not handed over, read as %q from the process", v)
	}
	if after := os.Environ(); !slices.Equal(before, after) {
		t.Errorf("the process environment changed:\nbefore %q\nafter  %q", before, after)
	}

	// A refused call changes nothing; a Wrapper's lookup keeps its copy.
	for _, bad := range []string{`{"PATH":"/tmp","OTEL_SERVICE_NAME":"x"}`, `{"OTEL_A=B":"x"}`, `[1]`, `not json`} {
		err := SetOTelEnvironment(bad)
		if e := errorOf(t, err); e.Kind != "configuration" {
			t.Fatalf("%s: %v", bad, err)
		}
		if got, _ := otelLookup()("OTEL_SERVICE_NAME"); got != "after" {
			t.Fatalf("%s changed OTEL_SERVICE_NAME to %q", bad, got)
		}
	}
	if err := SetOTelEnvironment(`{}`); err != nil {
		t.Fatal(err)
	}
	if v, ok := otelLookup()("OTEL_SERVICE_NAME"); ok {
		t.Fatalf("OTEL_SERVICE_NAME still set to %q", v)
	}
	if got, _ := lookup("OTEL_SERVICE_NAME"); got != "after" {
		t.Fatalf("an earlier lookup changed to %q", got)
	}
}
