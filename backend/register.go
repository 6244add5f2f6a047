package backend

import (
	"fmt"
	"unicode/utf8"

	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/internal/store"
	"github.com/pebblestate/pebblestate/ttl"
)

// register returns the handle registered under m.Name if there is one and
// it is compatible, with the same TTL config cfg, or else creates one with
// build: under the stored id of
// the state (migrating its values if its TTL was switched on or off), or
// under a new id, recording the state only once its handle is built, so a
// descriptor that fails leaves nothing behind.
func register[K any, H any](b *Backend[K], m meta.State, cfg ttl.Config, build func(meta.State) (H, error)) (H, error) {
	var zero H
	if b.closed.Load() {
		return zero, ErrClosed
	}
	m.FormatVersion = meta.FormatVersion
	m.KeyCodec = b.keyCodec.Name()
	if r, ok := b.states[m.Name]; ok {
		if err := meta.Compatible(r.meta, m); err != nil {
			return zero, fmt.Errorf("%w: %w", ErrIncompatibleState, err)
		}
		// The handle judges expiry by the config it was built with: one
		// registered with another would silently not be the one asked for.
		// (A TTL change is a migration, made when a backend is opened.)
		if r.ttl != cfg {
			return zero, fmt.Errorf("%w: state %q is registered with TTL config %+v, not %+v", ErrIncompatibleState, m.Name, r.ttl, cfg)
		}
		h, ok := r.handle.(H)
		if !ok {
			return zero, fmt.Errorf("%w: state %q is registered as %T, not %T", ErrIncompatibleState, m.Name, r.handle, zero)
		}
		return h, nil
	}
	have, stored := b.st.Lookup(m.Name)
	if stored {
		if err := meta.Compatible(have, m); err != nil {
			return zero, fmt.Errorf("%w: %s: %w", ErrIncompatibleState, b.opts.Dir, err)
		}
		m.ID = have.ID
	} else {
		id, err := b.st.NextID()
		if err != nil {
			return zero, err
		}
		m.ID = id
	}
	h, err := build(m)
	if err != nil {
		return zero, err
	}
	switch {
	case stored && have.TTL != m.TTL:
		if m, err = b.st.MigrateTTL(have, m); err != nil {
			return zero, err
		}
		// The handle was built for the old id.
		if h, err = build(m); err != nil {
			return zero, err
		}
	case !stored:
		if err := b.st.Create(m); err != nil {
			return zero, err
		}
	}
	b.states[m.Name] = registered{meta: m, ttl: cfg, handle: h}
	b.publishStates()
	if cfg.Enabled() {
		b.enableCleanup(m, cfg, any(h).(cleaner))
	}
	return h, nil
}

// cleaner is implemented by every state handle (through its embedded
// state): accessed runs a step of access cleanup if it is on.
type cleaner interface{ accessed() error }

// enableCleanup hands a new TTL state to the cleanup strategies it asks
// for.
func (b *Backend[K]) enableCleanup(m meta.State, cfg ttl.Config, c cleaner) {
	if cfg.Cleanup.OnAccess.Enabled && cfg.Cleanup.OnAccess.OnEveryKey {
		b.onKey = append(b.onKey, c)
	}
	if !cfg.Cleanup.DisableBackground {
		b.ttlTargets = append(b.ttlTargets, ttl.Target{ID: m.ID, Layout: store.LayoutOf(m.Kind), TTLMillis: cfg.Millis(),
			QueryTimeAfterNumEntries: cfg.Cleanup.QueryTimeAfterNumEntries})
		b.filter.SetTargets(b.ttlTargets)
	}
	if cfg.Cleanup.FullSnapshot {
		b.snapshotTargets = append(b.snapshotTargets, ttl.Target{ID: m.ID, Layout: store.LayoutOf(m.Kind), TTLMillis: cfg.Millis()})
	}
}

// role is a codec of a descriptor and what it encodes, for checkDescriptor.
type role struct {
	what  string
	codec interface{ Name() string }
}

// checkDescriptor reports an empty state name, a nil or unnamed codec, or
// an unusable TTL config.
func checkDescriptor(state string, cfg ttl.Config, codecs ...role) error {
	if state == "" {
		return fmt.Errorf("%w: state name is empty", ErrInvalidArgument)
	}
	// State records are JSON, which would store invalid UTF-8 as U+FFFD:
	// on reopen the name would not match, and the state's data would be
	// dropped as an orphan's.
	if !utf8.ValidString(state) {
		return fmt.Errorf("%w: state name %q is not valid UTF-8", ErrInvalidArgument, state)
	}
	for _, r := range codecs {
		if r.codec == nil {
			return fmt.Errorf("%w: state %q: %s codec is nil", ErrInvalidArgument, state, r.what)
		}
		if r.codec.Name() == "" {
			return fmt.Errorf("%w: state %q: %s codec has no name", ErrInvalidArgument, state, r.what)
		}
	}
	return checkTTL(state, cfg)
}

// checkTTL validates a descriptor's TTL config.
func checkTTL(state string, c ttl.Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: state %q: %w", ErrInvalidArgument, state, err)
	}
	return nil
}
