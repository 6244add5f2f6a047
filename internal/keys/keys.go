package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// StateIDLen is the size of the state-id prefix in bytes.
const StateIDLen = 2

// SystemID is the reserved state id of the backend's own records.
const SystemID uint16 = 0

// MaxStateID is the largest id a user state may receive. 0xFFFF is left
// unused so that every state prefix has a successor.
const MaxStateID uint16 = 0xFFFE

// ErrMalformed is returned when a stored key does not follow the layout.
var ErrMalformed = errors.New("keys: malformed key")

// KeyGroupBytes returns the width of the key-group prefix for a max
// parallelism: 1 byte up to 128 key groups, 2 bytes above.
func KeyGroupBytes(maxParallelism int) int {
	if maxParallelism <= 128 {
		return 1
	}
	return 2
}

// AppendStateID appends the 2-byte big-endian state id.
func AppendStateID(dst []byte, id uint16) []byte {
	return binary.BigEndian.AppendUint16(dst, id)
}

// AppendKeyGroup appends kg in width bytes (1 or 2), big-endian.
func AppendKeyGroup(dst []byte, kg, width int) []byte {
	if width == 1 {
		return append(dst, byte(kg))
	}
	return binary.BigEndian.AppendUint16(dst, uint16(kg))
}

// DecodeKeyGroup reads a key group of width bytes from the front of b.
func DecodeKeyGroup(b []byte, width int) (kg int, rest []byte, err error) {
	if len(b) < width {
		return 0, nil, fmt.Errorf("%w: %d bytes left for a %d-byte key group", ErrMalformed, len(b), width)
	}
	if width == 1 {
		return int(b[0]), b[1:], nil
	}
	return int(binary.BigEndian.Uint16(b)), b[2:], nil
}

// AppendComponent appends one self-delimiting component. fixed is the
// codec's fixed size, or -1 for a variable-size codec, whose bytes are
// preceded by a uvarint length. It fails if a fixed-size codec produced the
// wrong number of bytes.
func AppendComponent(dst, enc []byte, fixed int) ([]byte, error) {
	if fixed >= 0 {
		if len(enc) != fixed {
			return dst, fmt.Errorf("keys: codec declared a fixed size of %d bytes but produced %d", fixed, len(enc))
		}
		return append(dst, enc...), nil
	}
	dst = binary.AppendUvarint(dst, uint64(len(enc)))
	return append(dst, enc...), nil
}

// SplitComponent reads one component written by AppendComponent from the
// front of b and returns it and the bytes after it.
func SplitComponent(b []byte, fixed int) (comp, rest []byte, err error) {
	if fixed >= 0 {
		if len(b) < fixed {
			return nil, nil, fmt.Errorf("%w: %d bytes left for a %d-byte component", ErrMalformed, len(b), fixed)
		}
		return b[:fixed], b[fixed:], nil
	}
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, nil, fmt.Errorf("%w: bad component length", ErrMalformed)
	}
	b = b[w:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: component length %d exceeds the %d bytes left", ErrMalformed, n, len(b))
	}
	return b[:n], b[n:], nil
}

// PrefixEnd returns the smallest key greater than every key that starts
// with prefix, or nil if there is none (prefix is empty or all 0xFF). The
// result is a new slice.
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// StateBounds returns the key span [lo, hi) holding every entry of state id.
func StateBounds(id uint16) (lo, hi []byte) {
	lo = AppendStateID(nil, id)
	return lo, AppendStateID(nil, id+1)
}

// KeyGroupBounds returns the key span [lo, hi) holding the entries of state
// id in key groups [start, end).
func KeyGroupBounds(id uint16, start, end, width int) (lo, hi []byte) {
	lo = AppendKeyGroup(AppendStateID(nil, id), start, width)
	if end >= 1<<(8*width) {
		// end is one past the largest key group this width can hold.
		return lo, AppendStateID(nil, id+1)
	}
	return lo, AppendKeyGroup(AppendStateID(nil, id), end, width)
}
