package backend_test

import (
	"fmt"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestTTLReadBufferMetrics checks what TTLMetrics says about the read
// buffer: its keys and bytes as reads fill it and write-back empties it,
// the reads that overflowed a full buffer (restamps and removals alike),
// and the keys written back.
func TestTTLReadBufferMetrics(t *testing.T) {
	const n, limit = 30, 420 // the buffer holds about 10 of the keys
	env := ttlOpen(t, func(o *backend.Options) { o.TTLReadBuffer, o.TTLSweepInterval = limit, -1 })
	// Background cleanup off: after the Flush it would scan the flushed
	// span and might remove expired values before the reads meet them.
	cfg := ttl.Config{TTL: ttlD, Update: ttl.OnReadAndWrite, Cleanup: ttl.Cleanup{DisableBackground: true}}
	desc := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64, TTL: cfg}
	v := ttlMust(backend.GetValue(env.b, desc)).in(t)
	readAll := func(wantOK bool) {
		t.Helper()
		for i := range n {
			env.setKey(fmt.Sprintf("k%05d", i))
			if _, ok, err := v.Get(); err != nil || ok != wantOK {
				t.Fatalf("key %d: Get = %v, %v; want %v", i, ok, err, wantOK)
			}
		}
	}
	for i := range n {
		env.setKey(fmt.Sprintf("k%05d", i))
		ttlCheck(t, v.Update(int64(i)))
	}
	if m := env.b.TTLMetrics(); m.ReadBufferKeys != 0 || m.ReadBufferBytes != 0 || m.ReadBufferOverflows != 0 || m.ReadBufferWrittenBack != 0 {
		t.Fatalf("before any read: %+v; want the buffer empty and nothing counted", m)
	}

	// Restamps: the first keys fill the buffer, the rest overflow.
	env.advance(ttlD / 2)
	readAll(true)
	m := env.b.TTLMetrics()
	held := m.ReadBufferKeys
	if held == 0 || held >= n || m.ReadBufferOverflows != n-held {
		t.Fatalf("after %d restamping reads: %d keys held, %d overflows; want some held and the rest overflowed", n, held, m.ReadBufferOverflows)
	}
	if m.ReadBufferBytes < limit || m.ReadBufferBytes >= limit+limit/held {
		t.Fatalf("%d keys held in %d bytes; want the limit %d reached by the last key", held, m.ReadBufferBytes, limit)
	}
	ttlCheck(t, env.b.Flush())
	m = env.b.TTLMetrics()
	if m.ReadBufferKeys != 0 || m.ReadBufferBytes != 0 || m.ReadBufferWrittenBack != held {
		t.Fatalf("after Flush: %+v; want the buffer empty and %d keys written back", m, held)
	}

	// Removals: every value is expired now; the buffer takes the first
	// removals, the rest go to Pebble at once.
	env.advance(ttlD)
	before := m.ReadBufferOverflows
	readAll(false)
	m = env.b.TTLMetrics()
	if m.ReadBufferKeys == 0 || m.ReadBufferOverflows-before != n-m.ReadBufferKeys {
		t.Fatalf("after %d expired reads: %d keys held, %d more overflows; want the rest overflowed", n, m.ReadBufferKeys, m.ReadBufferOverflows-before)
	}
	if m.ReadRemoved != n {
		t.Fatalf("ReadRemoved = %d; want %d", m.ReadRemoved, n)
	}
	// A write replaces what the buffer held for its key (the first keys
	// read are the buffered ones).
	env.setKey("k00000")
	ttlCheck(t, v.Update(-1))
	if m2 := env.b.TTLMetrics(); m2.ReadBufferKeys != m.ReadBufferKeys-1 || m2.ReadBufferBytes >= m.ReadBufferBytes {
		t.Fatalf("after a write over a buffered removal: %d keys in %d bytes; want one key fewer than %d", m2.ReadBufferKeys, m2.ReadBufferBytes, m.ReadBufferKeys)
	}
	env.setKey("k00000")
	ttlCheck(t, v.Clear())
	readAll(false) // removed, in the buffer or in Pebble: no new work
	if m2 := env.b.TTLMetrics(); m2.ReadBufferOverflows != m.ReadBufferOverflows || m2.ReadRemoved != n {
		t.Fatalf("reading removed values again counted %d overflows and %d removals", m2.ReadBufferOverflows-m.ReadBufferOverflows, m2.ReadRemoved-n)
	}
}
