package restore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/pebblestate/pebblestate/internal/invariants"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
)

// checkOwned asserts, under the invariants tag, that db holds state
// entries of the key groups in r only: a key of another key group in a
// restored database means a handle was read for, or a base database
// clipped to, the wrong range. A scan that fails proves nothing either
// way; the reads that meet the failure report it.
func checkOwned(db DB, r keygroup.Range, maxParallelism int) {
	stray, err := strayKey(db, r, maxParallelism)
	if err != nil {
		return
	}
	invariants.Check(stray == nil, "restore: key %x is not in the instance's key groups %s", stray, r)
}

// strayKey returns the first key of db above the system records that is
// not a state entry of a key group in r, or nil if there is none. It
// visits each state present with two seeks: its first key must not be
// below the state's span of r, and nothing may follow that span.
func strayKey(db DB, r keygroup.Range, maxParallelism int) ([]byte, error) {
	width := keys.KeyGroupBytes(maxParallelism)
	it, err := db.NewIter(keys.AppendStateID(nil, keys.SystemID+1), nil)
	if err != nil {
		return nil, fmt.Errorf("scan for stray keys: %w", err)
	}
	stray, err := func() ([]byte, error) {
		for valid := it.First(); valid; {
			key := it.Key()
			if len(key) < keys.StateIDLen {
				return bytes.Clone(key), nil
			}
			id := binary.BigEndian.Uint16(key)
			if id > keys.MaxStateID {
				return bytes.Clone(key), nil
			}
			lo, hi := keys.KeyGroupBounds(id, r.Start, r.End, width)
			if bytes.Compare(key, lo) < 0 {
				return bytes.Clone(key), nil
			}
			if valid = it.SeekGE(hi); valid && bytes.HasPrefix(it.Key(), lo[:keys.StateIDLen]) {
				return bytes.Clone(it.Key()), nil
			}
		}
		return nil, it.Error()
	}()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("scan for stray keys: %w", err)
	}
	return stray, nil
}
