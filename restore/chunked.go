package restore

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2/objstorage"
)

// chunkSize is how much of a table file chunkedFile reads at once.
const chunkSize = 1 << 20

// chunkedFile serves the block reads of an sstable reader that goes
// through a table front to back from chunks of the file read at once: one
// system call per chunkSize bytes instead of one per block (4 KiB by
// default), which cost more than decoding the blocks. It is an
// objstorage.Readable; reads may come from several goroutines.
type chunkedFile struct {
	f    *os.File
	name string
	size int64
	rh   objstorage.NoopReadHandle

	mu     sync.Mutex
	pooled *[]byte // the buffer from chunkPool, once there is one
	buf    []byte  // the chunk read last
	off    int64   // its offset in the file
}

// openChunked opens the table file at path.
func openChunked(path string) (*chunkedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &chunkedFile{f: f, name: path, size: fi.Size()}
	c.rh = objstorage.MakeNoopReadHandle(c)
	return c, nil
}

// ReadAt reads len(p) bytes at off, from the current chunk if it holds
// them, else from a new chunk starting at off.
func (c *chunkedFile) ReadAt(_ context.Context, p []byte, off int64) error {
	end := off + int64(len(p))
	if off < 0 || end > c.size {
		return fmt.Errorf("read %s: %d bytes at offset %d, past its %d bytes", c.name, len(p), off, c.size)
	}
	if len(p) >= chunkSize {
		_, err := c.f.ReadAt(p, off)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if off < c.off || end > c.off+int64(len(c.buf)) {
		n := min(int64(chunkSize), c.size-off)
		if c.pooled == nil {
			c.pooled = chunkPool.Get().(*[]byte)
		}
		c.buf = (*c.pooled)[:n]
		if _, err := c.f.ReadAt(c.buf, off); err != nil {
			c.off, c.buf = 0, c.buf[:0]
			return err
		}
		c.off = off
	}
	copy(p, c.buf[off-c.off:])
	return nil
}

// Close closes the file and gives the chunk buffer back.
func (c *chunkedFile) Close() error {
	c.mu.Lock()
	if c.pooled != nil {
		chunkPool.Put(c.pooled)
		c.pooled, c.buf = nil, nil
	}
	c.mu.Unlock()
	return c.f.Close()
}

// chunkPool holds chunk buffers between tables.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, chunkSize)
	return &b
}}

// Size returns the file's size.
func (c *chunkedFile) Size() int64 { return c.size }

// NewReadHandle returns a handle that reads through ReadAt.
func (c *chunkedFile) NewReadHandle(objstorage.ReadBeforeSize) objstorage.ReadHandle { return &c.rh }
