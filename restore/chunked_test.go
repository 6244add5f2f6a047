package restore

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestChunkedFileReads checks chunkedFile against the file's bytes: reads
// front to back in block-sized steps, reads across chunk boundaries,
// backwards, larger than a chunk, at the very end, and past the end.
func TestChunkedFileReads(t *testing.T) {
	data := make([]byte, 3*chunkSize+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	p := filepath.Join(t.TempDir(), "table.sst")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := openChunked(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", c.Size(), len(data))
	}
	ctx := context.Background()
	check := func(off int64, n int) {
		t.Helper()
		buf := make([]byte, n)
		if err := c.ReadAt(ctx, buf, off); err != nil {
			t.Fatalf("ReadAt(%d bytes at %d): %v", n, off, err)
		}
		if !bytes.Equal(buf, data[off:off+int64(n)]) {
			t.Fatalf("ReadAt(%d bytes at %d) returned other bytes than the file's", n, off)
		}
	}
	for off := int64(0); off+4096 <= int64(len(data)); off += 4096 {
		check(off, 4096)
	}
	check(chunkSize-10, 20)      // across a chunk boundary
	check(5, 100)                // backwards
	check(100, 2*chunkSize)      // larger than a chunk
	check(int64(len(data))-7, 7) // the last bytes
	for range 200 {
		n := rng.IntN(70000) + 1
		check(rng.Int64N(int64(len(data)-n)), n)
	}
	if err := c.ReadAt(ctx, make([]byte, 10), int64(len(data))-5); err == nil {
		t.Error("a read past the end succeeded")
	}
	if err := c.ReadAt(ctx, make([]byte, 1), -1); err == nil {
		t.Error("a read at a negative offset succeeded")
	}
}
