package nexmarkjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/internal/nexmark"
	"github.com/pebblestate/pebblestate/jetstream"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// JobConfig is one run of the job: from the start, or from the newest
// checkpoint, to the end of the input.
type JobConfig struct {
	// NATS is the server's URL.
	NATS string
	// Input is the event stream the producer published.
	Input Input
	// Queries are the query parameters.
	Queries nexmark.Queries
	// Only, if not empty, names the queries to run (of QueryNames);
	// default: all.
	Only []string
	// Parallelism is every operator's number of subtasks.
	Parallelism int
	// Dir holds the backends' working directories; it must be empty or
	// missing.
	Dir string
	// Checkpoints is the checkpoint root: a directory, or a URL of a
	// registered scheme (snapshot.OpenRoot), such as s3://bucket/prefix
	// when the program imports snapshot/s3store.
	Checkpoints string
	// LocalRecoveryDir is the backends' Options.LocalRecoveryDir: where
	// they keep local copies of their checkpoints on remote storage, and
	// where a restore looks for them. Default: the backends' default.
	LocalRecoveryDir string
	// Interval is the time between two checkpoints' triggers.
	Interval time.Duration
	// Restore starts from the newest checkpoint in Checkpoints instead of
	// from the beginning.
	Restore bool
	// OnCheckpoint, if set, receives every checkpoint's stats.
	OnCheckpoint func(CheckpointReport) `json:"-"`
	// Logger receives the backends' logs. Default: discard.
	Logger *slog.Logger `json:"-"`
}

// publishAckTimeout bounds the wait for the server's acknowledgement of a
// published message.
const publishAckTimeout = 20 * time.Second

// JobSummary reports a run.
type JobSummary struct {
	Restored    int64         // checkpoint restored from, or 0
	RestoreTime time.Duration // opening every backend and source
	Run         time.Duration // from the first message to the last flush
	Applied     map[string]int64
	Checkpoints []CheckpointReport

	// RestoreLocal and RestoreDownloaded are the bytes the restored
	// backends took from local copies and from checkpoint storage.
	RestoreLocal, RestoreDownloaded int64
}

// job is the running job: every subtask of every operator.
type job struct {
	cfg      JobConfig
	st       snapshot.Storage
	js       natsjs.JetStream
	subtasks []*subtask
	coord    *checkpoint.Coordinator
}

// RunJob runs the job until every subtask applied the input's final
// watermark, its results are published and the last checkpoint is done.
func RunJob(ctx context.Context, cfg JobConfig) (JobSummary, error) {
	var sum JobSummary
	nc, err := nats.Connect(cfg.NATS, nats.MaxReconnects(10), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		return sum, fmt.Errorf("connect to %s: %w", cfg.NATS, err)
	}
	defer nc.Close()
	// Every subtask's sink shares the connection's limit of messages
	// awaiting acknowledgement: make room for all of them.
	// An acknowledgement that never comes (the server went away) fails
	// its publish after publishAckTimeout instead of holding a barrier.
	js, err := natsjs.New(nc, natsjs.WithPublishAsyncMaxPending(64*1024),
		natsjs.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		return sum, err
	}
	st, err := snapshot.OpenRoot(ctx, cfg.Checkpoints)
	if err != nil {
		return sum, err
	}
	start := time.Now()
	j := &job{cfg: cfg, st: st, js: js}
	var restored *checkpoint.Restored
	if cfg.Restore {
		var names []string
		for _, o := range selected(cfg.Only) {
			names = append(names, o.name)
		}
		// A failover keeps the checkpoint history: Claim.
		restored, err = checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: names, Mode: backend.Claim})
		if err != nil {
			return sum, fmt.Errorf("restore: %w", err)
		}
		sum.Restored = restored.Checkpoint.ID
	}
	defer func() { err = errors.Join(err, j.close()) }()
	if err := j.open(ctx, restored); err != nil {
		return sum, err
	}
	sum.RestoreTime = time.Since(start)
	for _, s := range j.subtasks {
		if rs := s.b.Metrics().Restore; rs != nil {
			sum.RestoreLocal += rs.LocalBytes
			sum.RestoreDownloaded += rs.DownloadedBytes
		}
	}
	sum.Run, err = j.run(ctx, &sum)
	sum.Applied = map[string]int64{}
	for _, s := range j.subtasks {
		sum.Applied[s.spec.name] += s.applied.Load()
	}
	return sum, err
}

// open opens (or restores) every subtask's backend, logic and source, and
// the coordinator.
func (j *job) open(ctx context.Context, restored *checkpoint.Restored) error {
	p, maxP := j.cfg.Parallelism, j.cfg.Input.MaxParallelism
	var ops []checkpoint.Operator
	for _, spec := range selected(j.cfg.Only) {
		op := checkpoint.Operator{Name: spec.name}
		for i := range p {
			s, err := j.openSubtask(ctx, spec, i, p, maxP, restored)
			if err != nil {
				return err
			}
			j.subtasks = append(j.subtasks, s)
			op.Subtasks = append(op.Subtasks, checkpoint.KeyedParticipant(s.b))
		}
		ops = append(ops, op)
	}
	var err error
	j.coord, err = checkpoint.NewCoordinator(ctx, checkpoint.Options{
		Storage: j.st, Operators: ops, Restored: restored, RetainedCheckpoints: 2,
	})
	return err
}

