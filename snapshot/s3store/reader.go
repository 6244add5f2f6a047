package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Open implements snapshot.Storage. A missing object fails with an error
// matching fs.ErrNotExist.
func (s *Store) Open(ctx context.Context, name string) (snapshot.File, error) {
	if err := snapshot.CheckName(name); err != nil {
		return nil, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.Key(name))})
	if err != nil {
		return nil, s.pathErr("open", name, err)
	}
	return &file{s: s, ctx: ctx, name: name, size: aws.ToInt64(out.ContentLength), etag: aws.ToString(out.ETag)}, nil
}

// file reads an object through one streaming GET at a time: sequential
// ReadAt calls (io.Copy through an io.SectionReader, a restore's
// chunked reads) continue the stream; a jump opens a new one at the
// offset. A stream that breaks resumes where it stopped, at most
// MaxAttempts times in a row. A stream from the start of the object asks
// for the server's checksum, which the SDK checks when the stream ends.
type file struct {
	s    *Store
	ctx  context.Context
	name string
	size int64
	etag string

	mu     sync.Mutex
	body   io.ReadCloser
	pos    int64 // offset of the body's next byte
	closed bool
}

func (f *file) Size() int64 { return f.size }

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", f.s.url(f.name), off)
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := p
	if rest := f.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, fmt.Errorf("read %s: file closed", f.s.url(f.name))
	}
	if err := f.s.acquire(f.ctx); err != nil {
		return 0, f.s.pathErr("read", f.name, err)
	}
	defer f.s.release()
	n := 0
	for failures := 0; n < len(want); {
		if f.body == nil || f.pos != off+int64(n) {
			if err := f.openAt(off + int64(n)); err != nil {
				return n, err
			}
		}
		k, err := io.ReadFull(f.body, want[n:])
		n += k
		f.pos += int64(k)
		if err == nil {
			break
		}
		f.drop()
		failures++
		if failures >= maxAttempts(f.s) || f.ctx.Err() != nil {
			return n, f.s.pathErr("read", f.name, err)
		}
	}
	if f.pos == f.size && f.body != nil {
		// Read to the stream's end, where the SDK checks the checksum.
		var one [1]byte
		_, err := f.body.Read(one[:])
		f.drop()
		if err != nil && !errors.Is(err, io.EOF) {
			return n, f.s.pathErr("read", f.name, fmt.Errorf("%w: %w", snapshot.ErrCorrupt, err))
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// maxAttempts is the bound on consecutive broken streams.
func maxAttempts(s *Store) int { return cap(s.slots) + defaultAttempts }

// openAt opens a stream from off to the end of the object. A different
// object under the same name (its ETag changed since Open) is an error:
// one file must not be read half from each.
func (f *file) openAt(off int64) error {
	f.drop()
	in := &s3.GetObjectInput{Bucket: aws.String(f.s.bucket), Key: aws.String(f.s.Key(f.name))}
	if f.etag != "" {
		in.IfMatch = aws.String(f.etag)
	}
	if off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	} else {
		in.ChecksumMode = types.ChecksumModeEnabled
	}
	out, err := f.s.client.GetObject(f.ctx, in)
	if err != nil {
		if errors.Is(explain(err), errPrecondition) {
			err = fmt.Errorf("%w: the object was replaced while it was read", snapshot.ErrCorrupt)
			return &fs.PathError{Op: "read", Path: f.s.url(f.name), Err: err}
		}
		return f.s.pathErr("read", f.name, err)
	}
	f.body, f.pos = out.Body, off
	return nil
}

func (f *file) drop() {
	if f.body != nil {
		f.body.Close()
		f.body = nil
	}
}

// Close implements snapshot.File.
func (f *file) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop()
	f.closed = true
	return nil
}
