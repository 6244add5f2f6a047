package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Create implements snapshot.Storage. It fails with fs.ErrExist if the
// object exists; Commit checks again, atomically, with If-None-Match.
func (s *Store) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	if err := snapshot.CheckName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ok, err := s.exists(ctx, name)
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, s.pathErr("create", name, fs.ErrExist)
	}
	var tok [16]byte
	rand.Read(tok[:])
	return &writer{s: s, ctx: ctx, name: name, token: hex.EncodeToString(tok[:])}, nil
}

// writer buffers a part at a time. The first full part starts a multipart
// upload; each full part is sent in the background, at most the store's
// concurrency of them per writer in flight, so memory stays bounded.
type writer struct {
	s     *Store
	ctx   context.Context
	name  string
	token string  // random; stamped on the object to recognise it as ours
	buf   *[]byte // from the store's pool; nil until the first write
	done  bool

	uploadID string
	wg       sync.WaitGroup
	inflight chan struct{}
	mu       sync.Mutex
	parts    []types.CompletedPart
	err      error // first failure of a background part
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: %w", w.s.url(w.name), errors.New("file already committed or aborted"))
	}
	if err := w.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		// A full buffer is sent only when more follows: a file of one
		// part or less goes out by one PutObject at Commit.
		if w.buf != nil && int64(len(*w.buf)) == w.s.partSize {
			if err := w.sendPart(); err != nil {
				return 0, err
			}
		}
		if w.buf == nil {
			w.buf = w.s.getBuf()
		}
		k := min(len(p), int(w.s.partSize)-len(*w.buf))
		*w.buf = append(*w.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// sendPart starts the multipart upload if needed and sends the buffer as
// its next part in the background.
func (w *writer) sendPart() error {
	if w.uploadID == "" {
		out, err := w.s.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(w.s.bucket), Key: aws.String(w.s.Key(w.name)),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
			Metadata:          map[string]string{tokenKey: w.token},
		})
		if err != nil {
			return w.s.pathErr("upload", w.name, err)
		}
		w.uploadID = aws.ToString(out.UploadId)
		w.inflight = make(chan struct{}, cap(w.s.slots))
	}
	num := int32(len(w.parts) + 1)
	w.mu.Lock()
	w.parts = append(w.parts, types.CompletedPart{PartNumber: aws.Int32(num)})
	w.mu.Unlock()
	body := w.buf
	w.buf = nil
	select {
	case w.inflight <- struct{}{}:
	case <-w.ctx.Done():
		w.s.putBuf(body)
		return w.s.pathErr("upload", w.name, w.ctx.Err())
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.inflight }()
		defer w.s.putBuf(body)
		err := w.s.acquire(w.ctx)
		if err == nil {
			var out *s3.UploadPartOutput
			out, err = w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{
				Bucket: aws.String(w.s.bucket), Key: aws.String(w.s.Key(w.name)),
				UploadId: aws.String(w.uploadID), PartNumber: aws.Int32(num),
				Body: bytes.NewReader(*body), ContentLength: aws.Int64(int64(len(*body))),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
			})
			w.s.release()
			if err == nil {
				w.mu.Lock()
				w.parts[num-1].ETag = out.ETag
				w.parts[num-1].ChecksumCRC32C = out.ChecksumCRC32C
				w.mu.Unlock()
			}
		}
		if err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = w.s.pathErr("upload", w.name, err)
			}
			w.mu.Unlock()
		}
	}()
	return nil
}

// Commit implements snapshot.FileWriter: the object appears whole, and
// only if no object of its name exists.
func (w *writer) Commit() error {
	if w.done {
		return fmt.Errorf("commit %s: %w", w.s.url(w.name), errors.New("file already committed or aborted"))
	}
	w.done = true
	err := w.commit()
	if err != nil {
		w.abortUpload()
	}
	w.s.putBuf(w.buf)
	w.buf = nil
	return err
}

