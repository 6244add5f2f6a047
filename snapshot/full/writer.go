package full

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sort"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// Version is the version of the data files this package writes.
const Version = 1

// headerLen is the size of a data file's header.
const headerLen = 16

var magic = [8]byte{'P', 'B', 'S', 'T', 'F', 'U', 'L', 'L'}

// Reader is what the writer reads entries from: a Pebble snapshot or DB.
type Reader interface {
	NewIter(*pebble.IterOptions) (*pebble.Iterator, error)
}

// WriteOptions say what to write.
type WriteOptions struct {
	// StateIDs are the states to write.
	StateIDs []uint16
	// KeyGroups are the key groups to write.
	KeyGroups keygroup.Range
	// MaxParallelism decides the width of the key-group prefix.
	MaxParallelism int
	// Compression compresses each block.
	Compression Compression
	// Filter, if set, leaves out expired TTL entries and elements.
	Filter *ttl.EntryFilter
	// Progress, if set, is called after each key group, with the bytes
	// written since the last call (the file's header with the first), on
	// the goroutine calling Write. The bytes of all calls add up to the
	// file's size.
	Progress func(keyGroup int, bytes int64)
}

// Result is what Write wrote.
type Result struct {
	Blocks []snapshot.Block // one per key group with data
	Size   int64            // bytes written
	CRC32C uint32           // checksum of the whole file
}

// countingWriter counts and checksums what passes through it.
type countingWriter struct {
	w     io.Writer
	n     int64
	file  hash.Hash32 // the whole file
	block hash.Hash32 // the current block
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.file.Write(p[:n])
	c.block.Write(p[:n])
	return n, err
}

// Write writes a full snapshot of the given states and key groups of r to
// w. It checks ctx between key groups.
func Write(ctx context.Context, r Reader, w io.Writer, opts WriteOptions) (Result, error) {
	width := keys.KeyGroupBytes(opts.MaxParallelism)
	cw := &countingWriter{w: w, file: crc32.New(snapshot.Castagnoli), block: crc32.New(snapshot.Castagnoli)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	var head [headerLen]byte
	copy(head[:], magic[:])
	binary.BigEndian.PutUint16(head[8:], Version)
	head[10] = byte(opts.Compression)
	head[11] = byte(width)
	if _, err := bw.Write(head[:]); err != nil {
		return Result{}, err
	}
	if err := bw.Flush(); err != nil {
		return Result{}, err
	}
	comp, err := newCompressor(opts.Compression)
	if err != nil {
		return Result{}, err
	}

	ids := append([]uint16(nil), opts.StateIDs...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	its := make([]*pebble.Iterator, len(ids))
	valid := make([]bool, len(ids))
	defer func() {
		for _, it := range its {
			if it != nil {
				it.Close()
			}
		}
	}()
	for i, id := range ids {
		lo, hi := keys.KeyGroupBounds(id, opts.KeyGroups.Start, opts.KeyGroups.End, width)
		if its[i], err = r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi}); err != nil {
			return Result{}, fmt.Errorf("full: iterate state %d: %w", id, err)
		}
		valid[i] = its[i].First()
	}

	var res Result
	var rec []byte
	prefix := keys.StateIDLen + width
	var reported int64
	progress := func(kg int) {
		if opts.Progress != nil {
			opts.Progress(kg, cw.n-reported)
			reported = cw.n
		}
	}
	for kg := opts.KeyGroups.Start; kg < opts.KeyGroups.End; kg++ {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		block := snapshot.Block{KeyGroup: kg, Offset: cw.n}
		started := false
		for i, it := range its {
			for ; valid[i]; valid[i] = it.Next() {
				key := it.Key()
				if k, _, err := keys.DecodeKeyGroup(key[keys.StateIDLen:], width); err != nil {
					return Result{}, fmt.Errorf("full: state %d: %w", ids[i], err)
				} else if k != kg {
					break
				}
				value, err := it.ValueAndErr()
				if err != nil {
					return Result{}, fmt.Errorf("full: read state %d: %w", ids[i], err)
				}
				if opts.Filter != nil {
					v, out, err := opts.Filter.Apply(key, value)
					switch {
					case err != nil:
						return Result{}, fmt.Errorf("full: state %d key %x: %w", ids[i], key, err)
					case v == ttl.Drop:
						continue
					case v == ttl.Rewrite:
						value = out
					}
				}
				if !started {
					cw.block.Reset()
					comp.Reset(bw)
					started = true
				}
				rec = binary.BigEndian.AppendUint16(rec[:0], ids[i])
				rec = binary.AppendUvarint(rec, uint64(len(key)-prefix))
				rec = append(rec, key[prefix:]...)
				rec = binary.AppendUvarint(rec, uint64(len(value)))
				rec = append(rec, value...)
				if _, err := comp.Write(rec); err != nil {
					return Result{}, err
				}
				block.Entries++
			}
			if err := it.Error(); err != nil {
				return Result{}, fmt.Errorf("full: read state %d: %w", ids[i], err)
			}
		}
		if !started {
			progress(kg)
			continue
		}
		if err := comp.Close(); err != nil {
			return Result{}, err
		}
		if err := bw.Flush(); err != nil {
			return Result{}, err
		}
		block.Length = cw.n - block.Offset
		block.CRC32C = cw.block.Sum32()
		res.Blocks = append(res.Blocks, block)
		progress(kg)
	}
	if err := bw.Flush(); err != nil {
		return Result{}, err
	}
	if cw.n > reported {
		progress(opts.KeyGroups.End)
	}
	res.Size, res.CRC32C = cw.n, cw.file.Sum32()
	return res, nil
}
