package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/natsembed"
	"github.com/pebblestate/pebblestate/internal/nexmark"
	"github.com/pebblestate/pebblestate/internal/nexmarkjob"
	"github.com/pebblestate/pebblestate/jetstream"
)

// BenchmarkNexmark/<query>/p<P> runs one query of the demo job
// (internal/nexmarkjob) end to end through JetStream, and beside it, in the
// same loop iteration, the same query on the in-memory reference and a raw
// consume of the same input, so that the ratios come from one run:
//
//   - job: RunJob with Only=[query] at parallelism P over the input the
//     benchmark published once beforehand (not timed), checkpoints every
//     -nexmark.interval into a local root (full snapshots, the backend's
//     default), one backend per subtask. Its time is JobSummary.Run, from
//     the first message to every subtask's results flushed, the
//     checkpoints taken meanwhile included (the last one, after the end
//     of the input, and opening the backends are not). ns/op is the whole
//     RunJob call.
//   - reference: nexmark.ReferenceOf over the events already in memory,
//     for that query only: one goroutine, no encoding, no state backend.
//   - raw: P jetstream.Sources per input stream the query's first stage
//     reads, each over its subtask's key groups as the job's are, every
//     message read and every event decoded (nexmark.DecodeEvent), no
//     state: the log's own limit for this read pattern.
//
// Events are all events of the stream (people, auctions and bids), as
// Nexmark counts them, whichever the query reads: the producer routes
// each event only to the streams of the operators that read it, so q8
// reads 8% of them and the others 92% (see RESULTS.md). events/cpu-s is
// events per second of process CPU time (user + system, every thread:
// the embedded NATS server, Pebble's background work and the GC
// included) over the whole RunJob call, that is events/s per core used;
// cores is that CPU time over RunJob's wall time. The first iteration's
// results are collected and compared with the reference (not timed).

var (
	nexmarkEvents = flag.Int64("nexmark.events", 200_000,
		"events in the stream BenchmarkNexmark publishes and runs each query over")
	nexmarkParallelism = flag.String("nexmark.parallelism", "2",
		"comma-separated parallelisms BenchmarkNexmark runs each query at")
	nexmarkInterval = flag.Duration("nexmark.interval", time.Second,
		"time between two checkpoints of BenchmarkNexmark's job")
	nexmarkProfile = flag.String("nexmark.cpuprofile", "",
		"if set, BenchmarkNexmark writes a CPU profile of the first job run of each query and parallelism to this path plus .<query>-p<P>: the job alone, without the publishing, the reference or the raw consume")
)

// nexmarkQueries are Nexmark's own window sizes (10 s windows, q5 sliding
// by 2 s, 10 s session gap); the TTL query remembers 10 s and answers on
// the bids whose event number is a multiple of 97, about one in 100 (a
// multiple of 50 would be a person: never a bid).
var nexmarkQueries = nexmark.Queries{
	Window: 10 * time.Second, Slide: 2 * time.Second, SessionGap: 10 * time.Second,
	TTL: 10 * time.Second, Every: 97,
}

// nexmarkInput is the generator's defaults (10,000 events per second of
// event time, 1,000 active people, 100 auctions in flight), Flink's
// default max parallelism, and a watermark every second of event time.
func nexmarkInput(events int64) nexmarkjob.Input {
	return nexmarkjob.Input{
		Events: events, MaxParallelism: 128, WatermarkEvery: 10_000,
		Nexmark: nexmark.Config{Seed: seed},
	}
}

