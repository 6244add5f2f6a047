package ttl

import (
	"encoding/binary"
	"math"

	"github.com/pebblestate/pebblestate/internal/keys"
)

// Target is a TTL state whose expired entries are to be removed.
type Target struct {
	ID        uint16 // the state's id, the first bytes of its keys
	Layout    Layout // where the stamps are in its values
	TTLMillis int64  // its time-to-live
	// QueryTimeAfterNumEntries is how many entries background cleanup
	// checks between clock reads while it scans this state; zero means the
	// filter's default.
	QueryTimeAfterNumEntries int
}

// EntryFilter decides with Judge, entry by entry, what of a stream of raw
// state entries (keys starting with a state id) survives at a given time:
// background cleanup and full snapshots use it. Entries of states that are
// not targets always survive. It is not safe for concurrent use.
type EntryFilter struct {
	targets  map[uint16]Target
	now      int64
	buf      []byte
	earliest int64 // see Earliest
	// The last lookup: entries come in runs of one state.
	lastID     uint16
	last       Target
	lastOK     bool
	lastCached bool
}

// NewEntryFilter returns a filter for targets at time now (milliseconds).
func NewEntryFilter(targets []Target, now int64) *EntryFilter {
	f := &EntryFilter{targets: make(map[uint16]Target, len(targets)), now: now, earliest: math.MaxInt64}
	for _, t := range targets {
		f.targets[t.ID] = t
	}
	return f
}

// SetNow moves the filter's time.
func (f *EntryFilter) SetNow(now int64) { f.now = now }

// Target returns the target a key belongs to, if any.
func (f *EntryFilter) Target(key []byte) (Target, bool) {
	if len(key) < keys.StateIDLen {
		return Target{}, false
	}
	id := binary.BigEndian.Uint16(key)
	if f.lastCached && id == f.lastID {
		return f.last, f.lastOK
	}
	t, ok := f.targets[id]
	f.lastID, f.last, f.lastOK, f.lastCached = id, t, ok, true
	return t, ok
}

// Apply judges one entry. It returns the verdict and, for Rewrite, the
// value to store instead, valid until the next call. A malformed value is
// kept and reported.
func (f *EntryFilter) Apply(key, value []byte) (Verdict, []byte, error) {
	t, ok := f.Target(key)
	if !ok {
		return Keep, nil, nil
	}
	v, out, next, err := Judge(t.Layout, value, Policy{TTLMillis: t.TTLMillis}, f.now, f.buf[:0])
	f.buf = out[:0]
	if err == nil {
		f.earliest = min(f.earliest, next)
	}
	return v, out, err
}

// Earliest returns when the earliest of everything Apply kept since the
// filter was made (or since ResetEarliest) expires: math.MaxInt64 if it
// kept nothing of a target.
func (f *EntryFilter) Earliest() int64 { return f.earliest }

// ResetEarliest starts Earliest over.
func (f *EntryFilter) ResetEarliest() { f.earliest = math.MaxInt64 }
