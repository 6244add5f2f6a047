package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pebblestate/pebblestate/internal/nexmark"
	"github.com/pebblestate/pebblestate/internal/nexmarkjob"
)

// demoConfig is what the demo subcommand runs.
type demoConfig struct {
	events          int64
	parallelism     int // before the crash
	restart         int // after it
	maxParallelism  int
	seed            uint64
	dir             string // work directory: NATS store, backends
	checkpoints     string // checkpoint root; default dir/checkpoints
	nats            string // server URL; default embedded
	interval        time.Duration
	progress        bool // draw a progress bar on stderr
	keepCheckpoints bool // checkpoints outlive the run
}

// demoQueries are the demo's query parameters: windows of seconds over a
// stream of 1,000 events a second of event time, so that each query has
// hundreds of results.
var demoQueries = nexmark.Queries{
	Window: 10 * time.Second, Slide: 2 * time.Second, SessionGap: 5 * time.Second,
	TTL: 30 * time.Second, Every: 10,
}

// runDemo publishes the events, runs the job as a child process, kills it
// with SIGKILL after a checkpoint, restarts it at another parallelism from
// the newest checkpoint and compares the results with the reference.
func runDemo(ctx context.Context, cfg demoConfig, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in := nexmarkjob.Input{
		Events: cfg.events, MaxParallelism: cfg.maxParallelism, WatermarkEvery: 500,
		Nexmark: nexmark.Config{Seed: cfg.seed, FirstEventRate: 1000},
	}
	natsWhere := "embedded, its store in " + cfg.dir
	if cfg.nats != "" {
		natsWhere = cfg.nats
	}
	fmt.Fprintf(stdout, "pebblestate demo: %d Nexmark events (seed %d) through NATS JetStream (%s)\n", cfg.events, cfg.seed, natsWhere)
	fmt.Fprintf(stdout, "queries %s at parallelism %d, killed with SIGKILL after a checkpoint, restarted at parallelism %d;\n",
		strings.Join(nexmarkjob.QueryNames, ", "), cfg.parallelism, cfg.restart)
	fmt.Fprintf(stdout, "max parallelism %d; a checkpoint every %v into %s\n", cfg.maxParallelism, cfg.interval, cfg.checkpoints)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	bar := &demoBar{w: stderr, on: cfg.progress, events: in.Events, total: expectedEvents(in)}
	res, err := nexmarkjob.RunDemo(ctx, nexmarkjob.DemoConfig{
		Input: in, Queries: demoQueries,
		Parallelism: []int{cfg.parallelism, cfg.restart},
		// A random moment: up to six checkpoint intervals after the
		// first completed checkpoint.
		KillAfter:   func(int) time.Duration { return time.Duration(rng.Int64N(int64(6 * cfg.interval))) },
		Dir:         cfg.dir,
		Checkpoints: cfg.checkpoints,
		NATS:        cfg.nats,
		Interval:    cfg.interval,
		Command:     func() *exec.Cmd { return exec.Command(self) },
		OnEvent:     bar.event,
	})
	bar.done()
	if res != nil {
		printSummary(stdout, cfg, res)
	}
	if err != nil {
		return err
	}
	a := res.Answers
	fmt.Fprintf(stdout, "results equal the in-memory reference: q5 %d, q7 %d, q8 %d, q11 %d, ttl %d results\n",
		len(a.Q5), len(a.Q7), len(a.Q8), len(a.Q11), len(a.TTL))
	return nil
}

// expectedEvents is how many input events the job's first stages apply
// in a run without a crash: each bid is read by four of them.
func expectedEvents(in nexmarkjob.Input) int64 {
	var n int64
	for i := range in.Events {
		if nexmark.KindOf(i) == nexmark.KindBid {
			n += 4
		} else {
			n++
		}
	}
	return n
}

