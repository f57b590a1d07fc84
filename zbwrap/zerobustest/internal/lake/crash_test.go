package lake

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCrashChild is the process TestKillDuringIngest kills: it appends
// batches of ids forever, printing each acknowledged batch, while its
// materializer commits every few milliseconds.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("LAKE_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process of TestKillDuringIngest")
	}
	base, _ := strconv.Atoi(os.Getenv("LAKE_CRASH_BASE"))
	l, err := Open(Options{Dir: dir, MaterializeInterval: 3 * time.Millisecond, segmentSize: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	cols := mustColumns(t, idDDL)
	d := DescriptorFor("Row", cols)
	b, err := l.Bind("c.s.t", d, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bind:", err)
		os.Exit(2)
	}
	md := msgDesc(t, d)
	const size = 50
	for i := 0; ; i++ {
		first := base + i*size
		if err := <-b.Append(idRecords(t, md, first, size, "crash")); err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			os.Exit(2)
		}
		fmt.Printf("acked %d\n", first+size-1)
	}
}

// TestKillDuringIngest SIGKILLs a process writing to a lake at different
// moments, several times over one directory, and checks that every
// acknowledged record is in the Delta table exactly once.
func TestKillDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	const rounds = 4
	maxAcked := make([]int64, rounds)
	for r := range rounds {
		base := r * 1_000_000
		maxAcked[r] = int64(base) - 1
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), "LAKE_CRASH_DIR="+dir, "LAKE_CRASH_BASE="+strconv.Itoa(base))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 3 + r*9 // batches acknowledged before the kill
		sc := bufio.NewScanner(out)
		seen := 0
		for sc.Scan() {
			n, ok := strings.CutPrefix(sc.Text(), "acked ")
			if !ok {
				continue
			}
			v, _ := strconv.ParseInt(n, 10, 64)
			maxAcked[r] = v
			if seen++; seen == killAfter {
				cmd.Process.Kill() // SIGKILL; acks already printed still count
			}
		}
		err = cmd.Wait()
		if seen < killAfter {
			t.Fatalf("round %d: child stopped after %d acks: %v\n%s", r, seen, err, stderr.String())
		}
	}

	l := openLake(t, dir)
	tb, err := l.Table("c.s.t")
	if err != nil {
		t.Fatal(err)
	}
	got := ids(t, dir, "t")
	seen := map[int64]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("id %d is in the table twice", id)
		}
		seen[id] = true
	}
	for r := range rounds {
		base := int64(r * 1_000_000)
		for id := base; id <= maxAcked[r]; id++ {
			if !seen[id] {
				t.Fatalf("round %d: acknowledged id %d is missing (acked up to %d)", r, id, maxAcked[r])
			}
		}
	}
	s := tb.Stats()
	if s.Durable != int64(len(got)) || s.Materialized != int64(len(got)) {
		t.Fatalf("Stats = %+v, table has %d rows", s, len(got))
	}
	t.Logf("%d rows after %d kills; acked up to %v", len(got), rounds, maxAcked)
}
