package backend

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
)

// register returns the handle registered under m.Name if there is one and
// it is compatible, or else creates one with build, giving it the stored id
// of the state or a new one.
func register[K any, H any](b *Backend[K], m meta.State, build func(meta.State) (H, error)) (H, error) {
	var zero H
	if b.closed {
		return zero, ErrClosed
	}
	m.FormatVersion = meta.FormatVersion
	m.KeyCodec = b.keyCodec.Name()
	if r, ok := b.states[m.Name]; ok {
		if err := meta.Compatible(r.meta, m); err != nil {
			return zero, fmt.Errorf("%w: %w", ErrIncompatibleState, err)
		}
		h, ok := r.handle.(H)
		if !ok {
			return zero, fmt.Errorf("%w: state %q is registered as %T, not %T", ErrIncompatibleState, m.Name, r.handle, zero)
		}
		return h, nil
	}
	if have, ok := b.persisted[m.Name]; ok {
		if err := meta.Compatible(have, m); err != nil {
			return zero, fmt.Errorf("%w: %s: %w", ErrIncompatibleState, b.opts.Dir, err)
		}
		m.ID = have.ID
	} else {
		if b.nextID > keys.MaxStateID {
			return zero, fmt.Errorf("%w: too many states (at most %d)", ErrInvalidArgument, keys.MaxStateID)
		}
		m.ID = b.nextID
		enc, err := meta.Encode(m)
		if err != nil {
			return zero, err
		}
		if err := b.db.Set(keys.StateMetaKey(m.Name), enc, pebble.NoSync); err != nil {
			return zero, fmt.Errorf("backend: register state %q: %w", m.Name, err)
		}
		b.nextID++
		b.persisted[m.Name] = m
	}
	h, err := build(m)
	if err != nil {
		return zero, err
	}
	b.states[m.Name] = registered{meta: m, handle: h}
	return h, nil
}

// checkCodec reports a nil or unnamed codec of a descriptor.
func checkCodec[T any](state, role string, c Codec[T]) error {
	if c == nil {
		return fmt.Errorf("%w: state %q: %s codec is nil", ErrInvalidArgument, state, role)
	}
	if c.Name() == "" {
		return fmt.Errorf("%w: state %q: %s codec has no name", ErrInvalidArgument, state, role)
	}
	return nil
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: state name is empty", ErrInvalidArgument)
	}
	return nil
}
