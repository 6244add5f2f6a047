package nexmarkjob

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/natsembed"
	"github.com/pebblestate/pebblestate/internal/nexmark"
	"github.com/pebblestate/pebblestate/jetstream"
)

func TestQueryInputs(t *testing.T) {
	want := map[string][]string{
		"q5": {bidsByAuction.name}, "q7": {bidsByAuction.name}, "q8": {peopleByID.name},
		"q11": {bidsByBidder.name}, "ttl": {bidsByBidder.name},
	}
	for _, q := range QueryNames {
		ins, err := QueryInputs(q)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, in := range ins {
			names = append(names, in.Name)
		}
		if len(names) != len(want[q]) || names[0] != want[q][0] {
			t.Errorf("%s reads %v, want %v", q, names, want[q])
		}
	}
	if _, err := QueryInputs("q99"); err == nil {
		t.Error("an unknown query has inputs")
	}
}

// TestRunAgainAfterResetOutputs runs q5 (two stages, a partials stream)
// twice over the same input, resetting only the outputs in between, and
// checks both runs against the reference; it also counts the events in
// q8's input through EventPayload.
func TestRunAgainAfterResetOutputs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := natsembed.Start(filepath.Join(dir, "nats"), natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	in := testInput(2000, 5)
	if err := ResetStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := Produce(ctx, js, in, nil); err != nil {
		t.Fatal(err)
	}
	want := nexmark.ReferenceOf(testQueries, in.events(), []string{"q5"})
	if len(want.Q5) == 0 {
		t.Fatal("q5 has no results: the comparison proves nothing")
	}
	msgs := func(name string) (uint64, time.Time) {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs, s.CachedInfo().Created
	}
	inputMsgs, _ := msgs(bidsByAuction.name)
	for run := range 2 {
		reset := time.Now()
		if err := ResetOutputs(ctx, js); err != nil {
			t.Fatal(err)
		}
		for _, s := range []stream{q5Partials, q7Partials, resultsStream} {
			if n, created := msgs(s.name); n != 0 || created.Before(reset) {
				t.Fatalf("run %d: %s holds %d messages, created %v, after the reset at %v", run, s.name, n, created, reset)
			}
		}
		if n, _ := msgs(bidsByAuction.name); n != inputMsgs {
			t.Fatalf("run %d: the reset left %d messages of %d in %s", run, n, inputMsgs, bidsByAuction.name)
		}
		runDir := filepath.Join(dir, "run", strconv.Itoa(run))
		_, err := RunJob(ctx, JobConfig{
			NATS: srv.URL(), Input: in, Queries: testQueries, Only: []string{"q5"}, Parallelism: 2,
			Dir: filepath.Join(runDir, "work"), Checkpoints: filepath.Join(runDir, "checkpoints"),
			Interval: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		got, err := Collect(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		if err := Compare(got, want); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}

	ins, err := QueryInputs("q8")
	if err != nil {
		t.Fatal(err)
	}
	src, err := jetstream.NewSource(ctx, js, jetstream.SourceOptions{
		Stream: ins[0].Name, Subjects: ins[0].Subjects, KeyGroups: backend.KeyGroupRange{Start: 0, End: in.MaxParallelism},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	events := 0
	for {
		m, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if body, ok := EventPayload(m.Data); ok {
			e, err := nexmark.DecodeEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind == nexmark.KindBid {
				t.Fatalf("q8's input holds bid %d", e.N)
			}
			events++
		}
		if m.Pending == 0 {
			break
		}
	}
	if want := 2000 * 4 / 50; events != want {
		t.Errorf("q8's input holds %d events, want %d (people and auctions)", events, want)
	}
}
