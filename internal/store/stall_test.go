package store

import (
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestFlushesBeyondPebbleStopThreshold checks that flushes go on past
// Pebble's default L0 stop threshold (12 sublevels) while compactions are
// behind: here they are off, and each of 20 flushes writes the same keys,
// so each adds a sublevel. At Pebble's default the 13th flush would wait
// for a compaction forever.
func TestFlushesBeyondPebbleStopThreshold(t *testing.T) {
	s, err := Open(Options{
		Dir: t.TempDir(), BlockCacheSize: 8 << 20, MemTableSize: 4 << 20,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
		Record: meta.Backend{MaxParallelism: 128, KeyGroupEnd: 128, KeyCodec: "test"},
		Clock:  ttl.NewManualClock(time.UnixMilli(1_000)),
		Pebble: func(o *pebble.Options) { o.DisableAutomaticCompactions = true },
	})
	if err != nil {
		t.Fatal(err)
	}
	stalled := false
	t.Cleanup(func() {
		if stalled {
			return // Close would wait for the stalled flush
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	const flushes = 20
	for i := range flushes {
		for k := range 100 {
			key := binary.BigEndian.AppendUint32(append(keys.AppendStateID(nil, 1), 5), uint32(k))
			if err := s.Set(key, binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- s.Flush(context.Background()) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			stalled = true
			t.Fatalf("flush %d stalled at %d L0 sublevels", i+1, s.db.Metrics().Levels[0].Sublevels)
		}
	}
	if got := s.db.Metrics().Levels[0].Sublevels; got < flushes {
		t.Fatalf("L0 has %d sublevels after %d overlapping flushes with compactions off, want %d", got, flushes, flushes)
	}
	if L0StopWritesThreshold <= flushes {
		t.Fatalf("L0StopWritesThreshold %d: the test needs more flushes", L0StopWritesThreshold)
	}
}
