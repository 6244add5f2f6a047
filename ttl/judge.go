package ttl

import (
	"encoding/binary"
	"math"

	"github.com/pebblestate/pebblestate/internal/listfmt"
)

// Verdict is Judge's decision about a stored value.
type Verdict uint8

const (
	// Keep leaves the value as it is.
	Keep Verdict = iota
	// Drop removes the whole entry: everything in it is expired.
	Drop
	// Rewrite replaces the value with the bytes Judge returned: the live
	// elements of a partly expired list, or the value restamped.
	Rewrite
)

// Policy is how a state's TTL judges its stored values.
type Policy struct {
	// TTLMillis is the time-to-live in milliseconds.
	TTLMillis int64
	// Restamp moves the stamps of what is kept to the judging time, as
	// reads under OnReadAndWrite do. A stamp already equal to it is left
	// alone, which changes nothing but saves a write.
	Restamp bool
}

// Judge is the one TTL judge: it decides what becomes of a stored value
// of either layout at time now (milliseconds). Reads, access
// cleanup, background cleanup and full snapshots all decide through it, and
// no other code compares stamps with the clock.
//
// For a single-stamped value it returns Drop if the value is expired,
// Rewrite and the restamped value if p.Restamp asks for a new stamp, and
// Keep otherwise. For a list it keeps the live elements (restamped if
// p.Restamp), in order: Keep if that is all of them unchanged, Drop if
// none, Rewrite and the kept elements otherwise. An empty list is kept.
//
// The rewritten value is appended to dst; for Keep and Drop dst is
// returned unchanged. next is when the earliest part of what is kept
// expires (math.MaxInt64 if nothing is). A malformed value is kept and
// reported with an error wrapping ErrMalformed or listfmt.ErrMalformed.
func Judge(layout Layout, raw []byte, p Policy, now int64, dst []byte) (v Verdict, out []byte, next int64, err error) {
	if layout == Single {
		ts, user, err := SplitStamp(raw)
		if err != nil {
			return Keep, dst, math.MaxInt64, err
		}
		at := ExpiresAt(ts, p.TTLMillis)
		switch {
		case at <= now:
			return Drop, dst, math.MaxInt64, nil
		case p.Restamp && ts != now:
			return Rewrite, append(AppendStamp(dst, now), user...), ExpiresAt(now, p.TTLMillis), nil
		}
		return Keep, dst, at, nil
	}
	next = math.MaxInt64
	kept, total, restamped := 0, 0, 0
	start := len(dst)
	for rest := raw; len(rest) > 0; total++ {
		var elem []byte
		if elem, rest, err = listfmt.Next(rest); err != nil {
			return Keep, dst[:start], math.MaxInt64, err
		}
		ts, _, err := SplitStamp(elem)
		if err != nil {
			return Keep, dst[:start], math.MaxInt64, err
		}
		at := ExpiresAt(ts, p.TTLMillis)
		if at <= now {
			continue
		}
		dst = listfmt.AppendElement(dst, elem)
		kept++
		if p.Restamp && ts != now {
			// The element keeps its length: overwrite its stamp in place.
			binary.BigEndian.PutUint64(dst[len(dst)-len(elem):], uint64(now))
			restamped++
			at = ExpiresAt(now, p.TTLMillis)
		}
		next = min(next, at)
	}
	switch {
	case kept == total && restamped == 0:
		return Keep, dst[:start], next, nil
	case kept == 0:
		return Drop, dst[:start], next, nil
	}
	return Rewrite, dst, next, nil
}

// Expiry returns when an entry stamped at ts expires under p.
func (p Policy) Expiry(ts int64) int64 { return ExpiresAt(ts, p.TTLMillis) }
