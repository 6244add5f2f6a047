package invariants_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/invariants"
)

// recovered runs fn and returns what it panicked with, or nil.
func recovered(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}

// TestCheckHolds checks that a condition that holds never panics, with the
// invariants tag or without it.
func TestCheckHolds(t *testing.T) {
	if v := recovered(func() { invariants.Check(true, "never %s", "shown") }); v != nil {
		t.Fatalf("Check(true) panicked with %v", v)
	}
}

// TestCheckFails checks what a failed condition does in this build: with
// the invariants tag, a panic with an error wrapping ErrViolated that
// carries the formatted message; without it, nothing.
func TestCheckFails(t *testing.T) {
	v := recovered(func() { invariants.Check(1+1 == 3, "sum is %d, want %d", 2, 3) })
	if !invariants.Enabled {
		if v != nil {
			t.Fatalf("Check(false) without the invariants tag panicked with %v", v)
		}
		return
	}
	err, ok := v.(error)
	if !ok {
		t.Fatalf("Check(false) with the invariants tag panicked with %v (%T), want an error", v, v)
	}
	if !errors.Is(err, invariants.ErrViolated) {
		t.Fatalf("panic %v does not wrap ErrViolated", err)
	}
	if !strings.Contains(err.Error(), "sum is 2, want 3") {
		t.Fatalf("panic %q does not carry the formatted message", err)
	}
}

// TestCheckOffIsFree checks that, without the tag, a Check costs no
// allocation: its arguments do not escape an empty body.
func TestCheckOffIsFree(t *testing.T) {
	if invariants.Enabled {
		t.Skip("with the invariants tag, Check is a real call")
	}
	x := 12345
	if allocs := testing.AllocsPerRun(100, func() { invariants.Check(x > 0, "x = %d", x) }); allocs != 0 {
		t.Fatalf("Check without the invariants tag made %.0f allocations per call, want 0", allocs)
	}
}
