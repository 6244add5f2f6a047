package nexmarkjob

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pebblestate/pebblestate/checkpoint"
)

// ChildEnv is the environment variable that carries a job child's
// configuration, as JSON.
const ChildEnv = "PEBBLESTATE_NEXMARK_JOB"

// report is one line a job child writes on its standard output.
type report struct {
	// A completed or aborted checkpoint.
	Checkpoint *CheckpointReport `json:"checkpoint,omitempty"`
	// The run's end.
	Summary *JobSummary `json:"summary,omitempty"`
}

// CheckpointReport is what a run reports of one checkpoint.
type CheckpointReport struct {
	ID                          int64
	Completed                   bool
	Err                         string `json:",omitempty"`
	Duration                    time.Duration
	MaxSync, MaxAsync           time.Duration
	CheckpointedSize, StateSize int64
	// StateSizes are the full state sizes per operator.
	StateSizes map[string]int64
	// Events is how many input events the run's first stages had applied
	// when the checkpoint ended, for a progress display.
	Events int64
}

func checkpointReportOf(s checkpoint.Stats) *CheckpointReport {
	r := &CheckpointReport{ID: s.ID, Completed: s.Completed, Duration: s.Duration,
		CheckpointedSize: s.CheckpointedSize, StateSize: s.StateSize}
	if s.Err != nil {
		r.Err = s.Err.Error()
	}
	r.StateSizes = map[string]int64{}
	for _, t := range s.Subtasks {
		r.MaxSync, r.MaxAsync = max(r.MaxSync, t.SyncDuration), max(r.MaxAsync, t.AsyncDuration)
		r.StateSizes[t.Subtask.Operator] += t.StateSize
	}
	return r
}

// RunChild runs the job a parent described in ChildEnv's value, writing
// one JSON report per line to out: each checkpoint as it ends, then the
// summary.
func RunChild(ctx context.Context, config string, out io.Writer) error {
	var cfg JobConfig
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		return fmt.Errorf("job configuration: %w", err)
	}
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	write := func(r report) {
		// The parent reads these lines to decide when to kill; a write
		// error means it is gone, and the job ends with the next one.
		_ = enc.Encode(r)
		_ = w.Flush()
	}
	cfg.OnCheckpoint = func(r CheckpointReport) { write(report{Checkpoint: &r}) }
	sum, err := RunJob(ctx, cfg)
	if err != nil {
		return err
	}
	write(report{Summary: &sum})
	return nil
}
