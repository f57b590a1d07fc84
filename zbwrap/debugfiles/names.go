package debugfiles

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// File names. The Python readers (pyzerobus/debug.py) compute the same names:
// change both together.
const (
	// maxNameLen is the longest file name most file systems accept.
	maxNameLen = 255
	// stampLayout is a rotated file's UTC time to the millisecond. "Z" alone
	// is not a zone directive in Go layouts, so it is written as is.
	stampLayout = "20060102T150405.000Z"
	// seqDigits is the width of a rotated file's sequence number, which wraps
	// around rather than grow.
	seqDigits = 6
	seqModulo = 1_000_000
	// damagedSuffix ends the name of a file set aside after a failure.
	damagedSuffix = "~"
	// rotatedSuffixLen is what a rotation adds to "<base>" at most:
	// ".20261127T101500.123Z.000042" plus the longest extension, ".arrows",
	// and damagedSuffix.
	rotatedSuffixLen = 1 + len(stampLayout) + 1 + seqDigits + 1 + len(extArrow) + len(damagedSuffix)
	// maxBaseLen leaves room for rotatedSuffixLen within maxNameLen.
	maxBaseLen = maxNameLen - rotatedSuffixLen
	// hashLen is the number of hex digits of the table name's SHA-256 added
	// to a base that had to be changed.
	hashLen = 16
)

// The file types and their extensions.
const (
	extArrow = "arrows"
	extProto = "pb"
	extDesc  = "desc"
)

// rotatedTail matches the end of a rotated name's stem; a table name ending
// this way is hashed so that its active file can never pass for another
// table's rotated file.
var rotatedTail = regexp.MustCompile(`\.[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.[0-9]{6}$`)

// fileBase is the stem of a table's file names. A table name made of ASCII
// letters, digits, '.', '_' and '-' (not starting with '.') that fits is used
// as it is. Otherwise each other byte becomes '_', a leading '.' becomes '_',
// the result is cut to fit, and "-" plus the first 16 hex digits of the
// SHA-256 of the table name is appended, so distinct tables keep distinct
// files and the same table always gets the same name.
func fileBase(table string) string {
	safe := []byte(table)
	for i, c := range safe {
		if !isSafe(c) || (i == 0 && c == '.') {
			safe[i] = '_'
		}
	}
	s := string(safe)
	if s == table && len(s) <= maxBaseLen && !rotatedTail.MatchString(s) {
		return s
	}
	sum := sha256.Sum256([]byte(table))
	keep := min(len(s), maxBaseLen-1-hashLen)
	return s[:keep] + "-" + hex.EncodeToString(sum[:])[:hashLen]
}

func isSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// rotatedName is "<base>.<UTC stamp>.<seq>.<ext>": names of one base sort
// chronologically and all have the same length.
func rotatedName(base string, at time.Time, seq int, ext string) string {
	return fmt.Sprintf("%s.%s.%0*d.%s", base, at.UTC().Format(stampLayout), seqDigits, seq%seqModulo, ext)
}

// rotatedPattern matches exactly the rotated files of base with extension
// ext, and captures the "<stamp>.<seq>" part.
func rotatedPattern(base, ext string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(base) +
		`\.([0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.[0-9]{6})\.` + regexp.QuoteMeta(ext) + `$`)
}

// matchRotated returns the names that match re, oldest first.
func matchRotated(names []string, re *regexp.Regexp) []string {
	var out []string
	for _, n := range names {
		if re.MatchString(n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// stamper hands out the time and sequence number of each rotation of one
// file type. Times never go backwards (a clock stepping back would break the
// order) and a sequence number that wraps around moves the time on by a
// millisecond, so (time, seq) always increases.
type stamper struct {
	last time.Time
	seq  int
}

func (s *stamper) next(now time.Time) (time.Time, int) {
	now = now.UTC().Truncate(time.Millisecond)
	if now.Before(s.last) {
		now = s.last
	}
	s.seq = (s.seq + 1) % seqModulo
	if s.seq == 0 && !now.After(s.last) {
		now = s.last.Add(time.Millisecond)
	}
	s.last = now
	return now, s.seq
}
