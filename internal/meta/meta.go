package meta

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// FormatVersion is the version of the state records this package writes,
// and of backend records that name no key-group assigner.
const FormatVersion = 1

// BackendFormatVersion is the newest version of backend records: version
// 2 is a record that names a key-group assigner (BackendVersion), so that
// builds from before the field refuse it instead of reading its keys under
// the default assigner.
const BackendFormatVersion = 2

// BackendVersion returns the version a backend record is written with: 2
// if it names a key-group assigner, else 1.
func BackendVersion(m Backend) int {
	if m.KeyGroupAssigner != "" {
		return 2
	}
	return FormatVersion
}

// ErrMalformed is returned for a record that cannot be decoded.
var ErrMalformed = errors.New("meta: malformed record")

// Kind is the kind of a state.
type Kind uint8

// The state kinds. Their numbers are stored; never renumber them.
const (
	KindValue       Kind = 1
	KindList        Kind = 2
	KindMap         Kind = 3
	KindReducing    Kind = 4
	KindAggregating Kind = 5
	KindTimers      Kind = 6 // a timer service's timers; see internal/keys/FORMAT.md
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindValue:
		return "value"
	case KindList:
		return "list"
	case KindMap:
		return "map"
	case KindReducing:
		return "reducing"
	case KindAggregating:
		return "aggregating"
	case KindTimers:
		return "timers"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Backend is the record of a backend instance.
type Backend struct {
	FormatVersion  int    `json:"format_version"`
	InstanceID     string `json:"instance_id"`
	MaxParallelism int    `json:"max_parallelism"`
	KeyGroupStart  int    `json:"key_group_start"`
	KeyGroupEnd    int    `json:"key_group_end"` // exclusive
	KeyCodec       string `json:"key_codec"`
	// KeyGroupAssigner names the key-group assigner; empty (left out) for
	// murmur3, the default, which records from before the field have.
	KeyGroupAssigner string `json:"key_group_assigner,omitempty"`
}

// State is the record of one registered state.
type State struct {
	FormatVersion  int    `json:"format_version"`
	Name           string `json:"name"`
	ID             uint16 `json:"id"`
	Kind           Kind   `json:"kind"`
	KeyCodec       string `json:"key_codec"`
	NamespaceCodec string `json:"namespace_codec"`
	ValueCodec     string `json:"value_codec"`
	UserKeyCodec   string `json:"user_key_codec,omitempty"` // map state only
	TTL            bool   `json:"ttl,omitempty"`
}

// NewInstanceID returns a random 128-bit instance id in hex.
func NewInstanceID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("meta: instance id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Encode returns the stored form of a record.
func Encode(v any) ([]byte, error) {
	return json.Marshal(v)
}

// DecodeBackend decodes a backend record.
func DecodeBackend(b []byte) (Backend, error) {
	var m Backend
	if err := decode(b, &m, &m.FormatVersion, BackendFormatVersion); err != nil {
		return Backend{}, err
	}
	if m.FormatVersion != BackendVersion(m) {
		return Backend{}, fmt.Errorf("%w: backend record of version %d with key-group assigner %q", ErrMalformed, m.FormatVersion, m.KeyGroupAssigner)
	}
	if m.MaxParallelism < 1 || m.KeyGroupEnd <= m.KeyGroupStart {
		return Backend{}, fmt.Errorf("%w: backend record has max parallelism %d and key groups [%d, %d)",
			ErrMalformed, m.MaxParallelism, m.KeyGroupStart, m.KeyGroupEnd)
	}
	return m, nil
}

// DecodeState decodes a state record.
func DecodeState(b []byte) (State, error) {
	var m State
	if err := decode(b, &m, &m.FormatVersion, FormatVersion); err != nil {
		return State{}, err
	}
	if m.Name == "" || m.ID == 0 || m.Kind < KindValue || m.Kind > KindTimers {
		return State{}, fmt.Errorf("%w: state record %q has id %d and kind %s", ErrMalformed, m.Name, m.ID, m.Kind)
	}
	return m, nil
}

func decode(b []byte, v any, version *int, newest int) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if *version < 1 || *version > newest {
		return fmt.Errorf("%w: format version %d (this build reads 1 to %d)", ErrMalformed, *version, newest)
	}
	return nil
}

// Compatible reports why a state registered now (want) cannot use the
// stored record (have), or nil if it can. The TTL flag may differ: a change
// there is a migration, not a conflict.
func Compatible(have, want State) error {
	switch {
	case have.Kind != want.Kind:
		return fmt.Errorf("state %q is a %s state, not a %s state", have.Name, have.Kind, want.Kind)
	case have.KeyCodec != want.KeyCodec:
		return fmt.Errorf("state %q has key codec %q, not %q", have.Name, have.KeyCodec, want.KeyCodec)
	case have.NamespaceCodec != want.NamespaceCodec:
		return fmt.Errorf("state %q has namespace codec %q, not %q", have.Name, have.NamespaceCodec, want.NamespaceCodec)
	case have.ValueCodec != want.ValueCodec:
		return fmt.Errorf("state %q has value codec %q, not %q", have.Name, have.ValueCodec, want.ValueCodec)
	case have.UserKeyCodec != want.UserKeyCodec:
		return fmt.Errorf("state %q has map key codec %q, not %q", have.Name, have.UserKeyCodec, want.UserKeyCodec)
	}
	return nil
}
