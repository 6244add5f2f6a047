package checkpoint_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// The operator state model test: seeded random operator states of a
// source at parallelism p in 1..5, changed by random operations applied
// to the real states and to a plain model alike, checkpointed through a
// real coordinator into local storage, then restored at every p' in 1..5
// and compared with what the model says split, union and positions give.

const modelMaxParallelism = 16

// modelModes are the lists the random operations use, with their modes.
var modelModes = map[string]opstate.Mode{"splits": opstate.Split, "more": opstate.Split, "all": opstate.Union, "config": opstate.Union}

// subtaskModel is one subtask's operator state as plain values.
type subtaskModel struct {
	lists     map[string][]string // declared lists and their entries
	positions map[int]string
}

func (m subtaskModel) clone() subtaskModel {
	c := subtaskModel{lists: make(map[string][]string), positions: maps.Clone(m.positions)}
	for n, es := range m.lists {
		c.lists[n] = slices.Clone(es)
	}
	return c
}

// randomBytes returns 0 to 4 random bytes.
func randomBytes(rng *rand.Rand) []byte {
	b := make([]byte, rng.IntN(5))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// mutate applies n random operations to st and m alike.
func mutate(t *testing.T, rng *rand.Rand, st *opstate.State, m *subtaskModel, n int) {
	t.Helper()
	names := slices.Sorted(maps.Keys(modelModes))
	for range n {
		name := names[rng.IntN(len(names))]
		switch op := rng.IntN(10); {
		case op < 4: // add
			l, err := st.List(name, modelModes[name])
			noErr(t, err)
			k := rng.IntN(4)
			for range k {
				e := randomBytes(rng)
				l.Add(e)
				m.lists[name] = append(m.lists[name], string(e))
			}
			if k == 0 {
				m.lists[name] = append(m.lists[name], []string{}...) // declared, perhaps empty
			}
		case op < 5: // update
			l, err := st.List(name, modelModes[name])
			noErr(t, err)
			var es [][]byte
			var ms []string
			for range rng.IntN(3) {
				e := randomBytes(rng)
				es = append(es, e)
				ms = append(ms, string(e))
			}
			l.Update(es)
			m.lists[name] = ms
		case op < 6: // clear
			l, err := st.List(name, modelModes[name])
			noErr(t, err)
			l.Clear()
			m.lists[name] = nil
		case op < 9: // set a position, in range or not
			kg := rng.IntN(modelMaxParallelism)
			v := randomBytes(rng)
			err := st.SetPosition(kg, v)
			inRange := kg >= st.KeyGroups().Start && kg < st.KeyGroups().End
			if inRange != (err == nil) {
				t.Fatalf("SetPosition(%d) on key groups %v: %v", kg, st.KeyGroups(), err)
			}
			if inRange {
				m.positions[kg] = string(v)
			}
		default: // delete a position
			kg := st.KeyGroups().Start + rng.IntN(st.KeyGroups().Len())
			noErr(t, st.DeletePosition(kg))
			delete(m.positions, kg)
		}
	}
}

// want is what subtask i of p2 gets from the old subtasks' models: its
// lists (name to entries) and positions.
func want(old []subtaskModel, p2, i int) (map[string][]string, map[int]string) {
	lists := make(map[string][]string)
	for _, m := range old {
		for name := range m.lists {
			lists[name] = []string{}
		}
	}
	for name := range lists {
		var all []string
		for _, m := range old {
			all = append(all, m.lists[name]...)
		}
		switch {
		case modelModes[name] == opstate.Union:
			lists[name] = all
		case p2 == len(old):
			lists[name] = old[i].lists[name]
		default:
			// Deal contiguous chunks: the first n%p2 get one more.
			at := 0
			for j := range p2 {
				size := len(all) / p2
				if j < len(all)%p2 {
					size++
				}
				if j == i {
					lists[name] = all[at : at+size]
				}
				at += size
			}
		}
	}
	positions := make(map[int]string)
	for _, m := range old {
		for kg, v := range m.positions {
			if owner, _ := backend.SubtaskForKeyGroup(modelMaxParallelism, p2, kg); owner == i {
				positions[kg] = v
			}
		}
	}
	return lists, positions
}

// compareState fails unless st holds exactly lists and positions.
func compareState(t *testing.T, what string, st *opstate.State, lists map[string][]string, positions map[int]string) {
	t.Helper()
	if got, w := st.Lists(), slices.Sorted(maps.Keys(lists)); !slices.Equal(got, w) {
		t.Fatalf("%s: lists %q, want %q", what, got, w)
	}
	for name, es := range lists {
		l, err := st.List(name, modelModes[name])
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var got []string
		for _, e := range l.Entries() {
			got = append(got, string(e))
		}
		if !slices.Equal(got, es) {
			t.Fatalf("%s: list %q (%v): %q, want %q", what, name, modelModes[name], got, es)
		}
	}
	got := make(map[int]string)
	for kg, v := range st.Positions() {
		got[kg] = string(v)
	}
	if !maps.Equal(got, positions) {
		t.Fatalf("%s: positions %v, want %v", what, got, positions)
	}
}

// opstateSeed replays one seed of TestOperatorStateModel.
var opstateSeed = flag.Uint64("opstate.seed", 0, "TestOperatorStateModel: run only this seed (0: seeds 1 to 3 and a fresh one)")

// TestOperatorStateModel runs the model test for seeds 1 to 3 and a
// fresh one; a failure logs its seed, which
//
//	go test ./checkpoint -run TestOperatorStateModel -opstate.seed <seed>
//
// replays.
func TestOperatorStateModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, rand.Uint64()}
	if *opstateSeed != 0 {
		seeds = []uint64{*opstateSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed %d: replay with -run TestOperatorStateModel -opstate.seed %d", seed, seed)
				}
			})
			operatorStateModel(t, seed)
		})
	}
}

func operatorStateModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	ctx := context.Background()
	for p := 1; p <= 5; p++ {
		st := newStorage(t)
		states := make([]*opstate.State, p)
		models := make([]subtaskModel, p)
		op := checkpoint.Operator{Name: "src"}
		for i := range p {
			s, err := opstate.New(modelMaxParallelism, p, i)
			noErr(t, err)
			states[i], models[i] = s, subtaskModel{lists: map[string][]string{}, positions: map[int]string{}}
			op.Subtasks = append(op.Subtasks, checkpoint.OperatorParticipant(nil, s, nil))
		}
		c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{op}, RetainedCheckpoints: 2})
		noErr(t, err)
		var rounds [][]subtaskModel
		var ids []int64
		for range 2 {
			for i := range p {
				mutate(t, rng, states[i], &models[i], 1+rng.IntN(12))
			}
			stats, err := c.Checkpoint(ctx)
			noErr(t, err)
			snapModels := make([]subtaskModel, p)
			for i := range p {
				snapModels[i] = models[i].clone()
			}
			rounds = append(rounds, snapModels)
			ids = append(ids, stats.ID)
		}
		noErr(t, c.Close())
		checkNoDebris(t, st)

		latest, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: []string{"src"}})
		noErr(t, err)
		if latest.Checkpoint.ID != ids[1] || !latest.HasOperatorState("src") || latest.HasState("src") {
			t.Fatalf("latest checkpoint %d (want %d), operator state %v, keyed %v",
				latest.Checkpoint.ID, ids[1], latest.HasOperatorState("src"), latest.HasState("src"))
		}
		noErr(t, snapshot.Verify(ctx, st, latest.Checkpoint))
		first, err := snapshot.Load(ctx, st, ids[0])
		noErr(t, err)
		for r, restored := range []*checkpoint.Restored{{Storage: st, Checkpoint: first}, latest} {
			for p2 := 1; p2 <= 5; p2++ {
				for i := range p2 {
					got, err := restored.OperatorState(ctx, "src", i, p2)
					noErr(t, err)
					if got.Parallelism() != p2 || got.Index() != i || got.MaxParallelism() != modelMaxParallelism {
						t.Fatalf("restored subtask %d of %d at %d", got.Index(), got.Parallelism(), got.MaxParallelism())
					}
					lists, positions := want(rounds[r], p2, i)
					compareState(t, fmt.Sprintf("round %d, p %d -> p' %d, subtask %d", r+1, p, p2, i), got, lists, positions)
				}
			}
		}
	}
}
