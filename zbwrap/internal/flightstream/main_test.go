package flightstream

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (streams, calls, the scripted server) is
// gone when it ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
