//go:build zbwrap_notelemetry

package zbwrap

import (
	"context"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
)

const telemetryCompiled = false

// openTelemetry does nothing in this build: no telemetry.
func (w *Wrapper) openTelemetry(context.Context) error { return nil }

func (w *Wrapper) recordResult(*TransmissionResult) {}

func kindID(Kind) string { return "" }

func outcome(*TransmissionResult, error) telemetry.Outcome { return telemetry.Outcome{} }
