// Package testutil holds helpers shared by the tests of the module's
// packages. Nothing outside tests imports it.
package testutil

import (
	"reflect"
	"testing"
	"time"
)

// EventuallyTimeout is how long Eventually waits: long enough for a loaded
// machine running the race detector.
const EventuallyTimeout = 10 * time.Second

// Eventually polls cond until it holds; if it does not within
// EventuallyTimeout, the test fails at once, "timed out waiting for" what.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(EventuallyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A Field is a named value of a result and the value it should have; see
// Check.
type Field struct {
	name      string
	got, want any
}

// Want is the field name of a result: got, which should equal want.
func Want[T any](name string, got, want T) Field { return Field{name, got, want} }

// Check reports each field that differs from its wanted value, by name
// ("what: name = got, want want"), and reports whether all matched. Values
// are compared with reflect.DeepEqual.
func Check(tb testing.TB, what string, fields ...Field) bool {
	tb.Helper()
	ok := true
	for _, f := range fields {
		if !reflect.DeepEqual(f.got, f.want) {
			tb.Errorf("%s: %s = %v, want %v", what, f.name, f.got, f.want)
			ok = false
		}
	}
	return ok
}

// Require is Check that ends the test when a field differs.
func Require(tb testing.TB, what string, fields ...Field) {
	tb.Helper()
	if !Check(tb, what, fields...) {
		tb.FailNow()
	}
}
