package ttl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
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
