package nexmarkjob

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/internal/natsembed"
	"github.com/pebblestate/pebblestate/jetstream"
)

// connectJS connects to url; the connection ends with the test.
func connectJS(t *testing.T, url string) natsjs.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestJobServerGoesAway stops the JetStream server in the middle of a run:
// the job must fail with an error in bounded time, and after the server
// comes back on the same store, a restart from the last checkpoint must
// produce exactly the reference's results.
func TestJobServerGoesAway(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "nats")
	srv, err := natsembed.Start(store, natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Under -race, half the stream: the job runs in this process, and its
	// second checkpoint still completes long before the stream's end.
	events := int64(6000)
	if raceEnabled {
		events = 3000
	}
	in := testInput(events, 11)
	js := connectJS(t, srv.URL())
	if err := resetStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := Produce(ctx, js, in, nil); err != nil {
		t.Fatal(err)
	}
	cfg := JobConfig{NATS: srv.URL(), Input: in, Queries: testQueries, Parallelism: 2,
		Dir: filepath.Join(dir, "run-0"), Checkpoints: filepath.Join(dir, "checkpoints"), Interval: 30 * time.Millisecond}
	stopped := make(chan struct{})
	cfg.OnCheckpoint = func(r CheckpointReport) {
		if r.Completed && r.ID == 2 {
			go func() { srv.Shutdown(); close(stopped) }()
		}
	}
	start := time.Now()
	_, err = RunJob(ctx, cfg)
	<-stopped
	if err == nil {
		t.Fatal("the job finished although its server stopped after its second checkpoint")
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("the job took %v to fail", d)
	}
	t.Logf("the job failed: %v", err)

	srv, err = natsembed.Start(store, natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	cfg.NATS, cfg.Dir, cfg.Restore, cfg.OnCheckpoint = srv.URL(), filepath.Join(dir, "run-1"), true, nil
	cfg.Parallelism = 3
	sum, err := RunJob(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Restored < 2 {
		t.Fatalf("restored from checkpoint %d, want 2 or later", sum.Restored)
	}
	got, err := Collect(ctx, connectJS(t, srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Reference(in, testQueries)
	if err := Compare(got, want); err != nil {
		t.Fatal(err)
	}
}

// TestJobRestoreBadPositions restores a job whose input streams were
// replaced by empty ones: its positions are beyond their ends, which must
// be a clear error naming the key group, not a silent restart.
func TestJobRestoreBadPositions(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsembed.Start(filepath.Join(dir, "nats"), natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx := context.Background()
	in := testInput(2000, 5)
	js := connectJS(t, srv.URL())
	if err := resetStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := Produce(ctx, js, in, nil); err != nil {
		t.Fatal(err)
	}
	cfg := JobConfig{NATS: srv.URL(), Input: in, Queries: testQueries, Parallelism: 2,
		Dir: filepath.Join(dir, "run-0"), Checkpoints: filepath.Join(dir, "checkpoints"), Interval: 50 * time.Millisecond}
	if _, err := RunJob(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := resetStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Restore = filepath.Join(dir, "run-1"), true
	_, err = RunJob(ctx, cfg)
	if !errors.Is(err, jetstream.ErrPosition) {
		t.Fatalf("restore against emptied streams: err = %v, want ErrPosition", err)
	}
	t.Logf("restore failed as it should: %v", err)
}
