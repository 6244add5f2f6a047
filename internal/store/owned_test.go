package store

import (
	"errors"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/internal/invariants"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestCheckOwned writes into an instance of key groups [32, 64): keys of
// its own key groups and the backend's records always go through; a key
// of key group 64, under the invariants tag, stops the write with a panic
// that wraps invariants.ErrViolated, and without the tag is written.
func TestCheckOwned(t *testing.T) {
	s, err := Open(Options{
		Dir: t.TempDir(), BlockCacheSize: 8 << 20, MemTableSize: 4 << 20,
		Record: meta.Backend{MaxParallelism: 128, KeyGroupStart: 32, KeyGroupEnd: 64, KeyCodec: "test"},
		Clock:  ttl.NewManualClock(time.UnixMilli(1_000)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := func(kg int) []byte {
		return append(keys.AppendKeyGroup(keys.AppendStateID(nil, 1), kg, keys.KeyGroupBytes(128)), 'k')
	}
	for _, kg := range []int{32, 63} {
		if err := s.Set(key(kg), []byte("v")); err != nil {
			t.Fatalf("Set in owned key group %d: %v", kg, err)
		}
	}
	if err := s.Set(keys.StateMetaKey("x"), []byte("record")); err != nil {
		t.Fatalf("Set of a system record: %v", err)
	}
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		_ = s.Merge(key(64), []byte("v"))
	}()
	switch {
	case invariants.Enabled && recovered == nil:
		t.Fatal("a write into key group 64 of an instance of [32, 64) went through under the invariants tag")
	case invariants.Enabled:
		if err, ok := recovered.(error); !ok || !errors.Is(err, invariants.ErrViolated) {
			t.Fatalf("panic %v; want an error wrapping invariants.ErrViolated", recovered)
		}
	case recovered != nil:
		t.Fatalf("panic %v without the invariants tag", recovered)
	}
}
