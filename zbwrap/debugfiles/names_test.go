package debugfiles

import (
	"strings"
	"testing"
	"time"
)

func TestFileBase(t *testing.T) {
	long := strings.Repeat("t", 200)
	tests := []struct {
		table string
		want  string // "" when the name is hashed
		keep  string // prefix a hashed name keeps
	}{
		{table: "events", want: "events"},
		{table: "main.app.events", want: "main.app.events"},
		{table: "Main_App-2.x", want: "Main_App-2.x"},
		{table: strings.Repeat("a", maxBaseLen), want: strings.Repeat("a", maxBaseLen)},
		{table: strings.Repeat("a", maxBaseLen+1), keep: strings.Repeat("a", maxBaseLen-17)},
		{table: long, want: long},
		{table: long + long, keep: strings.Repeat("t", maxBaseLen-17)},
		{table: "main.app.`ev ents`", keep: "main.app._ev_ents_"},
		{table: "a/b", keep: "a_b"},
		{table: "a_b", want: "a_b"},
		{table: "..", keep: "_."},
		{table: ".hidden", keep: "_hidden"},
		{table: "événements", keep: "__v__nements"},
		{table: "x.20261127T101500.123Z.000042", keep: "x.20261127T101500.123Z.000042"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := fileBase(tt.table)
		if tt.want != "" && got != tt.want {
			t.Errorf("fileBase(%q) = %q, want %q", tt.table, got, tt.want)
		}
		if tt.want == "" {
			if !strings.HasPrefix(got, tt.keep+"-") || len(got) != len(tt.keep)+1+hashLen {
				t.Errorf("fileBase(%q) = %q, want %q-<16 hex digits>", tt.table, got, tt.keep)
			}
		}
		if len(got) > maxBaseLen {
			t.Errorf("fileBase(%q) is %d bytes, more than %d", tt.table, len(got), maxBaseLen)
		}
		if got != fileBase(tt.table) {
			t.Errorf("fileBase(%q) is not deterministic", tt.table)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("fileBase(%q) = fileBase(%q) = %q", tt.table, other, got)
		}
		seen[got] = tt.table
		for _, ext := range []string{extArrow, extProto, extDesc} {
			at := time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
			if n := rotatedName(got, at, seqModulo-1, ext) + damagedSuffix; len(n) > maxNameLen {
				t.Errorf("rotated name %q is %d bytes", n, len(n))
			}
		}
	}
	// A hashed name's active file cannot pass for a rotated one.
	if rotatedTail.MatchString(fileBase("x.20261127T101500.123Z.000042")) {
		t.Error("a table named like a rotated file kept its name")
	}
}

func TestRotatedName(t *testing.T) {
	at := time.Date(2026, 11, 27, 11, 15, 0, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		seq  int
		ext  string
		want string
	}{
		{42, extArrow, "events.20261127T101500.123Z.000042.arrows"},
		{0, extProto, "events.20261127T101500.123Z.000000.pb"},
		{999_999, extDesc, "events.20261127T101500.123Z.999999.desc"},
		{1_000_001, extArrow, "events.20261127T101500.123Z.000001.arrows"},
	}
	for _, tt := range tests {
		got := rotatedName("events", at, tt.seq, tt.ext)
		if got != tt.want {
			t.Errorf("rotatedName(seq %d) = %q, want %q", tt.seq, got, tt.want)
		}
		if !rotatedPattern("events", tt.ext).MatchString(got) {
			t.Errorf("%q does not match the rotated pattern", got)
		}
	}
}

func TestRotatedPatternIsExact(t *testing.T) {
	re := rotatedPattern("events", extArrow)
	for name, want := range map[string]bool{
		"events.20261127T101500.123Z.000042.arrows": true,
		"events.arrows": false,
		"events2.20261127T101500.123Z.000042.arrows":      false,
		"xevents.20261127T101500.123Z.000042.arrows":      false,
		"events.x.20261127T101500.123Z.000042.arrows":     false,
		"events.20261127T101500.123Z.000042.arrows.tmp":   false,
		"events.20261127T101500.123Z.000042.pb":           false,
		"events.20261127T101500.123Z.0000420.arrows":      false,
		"events.20261127T101500.12Z.000042.arrows":        false,
		".events.20261127T101500.123Z.000042.arrows":      false,
		"events.20261127T101500.123Z.000042.arrowsarrows": false,
	} {
		if got := re.MatchString(name); got != want {
			t.Errorf("match %q = %v, want %v", name, got, want)
		}
	}
	// A base with regexp metacharacters is matched literally.
	if rotatedPattern("a.b", extArrow).MatchString("aXb.20261127T101500.123Z.000042.arrows") {
		t.Error(`"." in a base matched any byte`)
	}
}

func TestStamperOrders(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	var s stamper
	var names []string
	clock := []time.Time{t0, t0, t0.Add(-time.Hour), t0.Add(time.Millisecond), t0.Add(time.Millisecond)}
	for _, now := range clock {
		at, n := s.next(now)
		names = append(names, rotatedName("t", at, n, extArrow))
	}
	// Wrap the sequence number within one millisecond.
	s.seq = seqModulo - 2
	for range 3 {
		at, n := s.next(t0)
		names = append(names, rotatedName("t", at, n, extArrow))
	}
	for i := 1; i < len(names); i++ {
		if names[i] <= names[i-1] {
			t.Errorf("%q does not sort after %q", names[i], names[i-1])
		}
		if len(names[i]) != len(names[0]) {
			t.Errorf("%q and %q differ in length", names[i], names[0])
		}
	}
}
