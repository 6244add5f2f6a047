package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// migrateBatchBytes is the size at which a migration commits a batch.
const migrateBatchBytes = 4 << 20

// MigrateTTL rewrites every entry of the stored state have into the form
// want asks for (TTL switched on: stamped with the current time; switched
// off: stamps stripped), records want under a new id and returns it.
//
// The rewritten entries go under a new state id; one final batch then
// writes the state's record with the new id and deletes the old id's range.
// Until that batch, the old entries and record are untouched, so a crash
// leaves the state as it was, and the half-written new id is dropped as an
// orphan at the next Open.
func (s *Store) MigrateTTL(have, want meta.State) (meta.State, error) {
	id, err := s.NextID()
	if err != nil {
		return want, err
	}
	want.ID = id
	layout := LayoutOf(have.Kind)
	now := ttl.Millis(s.opts.Clock.Now())
	lo, hi := keys.StateBounds(have.ID)
	it, err := s.NewIter(lo, hi)
	if err != nil {
		return want, fmt.Errorf("backend: migrate state %q: %w", have.Name, err)
	}
	defer it.Close()
	batch := s.NewBatch()
	defer func() { batch.Close() }()
	var kbuf, vbuf []byte
	for valid := it.First(); valid; valid = it.Next() {
		raw, err := it.Value()
		if err != nil {
			return want, fmt.Errorf("backend: migrate state %q: %w", have.Name, err)
		}
		if vbuf, err = convertTTL(layout, raw, want.TTL, now, vbuf[:0]); err != nil {
			return want, fmt.Errorf("%w: migrate state %q: key %x: %w", ErrCorrupt, have.Name, it.Key(), err)
		}
		kbuf = append(keys.AppendStateID(kbuf[:0], want.ID), it.Key()[keys.StateIDLen:]...)
		if err := batch.Set(kbuf, vbuf); err != nil {
			return want, fmt.Errorf("backend: migrate state %q: %w", have.Name, err)
		}
		if batch.Len() >= migrateBatchBytes {
			if err := s.Commit(batch); err != nil {
				return want, fmt.Errorf("backend: migrate state %q: %w", have.Name, err)
			}
			batch.Close()
			batch = s.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return want, fmt.Errorf("backend: migrate state %q: %w", have.Name, err)
	}
	enc, err := meta.Encode(want)
	if err != nil {
		return want, err
	}
	if err := batch.Set(keys.StateMetaKey(want.Name), enc); err != nil {
		return want, err
	}
	if err := batch.DeleteRange(lo, hi); err != nil {
		return want, err
	}
	if err := s.Commit(batch); err != nil {
		return want, fmt.Errorf("backend: migrate state %q: %w", have.Name, err)
	}
	s.nextID++
	s.states[want.Name] = want
	return want, nil
}

// convertTTL rewrites one stored value to TTL form (stamped at now) or out
// of it, appending to dst.
func convertTTL(layout ttl.Layout, raw []byte, toTTL bool, now int64, dst []byte) ([]byte, error) {
	if layout == ttl.Single {
		if toTTL {
			return append(ttl.AppendStamp(dst, now), raw...), nil
		}
		_, user, err := ttl.SplitStamp(raw)
		return append(dst, user...), err
	}
	var elem []byte
	for rest := raw; len(rest) > 0; {
		e, r, err := listfmt.Next(rest)
		if err != nil {
			return dst, err
		}
		rest = r
		if toTTL {
			elem = append(ttl.AppendStamp(elem[:0], now), e...)
		} else {
			if _, elem, err = ttl.SplitStamp(e); err != nil {
				return dst, err
			}
		}
		dst = listfmt.AppendElement(dst, elem)
	}
	return dst, nil
}

// dropOrphans deletes the data of state ids that no state record names:
// what an interrupted TTL migration left behind.
func (s *Store) dropOrphans() error {
	used := make(map[uint16]bool, len(s.states))
	for _, m := range s.states {
		used[m.ID] = true
	}
	first := keys.AppendStateID(nil, keys.SystemID+1)
	it, err := s.NewIter(first, nil)
	if err != nil {
		return fmt.Errorf("backend: scan for orphans: %w", err)
	}
	defer it.Close()
	for valid := it.First(); valid; {
		key := it.Key()
		if len(key) < keys.StateIDLen {
			valid = it.Next()
			continue
		}
		id := binary.BigEndian.Uint16(key)
		if id > keys.MaxStateID {
			break
		}
		lo, hi := keys.StateBounds(id)
		if !used[id] {
			if err := s.db.DeleteRange(lo, hi, pebble.NoSync); err != nil {
				return fmt.Errorf("backend: drop orphaned state id %d: %w", id, err)
			}
		}
		valid = it.SeekGE(hi)
	}
	return it.Error()
}
