package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pebblestate/pebblestate/snapshot"
)

// TestKillServer kills versitygw in the middle of a checkpoint's upload,
// of its commit, and of a restore. Each fails in bounded time with an
// error that names the storage and says it cannot be reached; after the
// server restarts on the same directory the previous checkpoint still
// restores, and the next completed checkpoint's retention collects the
// debris: the dead checkpoint's objects and its unfinished multipart
// uploads.
func TestKillServer(t *testing.T) {
	for _, inc := range []bool{false, true} {
		name := "Full"
		if inc {
			name = "Incremental"
		}
		t.Run(name+"/Upload", func(t *testing.T) {
			f := newFixture(t, inc)
			f.write(1)
			if err := f.checkpoint(1, f.st); err != nil {
				t.Fatal(err)
			}
			f.write(2)
			// Full: past the first 5 MiB part of the data file, so that a
			// multipart upload is under way when the server dies.
			// Incremental: 1 MiB into an SST (Pebble's are smaller).
			at := int64(6 << 20)
			if inc {
				at = 1 << 20
			}
			k := &killing{Storage: f.st, kill: f.srv.Kill, at: at, match: func(n string) bool {
				return !strings.HasSuffix(n, snapshot.MetadataName)
			}}
			err := within(t, 20*time.Second, "checkpoint 2", func() error { return f.checkpoint(2, k) })
			if !k.fired.Load() {
				t.Fatalf("no file of checkpoint 2 reached %d bytes: the fixture is too small", at)
			}
			wantUnreachable(t, "checkpoint 2", err)
			f.srv.Restart()
			if up := uploads(t, f); len(up) == 0 && !inc {
				t.Fatal("the killed upload left no unfinished multipart upload: the test shows nothing")
			}
			f.mustRestore(f.st, 1, 1)
			f.afterwards(3, 2)
		})
		t.Run(name+"/Commit", func(t *testing.T) {
			f := newFixture(t, inc)
			f.write(1)
			if err := f.checkpoint(1, f.st); err != nil {
				t.Fatal(err)
			}
			f.write(2)
			k := &killing{Storage: f.st, kill: f.srv.Kill, at: -1, match: func(n string) bool {
				return n == snapshot.MetadataPath(2)
			}}
			err := within(t, 20*time.Second, "commit of checkpoint 2", func() error { return f.checkpoint(2, k) })
			if !k.fired.Load() {
				t.Fatal("checkpoint 2 never committed")
			}
			wantUnreachable(t, "commit of checkpoint 2", err)
			f.srv.Restart()
			f.mustRestore(f.st, 1, 1)
			if names, _ := f.st.List(context.Background(), snapshot.Dir(2)+"/"); len(names) == 0 {
				t.Fatal("checkpoint 2 left no files: the test shows nothing")
			}
			f.afterwards(3, 2)
		})
		t.Run(name+"/Restore", func(t *testing.T) {
			f := newFixture(t, inc)
			f.write(1)
			if err := f.checkpoint(1, f.st); err != nil {
				t.Fatal(err)
			}
			k := &killing{Storage: f.st, kill: f.srv.Kill, at: 1 << 20, read: true, match: func(n string) bool {
				return !strings.HasSuffix(n, snapshot.MetadataName)
			}}
			err := within(t, 20*time.Second, "restore", func() error {
				b, _, _, err := f.restore(k)
				if err == nil {
					b.Close()
				}
				return err
			})
			if !k.fired.Load() {
				t.Fatal("the restore read less than 1 MiB of a file")
			}
			wantUnreachable(t, "restore", err)
			f.srv.Restart()
			f.mustRestore(f.st, 1, 1)
		})
	}
}

// uploads lists the store's unfinished multipart uploads.
func uploads(t *testing.T, f *fixture) []string {
	t.Helper()
	up, err := f.st.Uploads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// afterwards completes checkpoint id at version and checks that its
// retention left exactly it: no object of the dead checkpoint, no
// unfinished upload, and a restore of it holds version.
func (f *fixture) afterwards(id int64, version int) {
	t := f.t
	t.Helper()
	f.write(version)
	if err := f.checkpoint(id, f.st); err != nil {
		t.Fatal(err)
	}
	if up := uploads(t, f); len(up) != 0 {
		t.Fatalf("unfinished uploads after retention: %v", up)
	}
	cp, err := snapshot.Load(context.Background(), f.st, id)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{snapshot.MetadataPath(id): true}
	for _, h := range cp.Handles {
		for _, r := range h.Files {
			used[r.Name] = true
		}
		for _, r := range sharedRefs(h) {
			used[r.Name] = true
		}
	}
	names, err := f.st.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !used[n] {
			t.Errorf("retention left %s, which checkpoint %d does not use", n, id)
		}
	}
	f.mustRestore(f.st, id, version)
}

// TestCorruptObject overwrites one byte of every kind of file a
// checkpoint has, through the S3 API: the restore fails with ErrCorrupt
// naming the object.
func TestCorruptObject(t *testing.T) {
	for _, inc := range []bool{false, true} {
		name := "Full"
		if inc {
			name = "Incremental"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, inc)
			f.write(1)
			if err := f.checkpoint(1, f.st); err != nil {
				t.Fatal(err)
			}
			cp, err := snapshot.Load(context.Background(), f.st, 1)
			if err != nil {
				t.Fatal(err)
			}
			h := cp.Handles[0]
			var victim snapshot.FileRef
			for _, r := range append(h.Files, sharedRefs(h)...) {
				if r.Size > victim.Size {
					victim = r
				}
			}
			flipByte(t, f, victim.Name, victim.Size/2)
			b, _, _, err := f.restore(f.st)
			if err == nil {
				b.Close()
				t.Fatalf("restore of a checkpoint whose %s changed succeeded", victim.Name)
			}
			if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), victim.Name) {
				t.Fatalf("restore = %v, want ErrCorrupt naming %s", err, victim.Name)
			}
		})
	}
}

func sharedRefs(h snapshot.Handle) []snapshot.FileRef {
	var out []snapshot.FileRef
	for _, s := range h.Shared {
		out = append(out, s.FileRef)
	}
	return out
}

// flipByte overwrites the byte at off of the object of name through the
// S3 API, as a person or a faulty tool could.
func flipByte(t *testing.T, f *fixture, name string, off int64) {
	t.Helper()
	ctx := context.Background()
	c := f.st.Client()
	key := aws.String(f.st.Key(name))
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.st.Bucket()), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x5a
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(f.st.Bucket()), Key: key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
}
