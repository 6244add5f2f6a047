//go:build !invariants

package invariants

// Enabled is false: this build lacks the invariants tag, so Check does
// nothing and code guarded by Enabled is compiled out. Do not change what
// the code computes on it.
const Enabled = false

// Check does nothing in this build. With the invariants tag it panics,
// with an error wrapping ErrViolated, when cond is false.
func Check(cond bool, format string, args ...any) {}