func (j *job) openSubtask(ctx context.Context, spec operatorSpec, i, p, maxP int, restored *checkpoint.Restored) (*subtask, error) {
	kgs, err := backend.KeyGroupRangeForSubtask(maxP, p, i)
	if err != nil {
		return nil, err
	}
	logger := j.cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clock := ttl.NewManualClock(j.cfg.Input.Nexmark.BaseTime)
	opts := backend.Options{
		Dir:            filepath.Join(j.cfg.Dir, spec.name, "subtask-"+strconv.Itoa(i)),
		Operator:       spec.name,
		MaxParallelism: maxP,
		KeyGroups:      kgs,
		Clock:          clock,
		Logger:         logger,
		// The checkpoints of a long-running job upload only what changed.
		IncrementalCheckpoints: true,
		LocalRecoveryDir:       j.cfg.LocalRecoveryDir,
	}
	s := &subtask{
		spec:     spec,
		id:       checkpoint.Subtask{Operator: spec.name, Index: i},
		p:        p,
		barriers: make(chan *checkpoint.Pending, 1),
	}
	var opst *opstate.State
	if restored != nil && restored.HasState(spec.name) {
		ro, err := restored.BackendOptions(opts, spec.name, i, p)
		if err != nil {
			return nil, err
		}
		s.b, err = backend.Restore(ctx, backend.Int64, ro, j.st, restored.Checkpoint.Handles)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.id, err)
		}
		opst, err = restored.OperatorState(ctx, spec.name, i, p)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s: %w", s.id, err), s.b.Close())
		}
	} else {
		s.b, err = backend.Open(backend.Int64, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.id, err)
		}
	}
	s.sink = jetstream.NewSink(j.js, jetstream.SinkOptions{})
	s.env = env{b: s.b, clock: clock, q: j.cfg.Queries, kgs: kgs, windowN: j.cfg.Queries.Window.Milliseconds(),
		out: &output{ctx: ctx, sink: s.sink, maxParallelism: maxP}}
	fail := func(err error) (*subtask, error) {
		return nil, errors.Join(fmt.Errorf("%s: %w", s.id, err), s.b.Close())
	}
	if s.logic, err = spec.open(s.env); err != nil {
		return fail(err)
	}
	seqs, err := s.restorePositions(opst)
	if err != nil {
		return fail(err)
	}
	if s.cur != noWatermark {
		// Windows and timers do not keep the watermark; the positions
		// do. Nothing fires: it was reached before the checkpoint.
		if err := s.logic.watermark(s.cur); err != nil {
			return fail(err)
		}
	}
	s.src, err = jetstream.NewSource(ctx, j.js, jetstream.SourceOptions{
		Stream: spec.input.name, Subjects: spec.input.subjects, KeyGroups: kgs, Positions: seqs,
	})
	if err != nil {
		return fail(err)
	}
	return s, nil
}

// selected returns the operators of the queries named in only, or all.
func selected(only []string) []operatorSpec {
	if len(only) == 0 {
		return operators
	}
	var out []operatorSpec
	for _, o := range operators {
		if slices.Contains(only, o.query) {
			out = append(out, o)
		}
	}
	return out
}

// run runs every subtask and triggers checkpoints until all are done.
func (j *job) run(ctx context.Context, sum *JobSummary) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	finished := make(chan checkpoint.Subtask, len(j.subtasks))
	errs := make(chan error, len(j.subtasks))
	var wg sync.WaitGroup
	for _, s := range j.subtasks {
		wg.Go(func() {
			if err := s.run(ctx, j.st, finished); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	tick := time.NewTicker(j.cfg.Interval)
	defer tick.Stop()
	left := len(j.subtasks)
	for left > 0 {
		select {
		case <-finished:
			left--
		case <-tick.C:
			stats, err := j.checkpoint(ctx)
			if err != nil {
				cancel()
				// A subtask's failure cancels the checkpoint's wait:
				// report the failure, not the cancellation.
				select {
				case serr := <-errs:
					err = serr
				default:
				}
				return time.Since(start), err
			}
			sum.Checkpoints = append(sum.Checkpoints, *stats)
		case err := <-errs:
			return time.Since(start), err
		case <-ctx.Done():
			// A failing subtask sends its error before it cancels.
			select {
			case err := <-errs:
				return time.Since(start), err
			default:
				return time.Since(start), ctx.Err()
			}
		}
	}
	elapsed := time.Since(start)
	// A last checkpoint covers the whole input, so a restart after this
	// point has nothing to redo.
	stats, err := j.checkpoint(ctx)
	if err == nil {
		sum.Checkpoints = append(sum.Checkpoints, *stats)
	}
	return elapsed, err
}

// checkpoint triggers a checkpoint, sends its barrier to every subtask,
// waits for it and reports it.
func (j *job) checkpoint(ctx context.Context) (*CheckpointReport, error) {
	p, err := j.coord.Trigger(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range j.subtasks {
		if err := s.sendBarrier(ctx, p); err != nil {
			return nil, err // a subtask failed and will not take it
		}
	}
	stats, err := p.Wait(ctx)
	if err != nil {
		return nil, err
	}
	r := checkpointReportOf(stats)
	for _, s := range j.subtasks {
		r.Events += s.events.Load()
	}
	if j.cfg.OnCheckpoint != nil {
		j.cfg.OnCheckpoint(*r)
	}
	return r, nil
}

func (j *job) close() error {
	var errs []error
	if j.coord != nil {
		errs = append(errs, j.coord.Close())
	}
	for _, s := range j.subtasks {
		if s.src != nil {
			s.src.Close()
		}
		errs = append(errs, s.b.Close())
	}
	return errors.Join(errs...)
}
