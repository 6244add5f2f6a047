//go:build invariants || race

package invariants

import "fmt"

// Enabled is true: this build has the invariants tag, or the race
// detector (as in Pebble), so Check asserts.
// Guard costly checks with it; do not change what the code computes on it.
const Enabled = true

// Check panics with an error wrapping ErrViolated, whose message is format
// applied to args, when cond is false. It is for invariants the library
// guarantees, never for bad input.
func Check(cond bool, format string, args ...any) {
	if !cond {
		panic(fmt.Errorf("%w: %s", ErrViolated, fmt.Sprintf(format, args...)))
	}
}
