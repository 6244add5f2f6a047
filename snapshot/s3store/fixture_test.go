package s3store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/s3test"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
	"github.com/pebblestate/pebblestate/snapshot/s3store"
)

// fixture is one backend checkpointing to a store on a versitygw.
type fixture struct {
	t   *testing.T
	srv *s3test.Server
	st  *s3store.Store
	b   *backend.Backend[int64]
	v   *backend.Value[int64, backend.VoidNamespace, []byte]
	inc bool
}

const fxKeys, fxValueSize = 12000, 1000 // about 12 MB: files of several parts

// newFixture opens a backend over a server with parts of 5 MiB, so that
// its larger files take multipart uploads.
func newFixture(t *testing.T, incremental bool) *fixture {
	srv := s3test.Start(t)
	opts := srv.Options()
	opts.PartSize = 5 << 20
	st, err := s3store.New(context.Background(), srv.Bucket(t), "job/checkpoints", opts)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, srv: srv, st: st, inc: incremental}
	f.b, f.v = f.open(func(o backend.Options) (*backend.Backend[int64], error) { return backend.Open(backend.Int64, o) })
	t.Cleanup(func() { f.b.Close() })
	return f
}

func (f *fixture) options() backend.Options {
	// Local recovery off: these tests are about what S3 holds, so every
	// restore downloads it.
	return backend.Options{Dir: filepath.Join(f.t.TempDir(), "db"), MaxParallelism: 16,
		KeyGroups: backend.KeyGroupRange{Start: 0, End: 16}, IncrementalCheckpoints: f.inc,
		LocalRecovery: backend.LocalRecoveryOff}
}

func (f *fixture) open(open func(backend.Options) (*backend.Backend[int64], error)) (*backend.Backend[int64], *backend.Value[int64, backend.VoidNamespace, []byte]) {
	f.t.Helper()
	b, err := open(f.options())
	if err != nil {
		f.t.Fatal(err)
	}
	v, err := backend.GetValue(b, backend.ValueDescriptor[[]byte]{Name: "v", Codec: backend.Bytes})
	if err != nil {
		f.t.Fatal(err)
	}
	return b, v
}

// value is key k's value at version: incompressible bytes.
func value(k int64, version int) []byte {
	r := rand.New(rand.NewPCG(uint64(k), uint64(version)))
	b := make([]byte, fxValueSize)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// write sets every key to its value at version.
func (f *fixture) write(version int) {
	f.t.Helper()
	for k := range int64(fxKeys) {
		if err := f.b.SetCurrentKey(k); err != nil {
			f.t.Fatal(err)
		}
		if err := f.v.Update(value(k, version)); err != nil {
			f.t.Fatal(err)
		}
	}
}

// checkpoint takes checkpoint id through st and completes it, keeping 1.
func (f *fixture) checkpoint(id int64, st snapshot.Storage) error {
	ctx := context.Background()
	s, err := f.b.Snapshot(id, st)
	if err != nil {
		return err
	}
	h, err := s.Run(ctx)
	if err != nil {
		return err
	}
	if err := retention.Complete(ctx, st, &snapshot.Checkpoint{ID: id, Handles: []snapshot.Handle{h}}, 1); err != nil {
		return err
	}
	return f.b.NotifyCheckpointComplete(id)
}

// restore restores the latest checkpoint of st into a new directory.
func (f *fixture) restore(st snapshot.Storage) (*backend.Backend[int64], *backend.Value[int64, backend.VoidNamespace, []byte], *snapshot.Checkpoint, error) {
	b, rep, err := backend.RestoreLatest(context.Background(), backend.Int64, f.options(), st)
	if err != nil {
		return nil, nil, rep.Checkpoint, err
	}
	v, err := backend.GetValue(b, backend.ValueDescriptor[[]byte]{Name: "v", Codec: backend.Bytes})
	if err != nil {
		b.Close()
		return nil, nil, nil, err
	}
	return b, v, rep.Checkpoint, nil
}

// mustRestore restores the latest checkpoint and checks it is id and
// holds every key at version.
func (f *fixture) mustRestore(st snapshot.Storage, id int64, version int) {
	f.t.Helper()
	b, v, cp, err := f.restore(st)
	if err != nil {
		f.t.Fatalf("restore: %v", err)
	}
	defer b.Close()
	if cp.ID != id {
		f.t.Fatalf("restored checkpoint %d, want %d", cp.ID, id)
	}
	for k := range int64(fxKeys) {
		if err := b.SetCurrentKey(k); err != nil {
			f.t.Fatal(err)
		}
		got, ok, err := v.Get()
		if err != nil || !ok || string(got) != string(value(k, version)) {
			f.t.Fatalf("restored key %d: %d bytes, %v, %v; want version %d", k, len(got), ok, err, version)
		}
	}
}

// killing is storage that kills the server when a file whose name match
// approves has had at bytes written, or (at < 0) when it is created, or
// when at bytes of a file match approves have been read.
type killing struct {
	snapshot.Storage
	kill  func()
	match func(name string) bool
	at    int64
	read  bool // kill on reads rather than writes
	once  sync.Once
	fired atomic.Bool
}

func (k *killing) fire() { k.once.Do(func() { k.kill(); k.fired.Store(true) }) }

func (k *killing) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	w, err := k.Storage.Create(ctx, name)
	if err != nil || k.read || !k.match(name) {
		return w, err
	}
	if k.at < 0 {
		k.fire()
	}
	return &killingWriter{FileWriter: w, k: k}, nil
}

type killingWriter struct {
	snapshot.FileWriter
	k *killing
	n int64
}

func (w *killingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.k.at >= 0 && w.n >= w.k.at {
		w.k.fire()
	}
	return w.FileWriter.Write(p)
}

func (k *killing) Open(ctx context.Context, name string) (snapshot.File, error) {
	f, err := k.Storage.Open(ctx, name)
	if err != nil || !k.read || !k.match(name) {
		return f, err
	}
	return &killingFile{File: f, k: k}, nil
}

type killingFile struct {
	snapshot.File
	k *killing
	n atomic.Int64
}

func (f *killingFile) ReadAt(p []byte, off int64) (int, error) {
	if f.n.Add(int64(len(p))) >= f.k.at {
		f.k.fire()
	}
	return f.File.ReadAt(p, off)
}

// Root passes the store's root on, so that the wrapper is the same root
// as the store (snapshot.SameRoot).
func (k *killing) Root() string { return k.Storage.(interface{ Root() string }).Root() }

// RemoveTemp passes the store's on.
func (k *killing) RemoveTemp(ctx context.Context, drop func(string) bool) error {
	return k.Storage.(snapshot.TempRemover).RemoveTemp(ctx, drop)
}

// within fails the test if op took longer than limit: retries are
// bounded.
func within(t *testing.T, limit time.Duration, what string, op func() error) error {
	t.Helper()
	start := time.Now()
	err := op()
	if d := time.Since(start); d > limit {
		t.Errorf("%s took %v with the server down, want at most %v: retries are not bounded", what, d, limit)
	}
	return err
}

// wantUnreachable fails the test unless err names the storage and says the
// endpoint cannot be reached.
func wantUnreachable(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded with the server down", what)
	}
	if msg := err.Error(); !strings.Contains(msg, "s3://") || !strings.Contains(msg, "cannot reach the S3 endpoint") {
		t.Fatalf("%s: unclear error %q", what, msg)
	}
	if errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("%s: a dead server reported as corruption: %v", what, err)
	}
}
