package backend_test

// The checkpoint commands of the datadriven tests (datadriven_test.go):
// checkpoint, snapshot, run, complete, abort, checkpoints, verify-storage
// and restore.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// cmdCheckpoint runs checkpoint, snapshot, run, complete and abort.
func (e *ddEnv) cmdCheckpoint(t *testing.T, d *datadriven.TestData) error {
	if len(d.CmdArgs) == 0 {
		d.Fatalf(t, "%s takes a checkpoint id", d.Cmd)
	}
	var id int64
	if _, err := fmt.Sscan(d.CmdArgs[0].Key, &id); err != nil {
		d.Fatalf(t, "%s %s: %v", d.Cmd, d.CmdArgs[0].Key, err)
	}
	ctx := context.Background()
	s := e.snaps[id]
	switch d.Cmd {
	case "checkpoint":
		if s != nil {
			d.Fatalf(t, "snapshot %d is taken: complete it", id)
		}
		if bs := e.pick(t, d); len(bs) == 1 {
			// The one-call form of a single instance.
			_, err := bs[0].b.Checkpoint(ctx, e.st, id)
			return err
		}
		if err := e.snapshot(t, d, id); err != nil {
			return err
		}
		return e.complete(ctx, id)
	case "snapshot":
		if s != nil {
			d.Fatalf(t, "snapshot %d is taken", id)
		}
		return e.snapshot(t, d, id)
	}
	if s == nil {
		d.Fatalf(t, "no snapshot %d", id)
	}
	switch d.Cmd {
	case "run":
		return e.runSnapshot(ctx, id)
	case "complete":
		return e.complete(ctx, id)
	}
	delete(e.snaps, id)
	var errs []error
	for i, b := range s.on {
		s.async[i].Release()
		if b.b != nil {
			errs = append(errs, b.b.NotifyCheckpointAborted(ctx, id, e.st))
		}
	}
	return errors.Join(errs...)
}

// snapshot takes the synchronous part of snapshot id on the backends.
func (e *ddEnv) snapshot(t *testing.T, d *datadriven.TestData, id int64) error {
	s := &ddSnapshot{}
	for _, b := range e.pick(t, d) {
		a, err := b.b.Snapshot(id, e.st)
		if err != nil {
			for _, a := range s.async {
				a.Release()
			}
			return err
		}
		s.on, s.async = append(s.on, b), append(s.async, a)
	}
	e.snaps[id] = s
	return nil
}

// runSnapshot runs the asynchronous parts of snapshot id, one after the
// other.
func (e *ddEnv) runSnapshot(ctx context.Context, id int64) error {
	s := e.snaps[id]
	if s.handles != nil {
		return fmt.Errorf("snapshot %d has run", id)
	}
	for _, a := range s.async {
		h, err := a.Run(ctx)
		if err != nil {
			return err
		}
		s.handles = append(s.handles, h)
	}
	return nil
}

// complete runs snapshot id if it has not run, commits it with retention
// and notifies its backends.
func (e *ddEnv) complete(ctx context.Context, id int64) error {
	s := e.snaps[id]
	if s.handles == nil {
		if err := e.runSnapshot(ctx, id); err != nil {
			return err
		}
	}
	if err := retention.Complete(ctx, e.st, &snapshot.Checkpoint{ID: id, Handles: s.handles}, e.retain); err != nil {
		return err // still to abort
	}
	delete(e.snaps, id)
	var errs []error
	for _, b := range s.on {
		if b.b != nil {
			errs = append(errs, b.b.NotifyCheckpointComplete(id))
		}
	}
	return errors.Join(errs...)
}

// cmdCheckpoints prints every checkpoint directory in storage, sorted by
// id: completed (with the key groups of its handles) or not.
func (e *ddEnv) cmdCheckpoints(out *strings.Builder) error {
	ctx := context.Background()
	ids, err := snapshot.Completed(ctx, e.st)
	if err != nil {
		return err
	}
	names, err := e.st.List(ctx, "")
	if err != nil {
		return err
	}
	stored := map[int64]bool{}
	for _, n := range names {
		var id int64
		if dir, _, ok := strings.Cut(n, "/"); ok {
			if _, err := fmt.Sscanf(dir, "chk-%d", &id); err == nil {
				stored[id] = true
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(stored)) {
		if !slices.Contains(ids, id) {
			fmt.Fprintf(out, "chk-%d: not completed\n", id)
			continue
		}
		cp, err := snapshot.Load(ctx, e.st, id)
		if err != nil {
			return err
		}
		slices.SortFunc(cp.Handles, func(a, b snapshot.Handle) int { return a.KeyGroupStart - b.KeyGroupStart })
		var rs []string
		for _, h := range cp.Handles {
			rs = append(rs, fmt.Sprintf("[%d,%d)", h.KeyGroupStart, h.KeyGroupEnd))
		}
		fmt.Fprintf(out, "chk-%d: completed, key groups %s\n", id, strings.Join(rs, " "))
	}
	if len(stored) == 0 {
		out.WriteString("none\n")
	}
	return nil
}

// cmdVerifyStorage checks that storage holds exactly the files of the
// completed checkpoints (their directories and the shared files they
// reference) and that these verify: what it must hold when no checkpoint
// is in flight.
func (e *ddEnv) cmdVerifyStorage(out *strings.Builder) error {
	ctx := context.Background()
	ids, err := snapshot.Completed(ctx, e.st)
	if err != nil {
		return err
	}
	refs, err := incremental.SharedRefs(ctx, e.st, ids)
	if err != nil {
		return err
	}
	names, err := e.st.List(ctx, "")
	if err != nil {
		return err
	}
	var problems []string
	for _, n := range names {
		dir, _, _ := strings.Cut(n, "/")
		var id int64
		switch _, err := fmt.Sscanf(dir, "chk-%d", &id); {
		case dir == snapshot.SharedDir && refs[n] > 0:
		case err == nil && slices.Contains(ids, id):
		default:
			problems = append(problems, "stray file "+n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(refs)) {
		if !slices.Contains(names, n) {
			problems = append(problems, "missing shared file "+n)
		}
	}
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, e.st, id)
		if err == nil {
			err = snapshot.Verify(ctx, e.st, cp)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("checkpoint %d: %v", id, err))
		}
	}
	if len(problems) == 0 {
		problems = []string{"ok"}
	}
	out.WriteString(strings.Join(problems, "\n") + "\n")
	return nil
}

func (e *ddEnv) cmdRestore(t *testing.T, d *datadriven.TestData, out *strings.Builder) error {
	if len(d.CmdArgs) == 0 {
		d.Fatalf(t, "restore takes a checkpoint id or latest")
	}
	name := e.name(t, d)
	opts := e.options(t, d, name)
	ctx := context.Background()
	var b *backend.Backend[string]
	var err error
	if which := d.CmdArgs[0].Key; which == "latest" {
		var report backend.RestoreReport
		if b, report, err = backend.RestoreLatest(ctx, backend.String, opts, e.st); err == nil {
			fmt.Fprintf(out, "restored checkpoint %d\n", report.Checkpoint.ID)
		}
	} else {
		var id int64
		if _, err := fmt.Sscan(which, &id); err != nil {
			d.Fatalf(t, "restore %s: %v", which, err)
		}
		var cp *snapshot.Checkpoint
		if cp, err = snapshot.Load(ctx, e.st, id); err != nil {
			return err
		}
		b, err = backend.Restore(ctx, backend.String, opts, e.st, cp.Handles)
	}
	if err != nil {
		return err
	}
	return e.attach(&ddBackend{name: name, opts: opts, b: b})
}
