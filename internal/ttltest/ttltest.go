package ttltest

import (
	"testing"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/ttl"
)

// Test state ids: a value state, a list state and a map state with TTL,
// and a plain state without.
const (
	IDValue uint16 = 1
	IDList  uint16 = 2
	IDMap   uint16 = 3
	IDPlain uint16 = 4
	// TTLMillis is the TTL of the three TTL states.
	TTLMillis = 100
)

// Targets returns the TTL targets of IDValue, IDList and IDMap.
func Targets() []ttl.Target {
	return []ttl.Target{
		{ID: IDValue, Layout: ttl.Single, TTLMillis: TTLMillis},
		{ID: IDList, Layout: ttl.ListElements, TTLMillis: TTLMillis},
		{ID: IDMap, Layout: ttl.Single, TTLMillis: TTLMillis},
	}
}

// StateKey is a key of state id: [id][key group][rest].
func StateKey(id uint16, kg int, rest string) []byte {
	return append(keys.AppendKeyGroup(keys.AppendStateID(nil, id), kg, 1), rest...)
}

// StampedValue is user stamped with ts, as a TTL state stores a value.
func StampedValue(ts int64, user string) []byte {
	return append(ttl.AppendStamp(nil, ts), user...)
}

// StampedList frames (ts int, user string) pairs as a TTL list state
// stores its elements.
func StampedList(pairs ...any) []byte {
	var out []byte
	for i := 0; i < len(pairs); i += 2 {
		out = listfmt.AppendElement(out, StampedValue(int64(pairs[i].(int)), pairs[i+1].(string)))
	}
	return out
}

// ListUsers decodes a stamped list into its user values, failing t on bad
// framing or a bad stamp.
func ListUsers(t testing.TB, raw []byte) []string {
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
