package jetstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/backend"
)

const testMaxParallelism = 16

var events = Subjects{Prefix: "test.events"}

// publishEvents publishes n messages, message i to key group i*7 % 16,
// with payload "i", and waits for them all.
func publishEvents(t *testing.T, js natsjs.JetStream, from, n int) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	sink := NewSink(js, SinkOptions{})
	for i := from; i < from+n; i++ {
		kg := i * 7 % testMaxParallelism
		if err := sink.Publish(ctx, events.For(kg), "e"+strconv.Itoa(i), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func rangeOf(t *testing.T, p, i int) backend.KeyGroupRange {
	t.Helper()
	r, err := backend.KeyGroupRangeForSubtask(testMaxParallelism, p, i)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSourceExactlyOnceAcrossRescales consumes a stream in rounds: each
// round runs p subtasks from the positions of the previous round, each
// applying a random number of messages, then "checkpoints" the positions;
// between rounds more messages arrive and the parallelism changes. Every
// message must be applied exactly once, in stream order per key group.
func TestSourceExactlyOnceAcrossRescales(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	_, js := startServer(t)
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := EnsureStream(ctx, js, StreamOptions{Name: "EVENTS", Subjects: events}); err != nil {
		t.Fatal(err)
	}
	applied := map[int]int{} // message -> times applied
	lastSeq := map[int]uint64{}
	var positions map[int]uint64 // the last checkpoint's, nil at first
	total := 0
	for round := range 6 {
		n := 100 + rng.IntN(400)
		publishEvents(t, js, total, n)
		total += n
		p := 1 + rng.IntN(5)
		next := map[int]uint64{}
		for i := range p {
			r := rangeOf(t, p, i)
			var mine map[int]uint64
			if positions != nil {
				mine = map[int]uint64{}
				for kg := r.Start; kg < r.End; kg++ {
					mine[kg] = positions[kg]
				}
			}
			src, err := NewSource(ctx, js, SourceOptions{Stream: "EVENTS", Subjects: events, KeyGroups: r, Positions: mine, Batch: 1 + rng.IntN(64)})
			if err != nil {
				t.Fatalf("round %d subtask %d: %v (seed %d)", round, i, err, seed)
			}
			// The last round drains everything the subtask's key groups
			// still hold (waiting as long as it takes); the others stop
			// early, possibly without a message.
			left := 0
			for v := range total {
				if r.Contains(v*7%testMaxParallelism) && applied[v] == 0 {
					left++
				}
			}
			for {
				if round < 5 && rng.IntN(100) < 2 || round == 5 && left == 0 {
					break
				}
				wait := 500 * time.Millisecond
				if round == 5 {
					wait = 30 * time.Second
				}
				m, err := src.Next(ctxFor(t, wait))
				if errors.Is(err, context.DeadlineExceeded) && round < 5 {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				v, _ := strconv.Atoi(string(m.Data))
				if kg := v * 7 % testMaxParallelism; kg != m.KeyGroup || !r.Contains(kg) {
					t.Fatalf("message %d in key group %d, delivered as %d to %v", v, kg, m.KeyGroup, r)
				}
				if m.Seq <= lastSeq[m.KeyGroup] {
					t.Fatalf("key group %d went back from %d to %d (seed %d)", m.KeyGroup, lastSeq[m.KeyGroup], m.Seq, seed)
				}
				lastSeq[m.KeyGroup] = m.Seq
				applied[v]++
				left--
				if m.Pending == 0 && round < 5 {
					break
				}
			}
			for kg, s := range src.Positions() {
				next[kg] = s
			}
			src.Close()
		}
		positions = next
	}
	for v := range total {
		if applied[v] != 1 {
			t.Fatalf("message %d applied %d times (seed %d)", v, applied[v], seed)
		}
	}
}

func TestSourcePositionErrors(t *testing.T) {
	_, js := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	if _, err := EnsureStream(ctx, js, StreamOptions{Name: "EVENTS", Subjects: events}); err != nil {
		t.Fatal(err)
	}
	publishEvents(t, js, 0, 50)
	r := backend.KeyGroupRange{Start: 0, End: 4}
	full := func() map[int]uint64 { return map[int]uint64{0: 1, 1: 2, 2: 3, 3: 4} }
	for name, tc := range map[string]struct {
		pos  map[int]uint64
		want string
	}{
		"missing":  {func() map[int]uint64 { m := full(); delete(m, 2); return m }(), "no position for key group 2"},
		"beyond":   {func() map[int]uint64 { m := full(); m[3] = 51; return m }(), "key group 3 position 51 is beyond stream EVENTS's last sequence 50"},
		"outside":  {func() map[int]uint64 { m := full(); m[9] = 1; return m }(), "key group 9 is outside the source's range [0, 4)"},
		"no-range": {nil, "empty"},
	} {
		t.Run(name, func(t *testing.T) {
			o := SourceOptions{Stream: "EVENTS", Subjects: events, KeyGroups: r, Positions: tc.pos}
			if name == "no-range" {
				o.KeyGroups = backend.KeyGroupRange{}
			}
			_, err := NewSource(ctx, js, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if name != "no-range" && !errors.Is(err, ErrPosition) {
				t.Fatalf("err = %v, want ErrPosition", err)
			}
		})
	}
	if _, err := NewSource(ctx, js, SourceOptions{Stream: "NOPE", Subjects: events, KeyGroups: r}); err == nil || !errors.Is(err, natsjs.ErrStreamNotFound) {
		t.Fatalf("missing stream: err = %v", err)
	}
}

func TestSourceServerGone(t *testing.T) {
	srv, js := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	if _, err := EnsureStream(ctx, js, StreamOptions{Name: "EVENTS", Subjects: events}); err != nil {
		t.Fatal(err)
	}
	publishEvents(t, js, 0, 10)
	src, err := NewSource(ctx, js, SourceOptions{Stream: "EVENTS", Subjects: events, KeyGroups: rangeOf(t, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for range 10 {
		if _, err := src.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv.Shutdown()
	start := time.Now()
	_, err = src.Next(ctxFor(t, 3*time.Second))
	if err == nil {
		t.Fatal("Next succeeded with the server gone")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Next took %v to fail", d)
	}
	sink := NewSink(js, SinkOptions{})
	perr := sink.Publish(ctx, events.For(0), "late", []byte("x"))
	if perr == nil {
		perr = sink.Flush(ctxFor(t, 5*time.Second))
	}
	if perr == nil {
		t.Fatal("publishing to a stopped server succeeded")
	}
	t.Logf("next: %v; publish: %v", err, perr)
}
