package ttl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/pebblestate/pebblestate/internal/listfmt"
)

// StampLen is the size of the stamp at the front of a TTL value.
const StampLen = 8

// ErrMalformed is returned for a stored TTL value too short for its stamp.
var ErrMalformed = errors.New("ttl: malformed value")

// ExpiresAt returns when an entry stamped at ts (milliseconds) expires, with
// Flink's overflow rule: for ts > 0 the sum saturates at math.MaxInt64.
func ExpiresAt(ts, ttlMillis int64) int64 {
	if ts > 0 {
		return ts + min(math.MaxInt64-ts, ttlMillis)
	}
	return ts + ttlMillis
}

// Expired is the expiry predicate: an entry stamped at ts is expired at now
// if ExpiresAt(ts, ttl) <= now, so it is already expired exactly at ts+ttl.
func Expired(ts, ttlMillis, now int64) bool {
	return ExpiresAt(ts, ttlMillis) <= now
}

// Millis returns t as milliseconds since the epoch, the unit of stamps.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// AppendStamp appends the 8-byte stamp ts.
func AppendStamp(dst []byte, ts int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ts))
}

// SplitStamp splits a stored TTL value into its stamp and the user's bytes.
func SplitStamp(raw []byte) (ts int64, user []byte, err error) {
	if len(raw) < StampLen {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte stamp", ErrMalformed, len(raw), StampLen)
	}
	return int64(binary.BigEndian.Uint64(raw)), raw[StampLen:], nil
}

// Layout is where the stamps of a stored value are.
type Layout uint8

const (
	// Single is one stamp at the front of the value: value, reducing and
	// aggregating state, and each map entry.
	Single Layout = iota
	// ListElements is a framed list whose every element has its own stamp.
	ListElements
)

// Verdict is Filter's decision about a stored value.
type Verdict uint8

const (
	// Keep leaves the value as it is: nothing in it is expired.
	Keep Verdict = iota
	// Drop removes the whole entry: everything in it is expired.
	Drop
	// Rewrite replaces the value with the unexpired part Filter returned.
	Rewrite
)

// Filter decides what becomes of a stored TTL value at time now (ms). For a
// list with some expired elements it returns Rewrite and the unexpired
// elements, appended to dst. Reads, cleanup and full snapshots all decide
// through it.
func Filter(layout Layout, raw []byte, ttlMillis, now int64, dst []byte) (Verdict, []byte, error) {
	v, out, _, err := FilterNext(layout, raw, ttlMillis, now, dst)
	return v, out, err
}

// FilterNext is Filter that also returns when the earliest part of the
// value it keeps expires: math.MaxInt64 if it keeps nothing.
func FilterNext(layout Layout, raw []byte, ttlMillis, now int64, dst []byte) (Verdict, []byte, int64, error) {
	next := int64(math.MaxInt64)
	if layout == Single {
		ts, _, err := SplitStamp(raw)
		if err != nil {
			return Keep, dst, next, err
		}
		at := ExpiresAt(ts, ttlMillis)
		if at <= now {
			return Drop, dst, next, nil
		}
		return Keep, dst, at, nil
	}
	kept, total := 0, 0
	start := len(dst)
	for rest := raw; len(rest) > 0; total++ {
		var elem []byte
		var err error
		if elem, rest, err = listfmt.Next(rest); err != nil {
			return Keep, dst[:start], math.MaxInt64, err
		}
		ts, _, err := SplitStamp(elem)
		if err != nil {
			return Keep, dst[:start], math.MaxInt64, err
		}
		if at := ExpiresAt(ts, ttlMillis); at > now {
			dst = listfmt.AppendElement(dst, elem)
			kept++
			next = min(next, at)
		}
	}
	switch kept {
	case total:
		return Keep, dst[:start], next, nil
	case 0:
		return Drop, dst[:start], next, nil
	}
	return Rewrite, dst, next, nil
}
