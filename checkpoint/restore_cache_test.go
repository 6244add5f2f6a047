package checkpoint_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// countingStorage is a real storage that counts the opens of each name.
type countingStorage struct {
	snapshot.Storage
	mu    sync.Mutex
	opens map[string]int
}

func (s *countingStorage) Open(ctx context.Context, name string) (snapshot.File, error) {
	s.mu.Lock()
	s.opens[name]++
	s.mu.Unlock()
	return s.Storage.Open(ctx, name)
}

func (s *countingStorage) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens[name]
}

// checkpointSource checkpoints sourceOperator at parallelism p into st
// and returns the job's restore point, read through a counting storage.
func checkpointSource(t *testing.T, st *snapshot.Local, p int) (*checkpoint.Restored, *countingStorage) {
	t.Helper()
	ctx := context.Background()
	op, _ := sourceOperator(t, p)
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{op}})
	noErr(t, err)
	_, err = c.Checkpoint(ctx)
	noErr(t, err)
	noErr(t, c.Close())
	cs := &countingStorage{Storage: st, opens: make(map[string]int)}
	r, err := checkpoint.LatestCheckpoint(ctx, cs, checkpoint.RestoreOptions{Operators: []string{"src"}})
	noErr(t, err)
	return r, cs
}

// TestOperatorStateReadOnce: a restoring job whose subtasks each ask for
// their operator state, from goroutines of their own, reads each file of
// the checkpoint once, not once per subtask; each gets its own State,
// equal to what opstate.Restore gives.
func TestOperatorStateReadOnce(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	const oldP, newP, callers = 4, 3, 8
	r, cs := checkpointSource(t, st, oldP)
	got := make([][]*opstate.State, newP)
	var wg sync.WaitGroup
	for i := range newP {
		got[i] = make([]*opstate.State, callers)
		for j := range callers {
			wg.Go(func() {
				s, err := r.OperatorState(ctx, "src", i, newP)
				if err != nil {
					t.Error(err)
				}
				got[i][j] = s
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, ref := range r.Checkpoint.OperatorStates {
		if n := cs.count(ref.Name); n != 1 {
			t.Errorf("%s read %d times; want once", ref.Name, n)
		}
	}
	for i := range newP {
		want, err := opstate.Restore(ctx, st, r.Checkpoint, "src", newP, i)
		noErr(t, err)
		wantEnc, err := opstate.Encode(want)
		noErr(t, err)
		for j, s := range got[i] {
			enc, err := opstate.Encode(s)
			noErr(t, err)
			if !slices.Equal(enc, wantEnc) {
				t.Fatalf("subtask %d, caller %d: state differs from opstate.Restore's", i, j)
			}
		}
	}
	// Each call's State is its own: changing one changes no other, nor
	// what a later call gets.
	l, err := got[0][0].List("splits", opstate.Split)
	noErr(t, err)
	n := l.Len()
	l.Add([]byte("new"))
	noErr(t, got[0][0].SetPositionInt64(got[0][0].KeyGroups().Start, -1))
	for _, s := range []*opstate.State{got[0][1], mustOperatorState(t, r, 0, newP)} {
		l, err := s.List("splits", opstate.Split)
		noErr(t, err)
		v, _, err := s.PositionInt64(s.KeyGroups().Start)
		noErr(t, err)
		if l.Len() != n || v == -1 {
			t.Fatalf("a change to one restored State reached another: %d entries, position %d", l.Len(), v)
		}
	}
	for _, ref := range r.Checkpoint.OperatorStates {
		if n := cs.count(ref.Name); n != 1 {
			t.Errorf("%s read %d times; want once", ref.Name, n)
		}
	}
}

// TestOperatorStateFailedReadIsRetried: a read that fails is not kept: a
// later call reads again, and succeeds once the file is back.
func TestOperatorStateFailedReadIsRetried(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	r, cs := checkpointSource(t, st, 2)
	name := r.Checkpoint.OperatorStates[1].Name
	p := filepath.Join(st.Root(), filepath.FromSlash(name))
	noErr(t, os.Rename(p, p+".away"))
	if _, err := r.OperatorState(ctx, "src", 0, 2); !errors.Is(err, snapshot.ErrNotExist) || !strings.Contains(err.Error(), filepath.Base(name)) {
		t.Fatalf("operator state with %s missing: %v", name, err)
	}
	noErr(t, os.Rename(p+".away", p))
	mustOperatorState(t, r, 1, 2)
	mustOperatorState(t, r, 0, 2)
	if n := cs.count(name); n != 2 {
		t.Fatalf("%s opened %d times; want 2 (the failed read and the one kept)", name, n)
	}
}

func mustOperatorState(t *testing.T, r *checkpoint.Restored, index, p int) *opstate.State {
	t.Helper()
	s, err := r.OperatorState(context.Background(), "src", index, p)
	noErr(t, err)
	return s
}
