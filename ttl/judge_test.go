package ttl_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestJudgeRestampSingle checks reads under OnReadAndWrite: a live value
// is rewritten with the judging time as its stamp, unless it already
// carries it; an expired one is dropped, never restamped.
func TestJudgeRestampSingle(t *testing.T) {
	p := ttl.Policy{TTLMillis: 100, Restamp: true}
	for _, tc := range []struct {
		name     string
		ts, now  int64
		want     ttl.Verdict
		wantNext int64
	}{
		{"live, older stamp", 1_000, 1_050, ttl.Rewrite, 1_150},
		{"live, stamp is now", 1_050, 1_050, ttl.Keep, 1_150},
		{"expired", 1_000, 1_100, ttl.Drop, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, out, next, err := ttl.Judge(ttl.Single, stamped(tc.ts, "value"), p, tc.now, []byte("pre"))
			if err != nil || v != tc.want || next != tc.wantNext {
				t.Fatalf("Judge = %v, next %d, %v; want %v, next %d", v, next, err, tc.want, tc.wantNext)
			}
			want := "pre"
			if v == ttl.Rewrite {
				want += string(stamped(tc.now, "value"))
			}
			if string(out) != want {
				t.Fatalf("Judge wrote %x; want %x", out, want)
			}
		})
	}
}

// TestJudgeRestampList checks that restamping a list keeps the live
// elements in order with the judging time as their stamp, drops the
// expired ones, and leaves a list whose stamps are all now alone.
func TestJudgeRestampList(t *testing.T) {
	p := ttl.Policy{TTLMillis: 100, Restamp: true}
	v, out, next, err := ttl.Judge(ttl.ListElements, list(1_050, "a", 900, "b", 1_090, "c"), p, 1_095, nil)
	if err != nil || v != ttl.Rewrite || next != 1_195 {
		t.Fatalf("Judge = %v, next %d, %v; want Rewrite, next 1195", v, next, err)
	}
	if !bytes.Equal(out, list(1_095, "a", 1_095, "c")) {
		t.Fatalf("Judge kept %q; want a and c restamped at 1095", users(t, out))
	}
	// Nothing expired, every stamp already now: no write.
	if v, _, _, err := ttl.Judge(ttl.ListElements, list(1_095, "a", 1_095, "b"), p, 1_095, nil); err != nil || v != ttl.Keep {
		t.Fatalf("Judge of a list stamped now = %v, %v; want Keep", v, err)
	}
	// Without Restamp the kept elements carry their stamps.
	v, out, next, err = ttl.Judge(ttl.ListElements, list(1_050, "a", 900, "b", 1_090, "c"), ttl.Policy{TTLMillis: 100}, 1_095, nil)
	if err != nil || v != ttl.Rewrite || next != 1_150 || !bytes.Equal(out, list(1_050, "a", 1_090, "c")) {
		t.Fatalf("Judge without restamp = %v, %x, next %d, %v", v, out, next, err)
	}
	// Elements of any length, restamped in place, keep their framing.
	long := string(bytes.Repeat([]byte("x"), 300))
	_, out, _, err = ttl.Judge(ttl.ListElements, list(1_050, long, 1_060, ""), p, 1_070, nil)
	if err != nil || !bytes.Equal(out, list(1_070, long, 1_070, "")) {
		t.Fatalf("restamped long and empty elements = %x, %v", out, err)
	}
	if _, err := listfmt.Count(out); err != nil {
		t.Fatal(err)
	}
}
