package opstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Version is the version of the operator state file this package writes
// and the newest it reads.
const Version = 1

// magic starts every operator state file.
var magic = [8]byte{'P', 'B', 'S', 'T', 'O', 'P', 'S', 'T'}

// frame is the size of the file's header (magic, version, body length)
// and trailer (CRC-32C).
const (
	headLen  = 8 + 4 + 8
	frameLen = headLen + 4
)

// Encode returns the stored form of s (FORMAT.md):
//
//	magic "PBSTOPST" | version uint32 | body length uint64 | body | CRC-32C uint32
//
// the body holding the subtask, its lists sorted by name with their
// entries, and its positions by key group, every item length-framed. An
// entry or list of 2^32 bytes or entries or more cannot be encoded.
func Encode(s *State) ([]byte, error) {
	out := make([]byte, 0, 64)
	out = append(out, magic[:]...)
	out = binary.BigEndian.AppendUint32(out, Version)
	out = binary.BigEndian.AppendUint64(out, 0) // body length, set below
	out = binary.BigEndian.AppendUint32(out, uint32(s.maxParallelism))
	out = binary.BigEndian.AppendUint32(out, uint32(s.parallelism))
	out = binary.BigEndian.AppendUint32(out, uint32(s.index))
	out = binary.BigEndian.AppendUint32(out, uint32(len(s.lists)))
	for _, name := range s.Lists() {
		l := s.lists[name]
		if len(name) > math.MaxUint32 || len(l.entries) > math.MaxUint32 {
			return nil, fmt.Errorf("operator state list %q: too long to encode", name)
		}
		out = appendBytes(out, []byte(name))
		out = append(out, byte(l.mode))
		out = binary.BigEndian.AppendUint32(out, uint32(len(l.entries)))
		for _, e := range l.entries {
			if len(e) > math.MaxUint32 {
				return nil, fmt.Errorf("operator state list %q: an entry of %d bytes is too long to encode", name, len(e))
			}
			out = appendBytes(out, e)
		}
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(s.positions)))
	for kg, b := range s.Positions() {
		if len(b) > math.MaxUint32 {
			return nil, fmt.Errorf("position of key group %d: %d bytes is too long to encode", kg, len(b))
		}
		out = binary.BigEndian.AppendUint32(out, uint32(kg))
		out = appendBytes(out, b)
	}
	binary.BigEndian.PutUint64(out[12:], uint64(len(out)-headLen))
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, snapshot.Castagnoli)), nil
}

func appendBytes(out, b []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
	return append(out, b...)
}

// Decode verifies and decodes an operator state file's bytes; name is used
// in errors. Every error wraps snapshot.ErrCorrupt and names the file.
// What decodes is a valid State: a subtask that backend.KeyGroupRangeForSubtask
// accepts, lists with distinct non-empty names in ascending order and a
// known mode, positions in ascending order inside the subtask's key groups.
func Decode(name string, b []byte) (*State, error) {
	s, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", snapshot.ErrCorrupt, name, err)
	}
	return s, nil
}

// errShort is the error of a body that ends inside an item.
var errShort = errors.New("truncated body")

func decode(b []byte) (*State, error) {
	if len(b) < frameLen {
		return nil, fmt.Errorf("%d bytes is too short for operator state", len(b))
	}
	if !bytes.Equal(b[:8], magic[:]) {
		return nil, fmt.Errorf("bad magic %q", b[:8])
	}
	if v := binary.BigEndian.Uint32(b[8:]); v < 1 || v > Version {
		return nil, fmt.Errorf("unknown operator state version %d (this build reads 1 to %d)", v, Version)
	}
	if n := binary.BigEndian.Uint64(b[12:]); n != uint64(len(b)-frameLen) {
		return nil, fmt.Errorf("body of %d bytes declared, %d present (truncated?)", n, len(b)-frameLen)
	}
	want := binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(b[:len(b)-4], snapshot.Castagnoli); got != want {
		return nil, fmt.Errorf("checksum %08x, expected %08x", got, want)
	}
	r := reader{b: b[headLen : len(b)-4]}
	mp, p, index := int(r.u32()), int(r.u32()), int(r.u32())
	if r.err != nil {
		return nil, r.err
	}
	kg, err := backend.KeyGroupRangeForSubtask(mp, p, index)
	if err != nil {
		return nil, fmt.Errorf("subtask %d of %d at max parallelism %d: %w", index, p, mp, err)
	}
	s := &State{
		maxParallelism: mp, parallelism: p, index: index, keyGroups: kg,
		lists: make(map[string]*List), positions: make(map[int][]byte),
	}
	nLists := r.count(4 + 1 + 4)
	prev := ""
	for i := 0; i < nLists && r.err == nil; i++ {
		name := string(r.bytes())
		mode := Mode(r.u8())
		n := r.count(4)
		if r.err != nil {
			break
		}
		switch {
		case name == "":
			return nil, fmt.Errorf("list %d has an empty name", i)
		case i > 0 && name <= prev:
			return nil, fmt.Errorf("list %q out of order or repeated after %q", name, prev)
		case mode != Split && mode != Union:
			return nil, fmt.Errorf("list %q: unknown mode %d", name, mode)
		}
		prev = name
		l := &List{name: name, mode: mode}
		for j := 0; j < n && r.err == nil; j++ {
			l.entries = append(l.entries, slices.Clone(r.bytes()))
		}
		s.lists[name] = l
	}
	nPos := r.count(4 + 4)
	last := -1
	for i := 0; i < nPos && r.err == nil; i++ {
		k := int(r.u32())
		v := r.bytes()
		if r.err != nil {
			break
		}
		if k <= last || k < kg.Start || k >= kg.End {
			return nil, fmt.Errorf("position of key group %d out of order or outside the subtask's key groups [%d, %d)", k, kg.Start, kg.End)
		}
		last = k
		s.positions[k] = slices.Clone(v)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) > 0 {
		return nil, fmt.Errorf("%d bytes after the positions", len(r.b))
	}
	return s, nil
}

// reader reads the body's items; the first failure sticks in err and
// every later read returns zero.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = errShort
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// bytes reads a length-framed byte string.
func (r *reader) bytes() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	return r.take(int(n))
}

// count reads a count of items each at least min bytes long, refusing
// one the rest of the body cannot hold (so a hostile count allocates
// nothing).
func (r *reader) count(min int) int {
	n := r.u32()
	if r.err == nil && uint64(n)*uint64(min) > uint64(len(r.b)) {
		r.err = fmt.Errorf("%d items declared, the %d bytes left cannot hold them", n, len(r.b))
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}
