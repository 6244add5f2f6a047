package listfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/invariants"
)

// MergerName is the persistent name of the list merge operator.
const MergerName = "pebblestate.list.v1"

// ErrMalformed is returned for a list value whose framing is broken.
var ErrMalformed = errors.New("listfmt: malformed list value")

// AppendElement appends one framed element.
func AppendElement(dst, elem []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(elem)))
	return append(dst, elem...)
}

// Next splits the first element off a framed sequence. It returns the
// element, the rest of the sequence, and an error if the framing is broken.
func Next(b []byte) (elem, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, nil, fmt.Errorf("%w: bad element length at byte 0 of %d", ErrMalformed, len(b))
	}
	b = b[w:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: element length %d exceeds the %d bytes left", ErrMalformed, n, len(b))
	}
	return b[:n], b[n:], nil
}

// Count returns the number of elements of a framed sequence, checking the
// framing of all of it.
func Count(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		var err error
		if _, b, err = Next(b); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Merger is the Pebble merge operator for list state.
var Merger = &pebble.Merger{
	Name: MergerName,
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		m := &valueMerger{}
		m.tail = append(m.tail, value...)
		return m, nil
	},
}

// valueMerger buffers operands. tail holds the first operand followed by
// every newer one, in order; older holds older operands back to back in the
// order they arrived (newest first), with their lengths in olderLens.
type valueMerger struct {
	tail      []byte
	older     []byte
	olderLens []int
}

func (m *valueMerger) MergeNewer(value []byte) error {
	m.tail = append(m.tail, value...)
	return nil
}

func (m *valueMerger) MergeOlder(value []byte) error {
	m.older = append(m.older, value...)
	m.olderLens = append(m.olderLens, len(value))
	return nil
}

func (m *valueMerger) Finish(includesBase bool) ([]byte, io.Closer, error) {
	out := m.join()
	if invariants.Enabled {
		checkJoined(m, out)
	}
	return out, nil, nil
}

// join returns the operands concatenated, oldest first.
func (m *valueMerger) join() []byte {
	if len(m.olderLens) == 0 {
		return m.tail
	}
	out := make([]byte, len(m.older)+len(m.tail))
	// Older operands arrived newest first, so the oldest is at the end of
	// m.older: walk back from the end, writing oldest first.
	end, w := len(m.older), 0
	for i := len(m.olderLens) - 1; i >= 0; i-- {
		start := end - m.olderLens[i]
		w += copy(out[w:], m.older[start:end])
		end = start
	}
	copy(out[w:], m.tail)
	return out
}

// checkJoined asserts that joining well-framed operands gave a well-framed
// value with all their elements. Operands that are not well framed
// (corrupt data) are not the merge's doing; readers report them.
func checkJoined(m *valueMerger, out []byte) {
	want, err := Count(m.tail)
	if err != nil {
		return
	}
	for i, b := 0, m.older; i < len(m.olderLens); i++ {
		n, err := Count(b[:m.olderLens[i]])
		if err != nil {
			return
		}
		want += n
		b = b[m.olderLens[i]:]
	}
	got, err := Count(out)
	invariants.Check(err == nil && got == want,
		"listfmt: operands of %d elements in all merged into a value of %d bytes with %d elements (%v)",
		want, len(out), got, err)
}
