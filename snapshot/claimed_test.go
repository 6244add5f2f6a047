package snapshot_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// TestCheckClaimed: state of an operator the job does not run is an error
// naming the operator, unless non-restored state is allowed; operators of
// the job without state are new and fine.
func TestCheckClaimed(t *testing.T) {
	cp := sampleCheckpoint(7)
	for _, op := range []string{"window", "source"} {
		h := sampleHandle(op+"-1", 7, 0, 128)
		h.Operator = op
		cp.Handles = append(cp.Handles, h)
	}
	if got := snapshot.Operators(cp); !slices.Equal(got, []string{"op", "source", "window"}) {
		t.Fatalf("Operators = %q", got)
	}
	for _, c := range []struct {
		operators []string
		allow     bool
		want      string // "" for no error
	}{
		{[]string{"op", "source", "window"}, false, ""},
		{[]string{"window", "new", "op", "source"}, false, ""},
		{[]string{"op"}, false, `state no operator claims: checkpoint 7 holds state of operators "source", "window", which the job does not run (allow non-restored state to drop it)`},
		{[]string{"op", "source"}, false, `state no operator claims: checkpoint 7 holds state of operators "window", which the job does not run (allow non-restored state to drop it)`},
		{nil, false, `state no operator claims: checkpoint 7 holds state of operators "op", "source", "window", which the job does not run (allow non-restored state to drop it)`},
		{[]string{"op"}, true, ""},
		{nil, true, ""},
	} {
		err := snapshot.CheckClaimed(cp, c.operators, c.allow)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("CheckClaimed(%q, %v) = %v", c.operators, c.allow, err)
		case c.want != "" && (err == nil || err.Error() != c.want || !errors.Is(err, snapshot.ErrNonRestoredState)):
			t.Errorf("CheckClaimed(%q, %v) = %v\nwant ErrNonRestoredState: %s", c.operators, c.allow, err, c.want)
		}
	}
	// A checkpoint without handles holds nothing to claim.
	if err := snapshot.CheckClaimed(&snapshot.Checkpoint{ID: 3}, nil, false); err != nil {
		t.Errorf("CheckClaimed of an empty checkpoint = %v", err)
	}
	if err := snapshot.CheckClaimed(nil, []string{"op"}, true); err == nil {
		t.Error("CheckClaimed(nil) succeeded")
	}
}
