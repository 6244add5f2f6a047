package compaction

import (
	"testing"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/ttl"
)

// Test state ids: a value state, a list state and a map state with TTL,
// and a plain state without.
const (
	idValue uint16 = 1
	idList  uint16 = 2
	idMap   uint16 = 3
	idPlain uint16 = 4
	ttlMs          = 100
)

func testTargets() []ttl.Target {
	return []ttl.Target{
		{ID: idValue, Layout: ttl.Single, TTLMillis: ttlMs},
		{ID: idList, Layout: ttl.ListElements, TTLMillis: ttlMs},
		{ID: idMap, Layout: ttl.Single, TTLMillis: ttlMs},
	}
}

// stateKey is a key of state id: [id][key group][rest].
func stateKey(id uint16, kg int, rest string) []byte {
	return append(keys.AppendKeyGroup(keys.AppendStateID(nil, id), kg, 1), rest...)
}

func stampedValue(ts int64, user string) []byte {
	return append(ttl.AppendStamp(nil, ts), user...)
}

// stampedList frames (ts, user) pairs.
func stampedList(pairs ...any) []byte {
	var out []byte
	for i := 0; i < len(pairs); i += 2 {
		out = listfmt.AppendElement(out, stampedValue(int64(pairs[i].(int)), pairs[i+1].(string)))
	}
	return out
}

// listUsers decodes a stamped list into its user values.
func listUsers(t testing.TB, raw []byte) []string {
	t.Helper()
	var out []string
	for len(raw) > 0 {
		elem, rest, err := listfmt.Next(raw)
		if err != nil {
			t.Fatalf("bad list framing: %v", err)
		}
		_, u, err := ttl.SplitStamp(elem)
		if err != nil {
			t.Fatalf("bad list element: %v", err)
		}
		out = append(out, string(u))
		raw = rest
	}
	return out
}