func BenchmarkNexmark(b *testing.B) {
	ps, err := parseParallelism(*nexmarkParallelism)
	if err != nil {
		b.Fatal(err)
	}
	in := nexmarkInput(*nexmarkEvents)
	if in.Events < 1 {
		b.Fatalf("-nexmark.events=%d, need at least 1", in.Events)
	}
	ctx := context.Background()
	dir := b.TempDir()
	srv, err := natsembed.Start(filepath.Join(dir, "nats"), natsembed.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if err := nexmarkjob.ResetStreams(ctx, js); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := nexmarkjob.Produce(ctx, js, in, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("published %d events in %v", in.Events, time.Since(start).Round(time.Millisecond))
	g := nexmark.New(in.Nexmark)
	events := make([]nexmark.Event, in.Events)
	for i := range events {
		events[i] = g.Next()
	}
	nb := &nexmarkBench{js: js, url: srv.URL(), in: in, events: events, dir: dir}
	for _, query := range nexmarkjob.QueryNames {
		b.Run(query, func(b *testing.B) {
			for _, p := range ps {
				b.Run("p"+strconv.Itoa(p), func(b *testing.B) { nb.run(b, query, p) })
			}
		})
	}
}

func parseParallelism(s string) ([]int, error) {
	var ps []int
	for f := range strings.SplitSeq(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 {
			return nil, fmt.Errorf("-nexmark.parallelism %q: %q is not a parallelism", s, f)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// nexmarkBench is the published input every query's benchmark runs over.
type nexmarkBench struct {
	js     natsjs.JetStream
	url    string
	in     nexmarkjob.Input
	events []nexmark.Event // the same events, for the reference
	dir    string
	runs   int
}

// nexmarkTotals add up the iterations of one benchmark.
type nexmarkTotals struct {
	run, jobWall, jobCPU time.Duration // JobSummary.Run, RunJob's wall and CPU time
	ref                  time.Duration
	raw, rawCPU          time.Duration
	applied, checkpoints int64
}

func (nb *nexmarkBench) run(b *testing.B, query string, p int) {
	ctx := context.Background()
	want := nexmark.ReferenceOf(nexmarkQueries, nb.events, []string{query})
	if len(want.Q5)+len(want.Q7)+len(want.Q8)+len(want.Q11)+len(want.TTL) == 0 {
		b.Fatalf("%s has no answers over %d events: the comparison proves nothing", query, len(nb.events))
	}
	var tot nexmarkTotals
	first := true
	for b.Loop() {
		b.StopTimer()
		if err := nexmarkjob.ResetOutputs(ctx, nb.js); err != nil {
			b.Fatal(err)
		}
		nb.runs++
		runDir := filepath.Join(nb.dir, "run-"+strconv.Itoa(nb.runs))
		cpu0, _ := processCPU()
		t0 := time.Now()
		stopProfile := nb.profile(b, query, p, first)
		b.StartTimer()
		sum, err := nexmarkjob.RunJob(ctx, nexmarkjob.JobConfig{
			NATS: nb.url, Input: nb.in, Queries: nexmarkQueries, Only: []string{query}, Parallelism: p,
			Dir: filepath.Join(runDir, "work"), Checkpoints: filepath.Join(runDir, "checkpoints"),
			Interval: *nexmarkInterval,
		})
		b.StopTimer()
		stopProfile()
		tot.jobWall += time.Since(t0)
		cpu1, _ := processCPU()
		tot.jobCPU += cpu1 - cpu0
		if err != nil {
			b.Fatal(err)
		}
		tot.run += sum.Run
		for _, n := range sum.Applied {
			tot.applied += n
		}
		tot.checkpoints += int64(len(sum.Checkpoints))
		if first {
			first = false
			got, err := nexmarkjob.Collect(ctx, nb.js)
			if err != nil {
				b.Fatal(err)
			}
			if err := nexmarkjob.Compare(got, want); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.RemoveAll(runDir); err != nil {
			b.Fatal(err)
		}

		t0 = time.Now()
		_ = nexmark.ReferenceOf(nexmarkQueries, nb.events, []string{query})
		tot.ref += time.Since(t0)

		cpu0, _ = processCPU()
		took, n, err := rawConsume(ctx, nb.js, query, p, nb.in.MaxParallelism)
		cpu1, _ = processCPU()
		if err != nil {
			b.Fatal(err)
		}
		tot.raw += took
		tot.rawCPU += cpu1 - cpu0
		if want := nb.readBy(query); n != want {
			b.Fatalf("raw consume of %s's input decoded %d events, want %d", query, n, want)
		}
		b.StartTimer()
	}
	nb.report(b, &tot)
}

// profile starts the CPU profile -nexmark.cpuprofile asks for, on the
// first iteration, and returns what stops it.
func (nb *nexmarkBench) profile(b *testing.B, query string, p int, first bool) (stop func()) {
	if *nexmarkProfile == "" || !first {
		return func() {}
	}
	f, err := os.Create(*nexmarkProfile + "." + query + "-p" + strconv.Itoa(p))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(errors.Join(err, f.Close()))
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// readBy returns how many of the events query's first stage reads.
func (nb *nexmarkBench) readBy(query string) int64 {
	var n int64
	for i := range nb.events {
		if (nb.events[i].Kind == nexmark.KindBid) != (query == "q8") {
			n++
		}
	}
	return n
}

func (nb *nexmarkBench) report(b *testing.B, tot *nexmarkTotals) {
	events := float64(nb.in.Events) * float64(b.N)
	perSec := func(d time.Duration) float64 { return events / d.Seconds() }
	job, ref, raw := perSec(tot.run), perSec(tot.ref), perSec(tot.raw)
	b.ReportMetric(job, "events/s")
	b.ReportMetric(float64(tot.run.Nanoseconds())/events, "ns/event")
	b.ReportMetric(tot.jobCPU.Seconds()/tot.jobWall.Seconds(), "cores")
	b.ReportMetric(perSec(tot.jobCPU), "events/cpu-s")
	b.ReportMetric(ref, "ref-events/s")
	b.ReportMetric(raw, "raw-events/s")
	b.ReportMetric(perSec(tot.rawCPU), "raw-events/cpu-s")
	b.ReportMetric(job/ref, "job/ref")
	b.ReportMetric(job/raw, "job/raw")
	b.ReportMetric(float64(tot.applied)/events, "msgs/event")
	b.ReportMetric(float64(tot.checkpoints)/float64(b.N), "checkpoints")
}

// rawConsume reads the input streams of query's first stage as the job's
// p subtasks do, each with its own Source over its key groups, decodes
// every event and keeps nothing. It returns the time from the first read
// to the last and the events decoded.
func rawConsume(ctx context.Context, js natsjs.JetStream, query string, p, maxP int) (time.Duration, int64, error) {
	ins, err := nexmarkjob.QueryInputs(query)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var srcs []*jetstream.Source
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	for _, in := range ins {
		for i := range p {
			kgs, err := backend.KeyGroupRangeForSubtask(maxP, p, i)
			if err != nil {
				return 0, 0, err
			}
			s, err := jetstream.NewSource(ctx, js, jetstream.SourceOptions{Stream: in.Name, Subjects: in.Subjects, KeyGroups: kgs})
			if err != nil {
				return 0, 0, err
			}
			srcs = append(srcs, s)
		}
	}
	counts := make([]int64, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, s := range srcs {
		wg.Go(func() {
			for {
				m, err := s.Next(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				if body, ok := nexmarkjob.EventPayload(m.Data); ok {
					if _, err := nexmark.DecodeEvent(body); err != nil {
						errs[i] = err
						return
					}
					counts[i]++
				}
				if m.Pending == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	var n int64
	for _, c := range counts {
		n += c
	}
	return took, n, errors.Join(errs...)
}
