package nexmarkjob

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/internal/natsembed"
	"github.com/pebblestate/pebblestate/internal/nexmark"
)

// DemoConfig configures RunDemo.
type DemoConfig struct {
	Input   Input
	Queries nexmark.Queries
	// Only, if not empty, names the queries to run; default: all.
	Only []string
	// Parallelism is each run's parallelism: the first run's, then the
	// one each restart uses. Every run but the last is killed with
	// SIGKILL.
	Parallelism []int
	// KillAfter is how long after a run's first completed checkpoint it
	// is killed.
	KillAfter func(run int) time.Duration
	// Dir holds everything the demo writes but the checkpoints.
	Dir string
	// Checkpoints is the checkpoint root. Default: Dir/checkpoints.
	Checkpoints string
	// NATS is the URL of a server to use. Default: a server embedded in
	// this process, its store in Dir/nats. The job's streams on it
	// (named NEXMARK_*) are deleted and made anew.
	NATS string
	// Interval is the time between two checkpoints.
	Interval time.Duration
	// Command returns the command that runs a job child; the demo adds
	// ChildEnv to its environment and reads its standard output.
	Command func() *exec.Cmd
	// OnEvent, if set, hears what happens, for a progress display.
	OnEvent func(DemoEvent)
}

// DemoEvent is something that happened in a demo.
type DemoEvent struct {
	Produced   int64             // events published so far, when > 0
	Run        int               // the run the rest is about
	Checkpoint *CheckpointReport // a run's checkpoint ended
	Killed     bool              // the run was killed
}

// RunResult reports one run of the job.
type RunResult struct {
	Parallelism int
	Killed      bool
	KilledAfter int64 // the completed checkpoint the kill was scheduled after
	Summary     *JobSummary
	Checkpoints []CheckpointReport
}

// DemoResult reports a demo.
type DemoResult struct {
	Produce   time.Duration
	Reference time.Duration
	Runs      []RunResult
	Answers   nexmark.Answers
}

// RunDemo publishes the input, runs the job as child processes (all but
// the last killed with SIGKILL after a checkpoint, each restart at its own
// parallelism), collects the results and compares them with the reference.
// It returns an error wrapping ErrMismatch if they differ.
func RunDemo(ctx context.Context, cfg DemoConfig) (*DemoResult, error) {
	res := &DemoResult{}
	if cfg.Checkpoints == "" {
		cfg.Checkpoints = filepath.Join(cfg.Dir, "checkpoints")
	}
	url := cfg.NATS
	if url == "" {
		srv, err := natsembed.Start(filepath.Join(cfg.Dir, "nats"), natsembed.Options{})
		if err != nil {
			return nil, err
		}
		defer srv.Shutdown()
		url = srv.URL()
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(10), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, err
	}
	if err := resetStreams(ctx, js); err != nil {
		return nil, err
	}
	start := time.Now()
	err = Produce(ctx, js, cfg.Input, func(n int64) { cfg.emit(DemoEvent{Produced: n}) })
	if err != nil {
		return nil, err
	}
	res.Produce = time.Since(start)
	for run, p := range cfg.Parallelism {
		last := run == len(cfg.Parallelism)-1
		r, err := cfg.runChild(ctx, run, p, url, !last)
		res.Runs = append(res.Runs, r)
		if err != nil {
			return res, fmt.Errorf("run %d at parallelism %d: %w", run, p, err)
		}
		if r.Summary != nil && !last {
			break // it finished before the kill: nothing left to restart
		}
	}
	res.Answers, err = Collect(ctx, js)
	if err != nil {
		return res, err
	}
	want, took := Reference(cfg.Input, cfg.Queries)
	res.Reference = took
	keepOnly(&want, cfg.Only)
	return res, Compare(res.Answers, want)
}

func (cfg *DemoConfig) emit(e DemoEvent) {
	if cfg.OnEvent != nil {
		cfg.OnEvent(e)
	}
}

// runChild runs the job once as a child process, killing it after its
// first completed checkpoint (and KillAfter) if kill is set.
func (cfg *DemoConfig) runChild(ctx context.Context, run, p int, url string, kill bool) (RunResult, error) {
	r := RunResult{Parallelism: p}
	jc := JobConfig{
		NATS: url, Input: cfg.Input, Queries: cfg.Queries, Only: cfg.Only, Parallelism: p,
		Dir:         filepath.Join(cfg.Dir, "run-"+strconv.Itoa(run)),
		Checkpoints: cfg.Checkpoints, Interval: cfg.Interval, Restore: run > 0,
		// One for every run: on S3, a run restores from the copies the
		// one before it kept (local recovery).
		LocalRecoveryDir: filepath.Join(cfg.Dir, "local-recovery"),
	}
	env, err := json.Marshal(jc)
	if err != nil {
		return r, err
	}
	cmd := cfg.Command()
	cmd.Env = append(os.Environ(), ChildEnv+"="+string(env))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start job: %w", err)
	}
	var timer *time.Timer
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		var rep report
		if err := json.Unmarshal(lines.Bytes(), &rep); err != nil {
			continue // not ours
		}
		switch {
		case rep.Checkpoint != nil:
			r.Checkpoints = append(r.Checkpoints, *rep.Checkpoint)
			cfg.emit(DemoEvent{Run: run, Checkpoint: rep.Checkpoint})
			if kill && timer == nil && rep.Checkpoint.Completed {
				r.KilledAfter = rep.Checkpoint.ID
				timer = time.AfterFunc(cfg.KillAfter(run), func() {
					_ = cmd.Process.Kill() // SIGKILL
				})
			}
		case rep.Summary != nil:
			r.Summary = rep.Summary
		}
	}
	err = cmd.Wait()
	if timer != nil && !timer.Stop() {
		// The kill was sent; a run that finished first is not killed.
		var exit *exec.ExitError
		if errors.As(err, &exit) && !exit.Exited() {
			r.Killed = true
			cfg.emit(DemoEvent{Run: run, Killed: true})
			return r, nil
		}
	}
	if err != nil {
		return r, fmt.Errorf("job: %w", err)
	}
	if r.Summary == nil {
		return r, errors.New("job ended without a summary")
	}
	return r, nil
}