// printSummary writes the demo's table: per run, what happened and how
// fast; per query, its state size; and the checkpoints.
func printSummary(w io.Writer, cfg demoConfig, res *nexmarkjob.DemoResult) {
	fmt.Fprintf(w, "\npublished in %v; the in-memory reference took %v\n",
		res.Produce.Round(time.Millisecond), res.Reference.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tparallelism\tended\trestored from\trestore\tmessages\tmessages/s\tcheckpoints\tsync max\tasync max\tuploaded\tfull size\t")
	for i, r := range res.Runs {
		ended := "finished"
		if r.Killed {
			ended = fmt.Sprintf("SIGKILL after chk %d", r.KilledAfter)
		}
		restored, restore, msgs, rate := "-", "-", "-", "-"
		if s := r.Summary; s != nil {
			if s.Restored > 0 {
				restored = fmt.Sprintf("chk %d", s.Restored)
			}
			restore = s.RestoreTime.Round(time.Millisecond).String()
			var n int64
			for _, v := range s.Applied {
				n += v
			}
			msgs = fmt.Sprint(n)
			rate = fmt.Sprintf("%.0f", float64(n)/s.Run.Seconds())
		} else if i > 0 {
			restored = "newest"
		}
		var done int
		var maxSync, maxAsync time.Duration
		var up, full int64
		for _, c := range r.Checkpoints {
			if !c.Completed {
				continue
			}
			done++
			maxSync, maxAsync = max(maxSync, c.MaxSync), max(maxAsync, c.MaxAsync)
			up += c.CheckpointedSize
			full = c.StateSize
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%v\t%v\t%s\t%s\t\n", i, r.Parallelism, ended, restored, restore,
			msgs, rate, done, maxSync.Round(time.Millisecond), maxAsync.Round(time.Millisecond), fmtBytes(up), fmtBytes(full))
	}
	tw.Flush()
	for i, r := range res.Runs {
		if s := r.Summary; s != nil && s.Restored > 0 && s.RestoreLocal > 0 {
			fmt.Fprintf(w, "run %d restored %s from local copies (local recovery) and downloaded %s\n",
				i, fmtBytes(s.RestoreLocal), fmtBytes(s.RestoreDownloaded))
		}
	}
	printQueries(w, res)
	last := lastCompleted(res)
	if last == nil {
		return
	}
	fmt.Fprintf(w, "\nstate per operator at checkpoint %d:\n", last.ID)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ops := slices.Sorted(maps.Keys(last.StateSizes))
	for _, op := range ops {
		fmt.Fprintf(tw, "  %s\t%s\n", op, fmtBytes(last.StateSizes[op]))
	}
	tw.Flush()
	if cfg.keepCheckpoints {
		fmt.Fprintf(w, "checkpoints kept in %s: try `pebblestate inspect %s` and `pebblestate verify %s`\n",
			cfg.checkpoints, cfg.checkpoints, cfg.checkpoints)
	}
	fmt.Fprintln(w)
}

// printQueries writes, per query, the messages its operators applied in
// every run and how fast, and its state size at the last checkpoint.
func printQueries(w io.Writer, res *nexmarkjob.DemoResult) {
	applied, secs := map[string]int64{}, map[string]float64{}
	for _, r := range res.Runs {
		if r.Summary == nil {
			continue
		}
		seen := map[string]bool{}
		for op, n := range r.Summary.Applied {
			q := nexmarkjob.QueryOf(op)
			applied[q] += n
			if !seen[q] {
				secs[q] += r.Summary.Run.Seconds()
				seen[q] = true
			}
		}
	}
	size := map[string]int64{}
	if last := lastCompleted(res); last != nil {
		for op, n := range last.StateSizes {
			size[nexmarkjob.QueryOf(op)] += n
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "query\tmessages applied\tmessages/s\tstate size\t")
	for _, q := range nexmarkjob.QueryNames {
		rate := "-"
		if secs[q] > 0 {
			rate = fmt.Sprintf("%.0f", float64(applied[q])/secs[q])
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t\n", q, applied[q], rate, fmtBytes(size[q]))
	}
	tw.Flush()
}

func lastCompleted(res *nexmarkjob.DemoResult) *nexmarkjob.CheckpointReport {
	for i := len(res.Runs) - 1; i >= 0; i-- {
		cs := res.Runs[i].Checkpoints
		for j := len(cs) - 1; j >= 0; j-- {
			if cs[j].Completed {
				return &cs[j]
			}
		}
	}
	return nil
}

// fmtBytes formats n bytes in KiB or MiB.
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// demoBar draws the demo's progress on one line of stderr.
type demoBar struct {
	w      io.Writer
	on     bool
	events int64 // input events published
	total  int64 // input events the first stages apply
	run    int
	line   string
}

func (p *demoBar) event(e nexmarkjob.DemoEvent) {
	switch {
	case e.Produced > 0:
		p.draw("publish", e.Produced, p.events)
	case e.Checkpoint != nil:
		p.run = e.Run
		p.draw(fmt.Sprintf("run %d, chk %d", e.Run, e.Checkpoint.ID), e.Checkpoint.Events, p.total)
	case e.Killed && p.on:
		p.clear()
		fmt.Fprintf(p.w, "run %d: killed with SIGKILL; restarting from the newest checkpoint\n", e.Run)
	}
}

func (p *demoBar) draw(what string, n, total int64) {
	if !p.on {
		return
	}
	const width = 30
	if total <= 0 {
		p.line = fmt.Sprintf("%-16s %d events", what, n)
	} else {
		fill := int(min(n, total) * width / total)
		p.line = fmt.Sprintf("%-16s [%s%s] %3d%%", what, strings.Repeat("#", fill), strings.Repeat(".", width-fill), min(n, total)*100/total)
	}
	fmt.Fprintf(p.w, "\r%s", p.line)
}

func (p *demoBar) clear() {
	if p.on && p.line != "" {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", len(p.line)))
		p.line = ""
	}
}

func (p *demoBar) done() { p.clear() }
