package store

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// loadMeta checks the stored backend record against the options (writing
// it on first open), loads the state records and drops orphaned data.
func (s *Store) loadMeta() error {
	want := s.opts.Record
	want.FormatVersion = meta.BackendVersion(want)
	raw, closer, found, err := s.Get(keys.BackendMetaKey())
	switch {
	case err != nil:
		return fmt.Errorf("backend: read backend record: %w", err)
	case !found:
		if want.InstanceID, err = meta.NewInstanceID(); err != nil {
			return err
		}
		enc, err := meta.Encode(want)
		if err != nil {
			return err
		}
		// Flush rather than sync: the WAL may be off.
		if err := s.db.Set(keys.BackendMetaKey(), enc, pebble.NoSync); err != nil {
			return fmt.Errorf("backend: write backend record: %w", err)
		}
		if err := s.Flush(context.Background()); err != nil {
			return fmt.Errorf("backend: write backend record: %w", err)
		}
		s.record = want
		return nil
	}
	have, err := meta.DecodeBackend(raw)
	closer.Close()
	dir := s.opts.Dir
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, dir, err)
	}
	switch {
	case have.MaxParallelism != want.MaxParallelism:
		return fmt.Errorf("%w: %s was created with max parallelism %d, not %d",
			ErrIncompatible, dir, have.MaxParallelism, want.MaxParallelism)
	case have.KeyGroupStart != want.KeyGroupStart || have.KeyGroupEnd != want.KeyGroupEnd:
		return fmt.Errorf("%w: %s owns key groups [%d, %d), not %s (restore from a checkpoint to rescale)",
			ErrIncompatible, dir, have.KeyGroupStart, have.KeyGroupEnd,
			keygroup.Range{Start: want.KeyGroupStart, End: want.KeyGroupEnd})
	case have.KeyCodec != want.KeyCodec:
		return fmt.Errorf("%w: %s has key codec %q, not %q",
			ErrIncompatible, dir, have.KeyCodec, want.KeyCodec)
	case have.KeyGroupAssigner != want.KeyGroupAssigner:
		return fmt.Errorf("%w: %s was created with key-group assigner %s, not %s",
			ErrIncompatible, dir, keygroup.DisplayName(have.KeyGroupAssigner), keygroup.DisplayName(want.KeyGroupAssigner))
	}
	s.record = have
	if err := s.loadStateRecords(); err != nil {
		return err
	}
	return s.dropOrphans()
}

func (s *Store) loadStateRecords() error {
	lo := keys.StateMetaPrefix()
	it, err := s.NewIter(lo, keys.PrefixEnd(lo))
	if err != nil {
		return fmt.Errorf("backend: read state records: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		raw, err := it.Value()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("backend: read state records: %w", err)
		}
		m, err := meta.DecodeState(raw)
		if err != nil {
			name := string(it.Key()[len(lo):]) // before Close, which empties it
			_ = it.Close()
			return fmt.Errorf("%w: %s: state record %q: %w", ErrCorrupt, s.opts.Dir, name, err)
		}
		s.states[m.Name] = m
		if m.ID >= s.nextID {
			s.nextID = m.ID + 1
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("backend: read state records: %w", err)
	}
	return nil
}

// Record returns the backend record: the instance id, max parallelism,
// key groups, key codec and key-group assigner of the directory.
func (s *Store) Record() meta.Backend { return s.record }

// Lookup returns the stored record of the named state, if there is one.
func (s *Store) Lookup(name string) (meta.State, bool) {
	m, ok := s.states[name]
	return m, ok
}

// States returns a copy of every stored state record, in no order.
func (s *Store) States() []meta.State {
	out := make([]meta.State, 0, len(s.states))
	for _, m := range s.states {
		out = append(out, m)
	}
	return out
}

// NextID returns the id the next new state gets, or an error wrapping
// keygroup.ErrInvalidArgument if every id is taken.
func (s *Store) NextID() (uint16, error) {
	if s.nextID > keys.MaxStateID {
		return 0, fmt.Errorf("%w: too many states (at most %d)", keygroup.ErrInvalidArgument, keys.MaxStateID)
	}
	return s.nextID, nil
}

// Create stores the record of a new state, whose ID must be NextID().
func (s *Store) Create(m meta.State) error {
	id, err := s.NextID()
	if err != nil {
		return err
	}
	if m.ID != id {
		return fmt.Errorf("backend: state %q: id %d is not the next id %d", m.Name, m.ID, id)
	}
	enc, err := meta.Encode(m)
	if err != nil {
		return err
	}
	if err := s.db.Set(keys.StateMetaKey(m.Name), enc, pebble.NoSync); err != nil {
		return fmt.Errorf("backend: record state %q: %w", m.Name, err)
	}
	s.nextID++
	s.states[m.Name] = m
	return nil
}

// LayoutOf returns where the TTL stamps of a kind's values are.
func LayoutOf(kind meta.Kind) ttl.Layout {
	if kind == meta.KindList {
		return ttl.ListElements
	}
	return ttl.Single
}
