package backend

import (
	"io"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/internal/store"
	"github.com/pebblestate/pebblestate/ttl"
)

// ttlState is the TTL side of a state with TTL on.
type ttlState struct {
	cfg           ttl.Config
	read          ttl.Policy // how reads judge: restamping under OnReadAndWrite
	clean         ttl.Policy // how cleanup and merges judge: never restamping
	returnExpired bool
	layout        ttl.Layout

	// Access cleanup: the next key to check, or nil to start over.
	onAccess bool
	cursor   []byte
	fbuf     []byte // scratch for Judge
}

func newTTLState(cfg ttl.Config, kind meta.Kind) *ttlState {
	cfg.EnsureDefaults()
	t := &ttlState{
		cfg:           cfg,
		read:          ttl.Policy{TTLMillis: cfg.Millis(), Restamp: cfg.Update == ttl.OnReadAndWrite},
		clean:         ttl.Policy{TTLMillis: cfg.Millis()},
		returnExpired: cfg.Visibility == ttl.ReturnExpiredIfNotCleanedUp,
		layout:        store.LayoutOf(kind),
		onAccess:      cfg.Cleanup.OnAccess.Enabled,
	}
	return t
}

// now returns the current processing time in milliseconds.
func (s *state[K, N]) now() int64 { return ttl.Millis(s.b.opts.Clock.Now()) }

// stamp starts a stored value in dst: the TTL stamp when TTL is on,
// nothing otherwise.
func (s *state[K, N]) stamp(dst []byte) []byte {
	if s.ttl == nil {
		return dst
	}
	return ttl.AppendStamp(dst, s.now())
}

// getSingle reads the single-stamped value at key (value, reducing,
// aggregating state and map entries) with TTL semantics applied, and
// returns the user's bytes, valid until closer is closed. An expired value
// is deleted; it is returned only if allowExpired. With OnReadAndWrite a
// returned value is restamped.
func (s *state[K, N]) getSingle(key []byte, allowExpired bool) (user []byte, closer io.Closer, found bool, err error) {
	raw, closer, found, err := s.b.st.Get(key)
	if err != nil || !found {
		return nil, nil, false, s.wrapIf("get", err)
	}
	if s.ttl == nil {
		return raw, closer, true, nil
	}
	user, live, err := s.judgeSingle(key, raw, s.now())
	if err != nil || !live && !allowExpired {
		closer.Close()
		return nil, nil, false, err
	}
	return user, closer, true, nil
}

// judgeSingle applies the TTL judge to a single-stamped value read at key:
// it removes the entry if expired, restamps it under OnReadAndWrite, and
// returns the user's bytes (a part of raw) and whether the entry was live.
func (s *state[K, N]) judgeSingle(key, raw []byte, now int64) (user []byte, live bool, err error) {
	v, out, _, err := ttl.Judge(ttl.Single, raw, s.ttl.read, now, s.vbuf[:0])
	if err != nil {
		return nil, false, s.corrupt("read TTL stamp", err)
	}
	user = raw[ttl.StampLen:]
	switch v {
	case ttl.Drop:
		s.b.ttlMetrics.readRemoved.Add(1)
		if err := s.b.st.Delete(key); err != nil {
			return nil, false, s.wrap("remove expired", err)
		}
		return user, false, nil
	case ttl.Rewrite:
		s.vbuf = out
		if err := s.b.st.Set(key, out); err != nil {
			return nil, false, s.wrap("refresh TTL", err)
		}
	}
	return user, true, nil
}

// judgeScanned is judgeSingle for an entry an iterator opened at write
// generation gen yielded while the caller's code runs between entries (a
// map's iteration): the loop body may have written the key since the
// iterator read it, so the removal or restamp goes through Store.Confirm,
// which applies it only to the value the key holds now. The entry's
// liveness, as returned, is judged on what the iterator read.
func (s *state[K, N]) judgeScanned(key, raw []byte, now int64, gen uint64) (user []byte, live bool, err error) {
	v, out, _, err := ttl.Judge(ttl.Single, raw, s.ttl.read, now, s.vbuf[:0])
	if err != nil {
		return nil, false, s.corrupt("read TTL stamp", err)
	}
	user = raw[ttl.StampLen:]
	if v == ttl.Keep {
		return user, true, nil
	}
	s.vbuf = out
	changed, err := s.b.st.Confirm(key, gen, v, out, func(cur []byte) (ttl.Verdict, []byte, error) {
		v, out, _, err := ttl.Judge(ttl.Single, cur, s.ttl.read, now, s.vbuf[:0])
		s.vbuf = out
		return v, out, err
	})
	if err != nil {
		return nil, false, s.wrap("refresh TTL", err)
	}
	if v == ttl.Drop {
		if changed {
			s.b.ttlMetrics.readRemoved.Add(1)
		}
		return user, false, nil
	}
	return user, true, nil
}

// accessed runs a step of access cleanup if the state has it on. Every
// public operation of a state calls it first.
func (s *state[K, N]) accessed() error {
	if s.ttl == nil || !s.ttl.onAccess || s.b.closed.Load() {
		return nil
	}
	return s.accessCleanupStep()
}

// accessCleanupStep checks the next Size entries of the state's key range,
// from where the last step stopped, and removes or trims the expired ones.
// It wraps around at the end of the range.
func (s *state[K, N]) accessCleanupStep() error {
	t := s.ttl
	lo, hi := keys.KeyGroupBounds(s.id, s.b.opts.KeyGroups.Start, s.b.opts.KeyGroups.End, s.b.kgWidth)
	if t.cursor != nil {
		lo = t.cursor
	}
	it, err := s.b.st.NewIter(lo, hi)
	if err != nil {
		return s.wrap("access cleanup", err)
	}
	now := s.now()
	n := 0
	valid := it.First()
	for ; valid && n < t.cfg.Cleanup.OnAccess.Size; valid = it.Next() {
		n++
		raw, err := it.Value()
		if err != nil {
			_ = it.Close()
			return s.wrap("access cleanup", err)
		}
		removed, err := s.cleanEntry(it.Key(), raw, now)
		if err != nil {
			_ = it.Close()
			return err
		}
		s.b.ttlMetrics.accessScanned.Add(1)
		if removed {
			s.b.ttlMetrics.accessRemoved.Add(1)
		}
	}
	if valid {
		t.cursor = append(t.cursor[:0], it.Key()...)
	} else {
		t.cursor = nil // reached the end: start over next time
	}
	if err := it.Close(); err != nil {
		return s.wrap("access cleanup", err)
	}
	return nil
}

// cleanEntry applies the TTL judge to one stored entry seen by
// access cleanup, deleting or trimming it. It runs on the task
// goroutine, so no write can race with it.
func (s *state[K, N]) cleanEntry(key, raw []byte, now int64) (removed bool, err error) {
	t := s.ttl
	verdict, out, _, err := ttl.Judge(t.layout, raw, t.clean, now, t.fbuf[:0])
	t.fbuf = out[:0]
	if err != nil {
		// A malformed entry is left for reads of its key to report (and
		// Clear to remove); it must not fail access to every other key.
		return false, nil
	}
	switch verdict {
	case ttl.Drop:
		err = s.b.st.Delete(key)
	case ttl.Rewrite:
		err = s.b.st.Set(key, out)
	}
	if err != nil {
		return false, s.wrap("access cleanup", err)
	}
	return verdict != ttl.Keep, nil
}
