package meta

import "github.com/pebblestate/pebblestate/snapshot"

// The public description of a state in a snapshot handle, snapshot.State,
// carries the same fields under the same JSON names as State: a handle's
// states are the backend's records as of the snapshot. The conversions
// below are the only place the two meet; the tests check that they cover
// every field and that both encode alike.

// ToSnapshot returns the description of the state of record s that a
// snapshot handle lists.
func ToSnapshot(s State) snapshot.State {
	return snapshot.State{
		FormatVersion:  s.FormatVersion,
		Name:           s.Name,
		ID:             s.ID,
		Kind:           snapshot.StateKind(s.Kind),
		KeyCodec:       s.KeyCodec,
		NamespaceCodec: s.NamespaceCodec,
		ValueCodec:     s.ValueCodec,
		UserKeyCodec:   s.UserKeyCodec,
		TTL:            s.TTL,
	}
}

// FromSnapshot returns the record of a state a snapshot handle lists.
func FromSnapshot(s snapshot.State) State {
	return State{
		FormatVersion:  s.FormatVersion,
		Name:           s.Name,
		ID:             s.ID,
		Kind:           Kind(s.Kind),
		KeyCodec:       s.KeyCodec,
		NamespaceCodec: s.NamespaceCodec,
		ValueCodec:     s.ValueCodec,
		UserKeyCodec:   s.UserKeyCodec,
		TTL:            s.TTL,
	}
}

// ToSnapshotStates converts records with ToSnapshot.
func ToSnapshotStates(states []State) []snapshot.State {
	out := make([]snapshot.State, len(states))
	for i, s := range states {
		out[i] = ToSnapshot(s)
	}
	return out
}
