package full

import (
	"fmt"
	"io"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression is a block compression of full snapshots.
type Compression uint8

// The compressions. Their numbers are stored in data files; never renumber.
const (
	None   Compression = 0
	Snappy Compression = 1
	Zstd   Compression = 2
	S2     Compression = 3
)

// String returns the compression's name, as stored in handles.
func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Snappy:
		return "snappy"
	case Zstd:
		return "zstd"
	case S2:
		return "s2"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// ParseCompression returns the compression named name.
func ParseCompression(name string) (Compression, error) {
	for _, c := range []Compression{None, Snappy, Zstd, S2} {
		if c.String() == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("full: unknown compression %q", name)
}

// compressor is a reusable streaming compressor.
type compressor interface {
	io.WriteCloser
	Reset(w io.Writer)
}

// nopCompressor passes bytes through.
type nopCompressor struct{ w io.Writer }

func (n *nopCompressor) Write(p []byte) (int, error) { return n.w.Write(p) }
func (n *nopCompressor) Close() error                { return nil }
func (n *nopCompressor) Reset(w io.Writer)           { n.w = w }

type zstdCompressor struct{ *zstd.Encoder }

func (z zstdCompressor) Reset(w io.Writer) { z.Encoder.Reset(w) }

func newCompressor(c Compression) (compressor, error) {
	switch c {
	case None:
		return &nopCompressor{}, nil
	case Snappy:
		return snappy.NewBufferedWriter(nil), nil
	case Zstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return nil, err
		}
		return zstdCompressor{enc}, nil
	case S2:
		return s2.NewWriter(nil, s2.WriterConcurrency(1)), nil
	}
	return nil, fmt.Errorf("full: unknown compression %d", c)
}

// decompressor is a reusable streaming decompressor.
type decompressor interface {
	io.Reader
	Reset(r io.Reader) error
	Close()
}

type nopDecompressor struct{ r io.Reader }

func (n *nopDecompressor) Read(p []byte) (int, error) { return n.r.Read(p) }
func (n *nopDecompressor) Reset(r io.Reader) error    { n.r = r; return nil }
func (n *nopDecompressor) Close()                     {}

type snappyDecompressor struct{ *snappy.Reader }

func (s snappyDecompressor) Reset(r io.Reader) error { s.Reader.Reset(r); return nil }
func (s snappyDecompressor) Close()                  {}

type s2Decompressor struct{ *s2.Reader }

func (s s2Decompressor) Reset(r io.Reader) error { s.Reader.Reset(r); return nil }
func (s s2Decompressor) Close()                  {}

type zstdDecompressor struct{ *zstd.Decoder }

func (z zstdDecompressor) Reset(r io.Reader) error { return z.Decoder.Reset(r) }
func (z zstdDecompressor) Close()                  { z.Decoder.Close() }

func newDecompressor(c Compression) (decompressor, error) {
	switch c {
	case None:
		return &nopDecompressor{}, nil
	case Snappy:
		return snappyDecompressor{snappy.NewReader(nil)}, nil
	case Zstd:
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, err
		}
		return zstdDecompressor{dec}, nil
	case S2:
		return s2Decompressor{s2.NewReader(nil)}, nil
	}
	return nil, fmt.Errorf("full: unknown compression %d", c)
}
