package snapshot

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// This file holds Commit's check of the files a checkpoint references.
// Sizes are checked where it costs a stat (a HEAD request on an object
// store) per file, and only for files this checkpoint wrote; checksums are
// Verify's work, since they cost a read of every file.

// checkFiles checks, for Commit, that every file cp references is in
// storage:
//
//   - each handle's own files (Handle.Files, in chk-<id>/) and the shared
//     files this checkpoint uploaded (SharedName's creator is cp.ID), and
//     every operator state file, open with the size their reference
//     records;
//   - shared files reused from earlier checkpoints are listed under
//     shared/: they were size-checked when the checkpoint that uploaded
//     them committed, and retention is the only thing that deletes them,
//     so one List stands for a request per file.
//
// A missing file wraps ErrNotExist and one of another size ErrCorrupt,
// each naming what it belongs to (the operator and key groups of its
// handle, or the operator subtask) and its path.
func checkFiles(ctx context.Context, st Storage, cp *Checkpoint) error {
	var sized []fileCheck
	var listed []fileCheck
	seen := make(map[string]bool)
	for i := range cp.Handles {
		h := &cp.Handles[i]
		for _, f := range h.Files {
			if !seen[f.Name] {
				seen[f.Name] = true
				sized = append(sized, fileCheck{ref: f, handle: h})
			}
		}
		for _, f := range h.Shared {
			if seen[f.Name] {
				continue
			}
			seen[f.Name] = true
			if creator, ok := SharedCreator(f.Name); ok && creator == cp.ID {
				sized = append(sized, fileCheck{ref: f.FileRef, handle: h})
			} else {
				listed = append(listed, fileCheck{ref: f.FileRef, handle: h})
			}
		}
	}
	for i := range cp.OperatorStates {
		r := &cp.OperatorStates[i]
		sized = append(sized, fileCheck{ref: r.FileRef, opstate: r})
	}
	if err := checkListed(ctx, st, cp.ID, listed); err != nil {
		return err
	}
	return checkSizes(ctx, st, cp.ID, sized)
}

// fileCheck is one file Commit checks, and what references it: a handle
// or an operator state reference.
type fileCheck struct {
	ref     FileRef
	handle  *Handle
	opstate *OperatorStateRef
}

// owner names what references the file, for errors.
func (c fileCheck) owner() string {
	if c.opstate != nil {
		return fmt.Sprintf("operator state of %q subtask %d", c.opstate.Operator, c.opstate.Subtask)
	}
	return fmt.Sprintf("operator %q key groups [%d, %d)", c.handle.Operator, c.handle.KeyGroupStart, c.handle.KeyGroupEnd)
}

// checkListed checks that each file is listed in shared/, with one List.
func checkListed(ctx context.Context, st Storage, id int64, checks []fileCheck) error {
	if len(checks) == 0 {
		return nil
	}
	list, err := st.List(ctx, SharedDir+"/")
	if err != nil {
		return fmt.Errorf("commit checkpoint %d: %w", id, err)
	}
	names := make(map[string]bool, len(list))
	for _, n := range list {
		names[n] = true
	}
	for _, c := range checks {
		if !names[c.ref.Name] {
			return fmt.Errorf("commit checkpoint %d: %s: shared file %s %w", id, c.owner(), where(st, c.ref.Name), errMissing{})
		}
	}
	return nil
}

// errMissing says a file is not listed. It matches ErrNotExist.
type errMissing struct{}

func (errMissing) Error() string        { return "is missing" }
func (errMissing) Is(target error) bool { return target == ErrNotExist }

// statParallelism is how many files checkSizes opens at once.
const statParallelism = 16

// checkSizes opens each file, up to statParallelism at once, and checks
// its size. After a failure, or once ctx is done, it opens no more; it
// returns the error of the first bad file in the order given among those
// it opened.
func checkSizes(ctx context.Context, st Storage, id int64, checks []fileCheck) error {
	errs := make([]error, len(checks))
	sem := make(chan struct{}, statParallelism)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i := range checks {
		if err := ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("commit checkpoint %d: %w", id, err)
			break
		}
		if failed.Load() {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = fmt.Errorf("commit checkpoint %d: %w", id, ctx.Err())
		}
		if errs[i] != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if errs[i] = checkSize(ctx, st, id, checks[i]); errs[i] != nil {
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkSize opens one file and checks its size.
func checkSize(ctx context.Context, st Storage, id int64, c fileCheck) error {
	f, err := st.Open(ctx, c.ref.Name)
	if err != nil {
		return fmt.Errorf("commit checkpoint %d: %s: %w", id, c.owner(), err)
	}
	n := f.Size()
	_ = f.Close() // nothing was read
	if n != c.ref.Size {
		return fmt.Errorf("commit checkpoint %d: %w: %s: %s: %d bytes, the reference says %d",
			id, ErrCorrupt, c.owner(), where(st, c.ref.Name), n, c.ref.Size)
	}
	return nil
}
