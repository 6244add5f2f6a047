package store

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TestWriteStallCounter feeds the monitor's listener the stall events
// Pebble sends and checks the count and time, a stall in progress
// included.
func TestWriteStallCounter(t *testing.T) {
	m := newMonitor(t.TempDir(), nil)
	l := m.listener(pebble.EventListener{})
	if n, d := m.stalls.read(time.Now()); n != 0 || d != 0 {
		t.Fatalf("before any stall: %d, %v", n, d)
	}
	l.WriteStallBegin(pebble.WriteStallBeginInfo{Reason: "memtable count limit reached"})
	time.Sleep(20 * time.Millisecond)
	n, during := m.stalls.read(time.Now())
	if n != 1 || during < 20*time.Millisecond {
		t.Fatalf("during a stall: %d, %v", n, during)
	}
	l.WriteStallEnd()
	n, after := m.stalls.read(time.Now())
	if n != 1 || after < during {
		t.Fatalf("after the stall: %d, %v (during: %v)", n, after, during)
	}
	time.Sleep(5 * time.Millisecond)
	if _, later := m.stalls.read(time.Now()); later != after {
		t.Fatalf("the stall's time grew after it ended: %v, then %v", after, later)
	}
	l.WriteStallEnd() // an end without a beginning counts nothing
	if n, d := m.stalls.read(time.Now()); n != 1 || d != after {
		t.Fatalf("after a stray end: %d, %v", n, d)
	}
}
