package full

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/snapshot"
)

// maxFieldLen bounds a key or value length read from a block, so corrupt
// lengths fail cleanly instead of allocating gigabytes.
const maxFieldLen = 1 << 30

// BlockReader reads blocks of one data file.
type BlockReader struct {
	r      io.ReaderAt
	name   string
	size   int64
	comp   Compression
	width  int
	dec    decompressor
	br     *bufio.Reader
	kb, vb []byte
	id     [2]byte // scratch for a record's state id
}

// NewBlockReader checks the header of data file r (called name in errors,
// size bytes long) against the compression the handle names, and returns a
// reader of its blocks.
func NewBlockReader(r io.ReaderAt, name string, size int64, compression string, maxParallelism int) (*BlockReader, error) {
	var head [headerLen]byte
	if size < headerLen {
		return nil, fmt.Errorf("%w: %s: %d bytes is too short for a data file", snapshot.ErrCorrupt, name, size)
	}
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, fmt.Errorf("full: read %s header: %w", name, err)
	}
	if !bytes.Equal(head[:8], magic[:]) {
		return nil, fmt.Errorf("%w: %s: bad magic %q", snapshot.ErrCorrupt, name, head[:8])
	}
	if v := binary.BigEndian.Uint16(head[8:]); v < 1 || v > Version {
		return nil, fmt.Errorf("%w: %s: data format version %d (this build reads 1 to %d)", snapshot.ErrCorrupt, name, v, Version)
	}
	comp := Compression(head[10])
	if comp.String() != compression {
		return nil, fmt.Errorf("%w: %s: compression %s, but the handle says %s", snapshot.ErrCorrupt, name, comp, compression)
	}
	width := int(head[11])
	if width != keys.KeyGroupBytes(maxParallelism) {
		return nil, fmt.Errorf("%w: %s: %d-byte key groups do not fit max parallelism %d", snapshot.ErrCorrupt, name, width, maxParallelism)
	}
	dec, err := newDecompressor(comp)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", snapshot.ErrCorrupt, name, err)
	}
	return &BlockReader{r: r, name: name, size: size, comp: comp, width: width, dec: dec}, nil
}

// Close releases the decompressor.
func (br *BlockReader) Close() { br.dec.Close() }

// KeyGroupWidth returns the width of the key-group prefix of the file.
func (br *BlockReader) KeyGroupWidth() int { return br.width }

// crcReader checksums what is read through it.
type crcReader struct {
	r   io.Reader
	crc uint32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc = crc32.Update(c.crc, snapshot.Castagnoli, p[:n])
	if err != nil && err != io.EOF {
		err = &storageError{err}
	}
	return n, err
}

// storageError is a failure to read from storage (a network error, a
// server down), which says nothing of the data: it must not be reported
// as corruption.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// Read decodes block b, calling fn for each entry with the state id and the
// entry's key after its [state id][key group] prefix. key and value are
// valid only during fn. Entries are handed out as they are decoded; the
// block's checksum is verified at its end, so a caller must not make them
// visible before Read returns nil.
func (br *BlockReader) Read(b snapshot.Block, fn func(stateID uint16, key, value []byte) error) error {
	where := func() string { return fmt.Sprintf("%s: key group %d at offset %d", br.name, b.KeyGroup, b.Offset) }
	if b.Offset < headerLen || b.Length < 0 || b.Length > br.size-b.Offset {
		return fmt.Errorf("%w: %s: block [%d, +%d) outside the %d-byte file", snapshot.ErrCorrupt, where(), b.Offset, b.Length, br.size)
	}
	cr := &crcReader{r: io.NewSectionReader(br.r, b.Offset, b.Length)}
	if err := br.dec.Reset(cr); err != nil {
		return br.fail(where(), err)
	}
	if br.br == nil {
		br.br = bufio.NewReaderSize(br.dec, 64<<10)
	} else {
		br.br.Reset(br.dec)
	}
	var n int64
	id := br.id[:]
	for {
		if _, err := io.ReadFull(br.br, id); err == io.EOF {
			break
		} else if err != nil {
			return br.fail(where(), err)
		}
		var err error
		if br.kb, err = br.field(br.kb); err != nil {
			return br.fail(where(), err)
		}
		if br.vb, err = br.field(br.vb); err != nil {
			return br.fail(where(), err)
		}
		if err := fn(binary.BigEndian.Uint16(id), br.kb, br.vb); err != nil {
			return err
		}
		n++
	}
	// Drain what the decompressor left, so the checksum covers the block.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return br.fail(where(), err)
	}
	if cr.crc != b.CRC32C {
		return fmt.Errorf("%w: %s: checksum %08x, expected %08x", snapshot.ErrCorrupt, where(), cr.crc, b.CRC32C)
	}
	if n != b.Entries {
		return fmt.Errorf("%w: %s: %d entries, expected %d", snapshot.ErrCorrupt, where(), n, b.Entries)
	}
	return nil
}

func (br *BlockReader) field(buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(br.br)
	if err != nil {
		return nil, err
	}
	if n > maxFieldLen {
		return nil, fmt.Errorf("field length %d exceeds %d", n, maxFieldLen)
	}
	if n <= fieldChunk {
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		_, err = io.ReadFull(br.br, buf)
		return buf, err
	}
	// A large length may be corrupt: grow the buffer only as bytes arrive,
	// so memory follows what the block really holds.
	buf = buf[:0]
	for rem := n; rem > 0; {
		c := min(rem, fieldChunk)
		start := len(buf)
		buf = append(buf, make([]byte, c)...)
		if _, err := io.ReadFull(br.br, buf[start:]); err != nil {
			return nil, err
		}
		rem -= c
	}
	return buf, nil
}

// fieldChunk is the step in which a large field's buffer grows.
const fieldChunk = 1 << 20

func (br *BlockReader) fail(where string, err error) error {
	if se := (*storageError)(nil); errors.As(err, &se) {
		return fmt.Errorf("%s: %w", where, se.err)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %s: %v", snapshot.ErrCorrupt, where, err)
}
