package snapshot

import "fmt"

// StateFormatVersion is the newest version of the state records in a
// handle that this build reads. A record carries the version of the
// backend that wrote it.
const StateFormatVersion = 1

// StateKind is the kind of a keyed state: the backend's state type it was
// registered as. The numbers are stored in metadata and never change.
type StateKind uint8

// The state kinds.
const (
	StateKindValue       StateKind = 1 // backend.Value
	StateKindList        StateKind = 2 // backend.List
	StateKindMap         StateKind = 3 // backend.Map
	StateKindReducing    StateKind = 4 // backend.Reducing
	StateKindAggregating StateKind = 5 // backend.Aggregating
	StateKindTimers      StateKind = 6 // backend.TimerService
)

// String returns the kind's name: "value", "list", "map", "reducing" or
// "aggregating", "timers", or "kind(N)" for a number this build does not know.
func (k StateKind) String() string {
	switch k {
	case StateKindValue:
		return "value"
	case StateKindList:
		return "list"
	case StateKindMap:
		return "map"
	case StateKindReducing:
		return "reducing"
	case StateKindAggregating:
		return "aggregating"
	case StateKindTimers:
		return "timers"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// State describes one state of a handle: what a restore needs to register
// it again and to find its entries in the handle's data. It is the record
// the backend keeps of the state in its database, as of the snapshot.
//
// The time-to-live itself is not part of it: like the codecs, it is the
// registering program's configuration, and a restored state takes the TTL
// of the descriptor it is registered with again.
type State struct {
	// FormatVersion is the version of the record, 1 to StateFormatVersion.
	FormatVersion int `json:"format_version"`
	// Name is the name the state was registered under; unique in a handle.
	Name string `json:"name"`
	// ID is the id under which the handle's data stores the state's
	// entries: 1 to 0xFFFE, unique in a handle. A restore may give the
	// state another id.
	ID uint16 `json:"id"`
	// Kind is the state's kind.
	Kind StateKind `json:"kind"`
	// KeyCodec, NamespaceCodec and ValueCodec name the codecs of the
	// state's keys, namespaces and values (for a list, of its elements;
	// for an aggregating state, of its accumulator).
	KeyCodec       string `json:"key_codec"`
	NamespaceCodec string `json:"namespace_codec"`
	ValueCodec     string `json:"value_codec"`
	// UserKeyCodec names the codec of a map state's map keys; it is empty
	// for every other kind.
	UserKeyCodec string `json:"user_key_codec,omitempty"`
	// TTL reports whether the state was registered with a time-to-live,
	// so that its values carry a last-access timestamp.
	TTL bool `json:"ttl,omitempty"`
}

// Validate checks that a state record is complete: a name, an id other
// than 0, a known kind and record version, and the codec names its kind
// needs.
func (s *State) Validate() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("state with id %d has no name", s.ID)
	case s.ID == 0:
		return fmt.Errorf("state %q has the reserved state id 0", s.Name)
	case s.Kind < StateKindValue || s.Kind > StateKindTimers:
		return fmt.Errorf("state %q has unknown kind %d", s.Name, s.Kind)
	case s.FormatVersion < 1 || s.FormatVersion > StateFormatVersion:
		return fmt.Errorf("state %q has record version %d (this build reads 1 to %d)", s.Name, s.FormatVersion, StateFormatVersion)
	case s.KeyCodec == "" || s.NamespaceCodec == "" || s.ValueCodec == "" || (s.Kind == StateKindMap) != (s.UserKeyCodec != ""):
		return fmt.Errorf("state %q lacks a codec name", s.Name)
	}
	return nil
}