func (w *writer) commit() error {
	if w.uploadID == "" {
		var body []byte
		if w.buf != nil {
			body = *w.buf
		}
		return w.conditional(func(ctx context.Context, once func(*s3.Options)) error {
			if err := w.s.acquire(ctx); err != nil {
				return err
			}
			defer w.s.release()
			_, err := w.s.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(w.s.bucket), Key: aws.String(w.s.Key(w.name)),
				Metadata: map[string]string{tokenKey: w.token},
				Body:     bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
				IfNoneMatch:       aws.String("*"),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
			}, once)
			return err
		})
	}
	if w.buf != nil && len(*w.buf) > 0 {
		if err := w.sendPart(); err != nil {
			return err
		}
	}
	w.wg.Wait()
	if err := w.failed(); err != nil {
		return err
	}
	return w.conditional(func(ctx context.Context, once func(*s3.Options)) error {
		_, err := w.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(w.s.bucket), Key: aws.String(w.s.Key(w.name)),
			UploadId:        aws.String(w.uploadID),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
			IfNoneMatch:     aws.String("*"),
		}, once)
		if err == nil {
			w.uploadID = "" // nothing left to abort
		}
		return err
	})
}

// conditional runs an exclusive create, put, with retries of its own
// rather than the SDK's, because a retry is ambiguous: the attempt that
// broke may have created the object, and the retry then finds it taken.
// So after a broken attempt, and on a taken name after the first
// attempt, it reads the object's writer token (metadata every writer
// stamps with random bits of its own): the object is this writer's, and
// the commit succeeded, or another's, and it failed with fs.ErrExist. A
// 409 ConditionalRequestConflict (another conditional write of the name
// in flight) is tried again: the other may yet fail.
func (w *writer) conditional(put func(context.Context, func(*s3.Options)) error) error {
	once := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	var err error
	for attempt := 1; ; attempt++ {
		err = put(w.ctx, once)
		if err == nil {
			return nil
		}
		switch ex := explain(err); {
		case errors.Is(ex, errPrecondition) && attempt == 1:
			return w.s.pathErr("commit", w.name, err)
		case errors.Is(ex, errPrecondition) || errors.Is(ex, fs.ErrNotExist) || retryable(err):
			// Taken after a broken attempt, the upload gone (completed by
			// a broken attempt), or broken itself: whose is the object?
			if ours, taken, herr := w.whose(); herr == nil && taken {
				if ours {
					return nil
				}
				return w.s.pathErr("commit", w.name, fs.ErrExist)
			}
			if !retryable(err) {
				return w.s.pathErr("commit", w.name, err)
			}
		case isCode(err, "ConditionalRequestConflict"):
		default:
			return w.s.pathErr("commit", w.name, err)
		}
		if attempt >= w.s.maxAttempts {
			return w.s.pathErr("commit", w.name, fmt.Errorf("gave up after %d attempts: %w", attempt, err))
		}
		if serr := w.s.sleep(w.ctx, attempt); serr != nil {
			return w.s.pathErr("commit", w.name, serr)
		}
	}
}

// whose reports whether the object exists and whether this writer
// created it.
func (w *writer) whose() (ours, taken bool, err error) {
	out, err := w.s.client.HeadObject(w.ctx, &s3.HeadObjectInput{Bucket: aws.String(w.s.bucket), Key: aws.String(w.s.Key(w.name))})
	if err != nil {
		if errors.Is(explain(err), fs.ErrNotExist) {
			return false, false, nil
		}
		return false, false, err
	}
	return out.Metadata[tokenKey] == w.token, true, nil
}

// tokenKey is the user metadata key of a writer's token.
const tokenKey = "pebblestate-writer"

// Abort implements snapshot.FileWriter.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.s.putBuf(w.buf)
	w.buf = nil
	return w.abortUpload()
}

// abortUpload waits for parts in flight and aborts the multipart upload,
// if one was started and not completed. It uses a context of its own, so
// that an upload cancelled with its context is still cleaned up.
func (w *writer) abortUpload() error {
	if w.uploadID == "" {
		return nil
	}
	w.wg.Wait()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	_, err := w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(w.s.bucket), Key: aws.String(w.s.Key(w.name)), UploadId: aws.String(w.uploadID),
	})
	w.uploadID = ""
	if err != nil && !errors.Is(explain(err), fs.ErrNotExist) {
		return w.s.pathErr("abort upload", w.name, err)
	}
	return nil
}
