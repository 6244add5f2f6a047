package store

import (
	"encoding/binary"

	"github.com/pebblestate/pebblestate/internal/invariants"
	"github.com/pebblestate/pebblestate/internal/keys"
)

// checkOwned asserts, in builds with the invariants tag, that a state
// entry written belongs to a key group this instance owns: a key of
// another key group would be restored by nobody, or by two instances.
// The backend's own records (state id keys.SystemID) are exempt. Without
// the tag it compiles to nothing.
func (s *Store) checkOwned(key []byte) {
	if !invariants.Enabled || len(key) < keys.StateIDLen || binary.BigEndian.Uint16(key) == keys.SystemID {
		return
	}
	kg, _, err := keys.DecodeKeyGroup(key[keys.StateIDLen:], keys.KeyGroupBytes(s.record.MaxParallelism))
	invariants.Check(err == nil && kg >= s.record.KeyGroupStart && kg < s.record.KeyGroupEnd,
		"store: write of key %x, key group %d (%v), outside the instance's key groups [%d, %d)",
		key, kg, err, s.record.KeyGroupStart, s.record.KeyGroupEnd)
}
