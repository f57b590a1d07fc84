package bindings

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// logCapacity bounds the log records kept between two drains; older ones
// are dropped (and counted).
const logCapacity = 1000

// logRecord is the JSON form of one engine log record.
type logRecord struct {
	Time    float64        `json:"time"` // seconds since the Unix epoch
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

// logBuffer is an slog.Handler that keeps records for the Python side to
// pull (Go must not call into Python).
type logBuffer struct {
	level   slog.Level
	mu      sync.Mutex
	records []logRecord
	dropped int
}

// logHandler is a logBuffer with the attributes and groups of With calls.
type logHandler struct {
	buf    *logBuffer
	attrs  []slog.Attr // keys prefixed with the groups open when they were added
	prefix string      // the open groups, "a.b."
}

func newLogHandler(level slog.Level) *logHandler {
	return &logHandler{buf: &logBuffer{level: level}}
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.buf.level }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{
		Time:    float64(r.Time.UnixNano()) / float64(time.Second),
		Level:   strings.ToLower(r.Level.String()),
		Message: r.Message,
	}
	add := func(prefix string, a slog.Attr) {
		if rec.Attrs == nil {
			rec.Attrs = map[string]any{}
		}
		v := a.Value.Resolve()
		switch v.Kind() {
		case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool:
			rec.Attrs[prefix+a.Key] = v.Any()
		default:
			rec.Attrs[prefix+a.Key] = v.String()
		}
	}
	for _, a := range h.attrs { // keys already carry the groups of their With call
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool { add(h.prefix, a); return true })
	b := h.buf
	b.mu.Lock()
	if len(b.records) >= logCapacity {
		b.records = b.records[1:]
		b.dropped++
	}
	b.records = append(b.records, rec)
	b.mu.Unlock()
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = append(c.attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// drain returns the kept records as JSON lines (and a warning record for
// dropped ones), or "" when there are none.
func (b *logBuffer) drain() string {
	b.mu.Lock()
	recs, dropped := b.records, b.dropped
	b.records, b.dropped = nil, 0
	b.mu.Unlock()
	if dropped > 0 {
		recs = append([]logRecord{{
			Time: float64(time.Now().UnixNano()) / float64(time.Second), Level: "warn",
			Message: "engine log records dropped", Attrs: map[string]any{"dropped": dropped},
		}}, recs...)
	}
	var sb strings.Builder
	for _, r := range recs {
		line, _ := json.Marshal(r) // plain values only
		sb.Write(line)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// parseLevel maps a Python logging level number to slog's.
func parseLevel(pyLevel int) slog.Level {
	switch {
	case pyLevel <= 10: // DEBUG
		return slog.LevelDebug
	case pyLevel <= 20: // INFO
		return slog.LevelInfo
	case pyLevel <= 30: // WARNING
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}
